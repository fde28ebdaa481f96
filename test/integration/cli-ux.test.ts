// What a new user trips on (issue 11, part 5), end to end through the CLI entry point and the
// library: output locations checked before any work, one code and message per file situation,
// progress bars whose first frame is filled in, thread counts capped, --count checked up front,
// bench without --vs-ort, the training split's seed, and unknown session options.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { setProgressStream } from '../../src/cli/output.js';
import { cpuInfo, datasets, InferenceSession, load, onnx, quantize, save, setNumThreads } from '../../src/index.js';
import { lastJson, runCli, type CliResult } from './run-cli.js';

let dir = '';
let model = '';
let onnxPath = '';

const SMALL = ['--dataset', 'synthetic', '--epochs', '1', '--width-multiplier', '0.25'];

function errorOf(r: CliResult): { code: string; message: string } {
  expect(r.exitCode, r.stdout + r.stderr).toBe(1);
  return (lastJson(r) as { error: { code: string; message: string } }).error;
}

/** A stream that says it is a terminal and keeps what is drawn on it. */
function fakeTerminal(): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  stream.isTTY = true;
  stream.columns = 160;
  stream.text = () => chunks.join('');
  return stream;
}

async function withTerminal(run: () => Promise<CliResult>): Promise<{ r: CliResult; drawn: string }> {
  const term = fakeTerminal();
  setProgressStream(term);
  try {
    const r = await run();
    return { r, drawn: term.text() };
  } finally {
    setProgressStream(undefined);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-ux-'));
  model = join(dir, 'seed.kiln');
  onnxPath = join(dir, 'seed.onnx');
  const t = await runCli('train', ...SMALL, '--out', model, '--json');
  expect(t.exitCode, t.stderr).toBe(0);
  const e = await runCli('export', model, '--out', onnxPath, '--json');
  expect(e.exitCode, e.stderr).toBe(0);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('output locations are checked before any work', () => {
  it('train --out in a missing folder fails at once, naming the path, and trains nothing', async () => {
    const out = join(dir, 'no', 'such', 'x.kiln');
    const started = performance.now();
    const r = await runCli('train', ...SMALL, '--out', out, '--json');
    const error = errorOf(r);
    expect(error.code).toBe('ERR_KILN_FILE_NOT_FOUND');
    expect(error.message).toContain(out);
    expect(error.message).toContain('--out');
    expect(error.message).not.toMatch(/\.tmp/);
    expect(r.stderr).not.toContain('epoch 1/');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('train, quantize and export --out naming a directory are ERR_KILN_NOT_A_FILE', async () => {
    for (const args of [
      ['train', ...SMALL, '--out', dir],
      ['quantize', model, '--calibrate', 'synthetic', '--batches', '1', '--out', dir],
      ['quantize', model, '--calibrate', 'synthetic', '--qat', '--epochs', '1', '--out', dir],
      ['export', model, '--out', dir],
    ]) {
      const r = await runCli(...args, '--json');
      const error = errorOf(r);
      expect(error.code, args.join(' ')).toBe('ERR_KILN_NOT_A_FILE');
      expect(error.message).toContain(`'${dir}'`);
      expect(r.stderr, args.join(' ')).not.toMatch(/epoch|fp32:/);
    }
  });

  it('quantize and export --out in a missing folder are ERR_KILN_FILE_NOT_FOUND', async () => {
    for (const cmd of [['quantize', model, '--calibrate', 'synthetic', '--batches', '1'], ['export', model]]) {
      const out = join(dir, 'missing-folder', 'q.out');
      const error = errorOf(await runCli(...cmd, '--out', out, '--json'));
      expect(error.code).toBe('ERR_KILN_FILE_NOT_FOUND');
      expect(error.message).toContain(out);
    }
  });

  it('save() to a missing folder names the path, not a temporary file, and leaves nothing behind', async () => {
    const net = await load(model);
    const out = join(dir, 'absent', 'x.kiln');
    await expect(save(net, out)).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining(out) });
    await expect(save(net, dir)).rejects.toMatchObject({ code: 'ERR_KILN_NOT_A_FILE' });
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('one code and message per file situation, across commands and the library', () => {
  it('a missing path is ERR_KILN_FILE_NOT_FOUND naming it, in every command', async () => {
    const missing = join(dir, 'missing.kiln');
    for (const args of [
      ['info', missing],
      ['eval', missing, '--dataset', 'synthetic'],
      ['verify', missing, '--count', '4'],
      ['export', missing, '--out', join(dir, 'm.onnx')],
      ['bench', missing, '--min-ms', '1'],
      ['quantize', missing, '--dynamic', '--out', join(dir, 'm.kiln')],
    ]) {
      const error = errorOf(await runCli(...args, '--json'));
      expect(error.code, args[0]).toBe('ERR_KILN_FILE_NOT_FOUND');
      expect(error.message, args[0]).toBe(`Expected an existing model file for <model> but received '${missing}': no such file`);
    }
  });

  it('a directory is ERR_KILN_NOT_A_FILE and an empty file says it is empty, in every command', async () => {
    const empty = join(dir, 'empty.kiln');
    await writeFile(empty, new Uint8Array(0));
    for (const cmd of ['info', 'verify', 'export', 'eval']) {
      const extra = cmd === 'export' ? ['--out', join(dir, 'e.onnx')] : cmd === 'eval' ? ['--dataset', 'synthetic'] : [];
      const d = errorOf(await runCli(cmd, dir, ...extra, '--json'));
      expect(d.code, cmd).toBe('ERR_KILN_NOT_A_FILE');
      expect(d.message, cmd).toContain('which is a directory');
      const e = errorOf(await runCli(cmd, empty, ...extra, '--json'));
      expect(e.code, cmd).toBe('ERR_KILN_CORRUPT_MODEL');
      expect(e.message, cmd).toContain('an empty file (0 bytes)');
    }
  });

  it('a file that is neither format is named as neither', async () => {
    const junk = join(dir, 'junk.bin');
    await writeFile(junk, new Uint8Array([0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7]));
    const error = errorOf(await runCli('info', junk, '--json'));
    expect(error.code).toBe('ERR_KILN_CORRUPT_MODEL');
    expect(error.message).toContain('neither');
  });

  it('info describes an ONNX model rather than calling it a corrupt .kiln', async () => {
    const r = await runCli('info', onnxPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const fromOnnx = lastJson(r) as { format: string; parameters: number; macsPerImage: number; inputShape: number[] };
    const fromKiln = lastJson(await runCli('info', model, '--json')) as { format: string; parameters: number; macsPerImage: number };
    expect(fromOnnx.format).toBe('onnx');
    expect(fromKiln.format).toBe('kiln');
    expect(fromOnnx.parameters).toBe(fromKiln.parameters);
    expect(fromOnnx.macsPerImage).toBe(fromKiln.macsPerImage);
    expect(fromOnnx.inputShape).toEqual([1, 28, 28]);
  });

  it('load(), InferenceSession.create() and onnx.importModel() use the same codes', async () => {
    const missing = join(dir, 'gone.kiln');
    const empty = join(dir, 'zero.kiln');
    await writeFile(empty, new Uint8Array(0));
    await expect(load(missing)).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining(missing) });
    await expect(load(dir)).rejects.toMatchObject({ code: 'ERR_KILN_NOT_A_FILE' });
    await expect(load(onnxPath)).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining('looks like an ONNX model') });
    await expect(InferenceSession.create(missing)).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND' });
    await expect(InferenceSession.create(dir)).rejects.toMatchObject({ code: 'ERR_KILN_NOT_A_FILE' });
    // A zero-byte .kiln is an empty file, not an ONNX decoding error.
    await expect(InferenceSession.create(empty)).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining('empty file (0 bytes)') });
    await expect(InferenceSession.create(new Uint8Array(0))).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining('zero bytes') });
    await expect(onnx.importModel(join(dir, 'gone.onnx'))).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND' });
    await expect(onnx.importModel(model)).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining('.kiln file') });
  });
});

describe('progress bars', () => {
  it("train's first frame shows values, never the {epoch} {loss} {acc} placeholders", async () => {
    const { r, drawn } = await withTerminal(() => runCli('train', ...SMALL, '--out', join(dir, 'bar.kiln')));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(drawn).toContain('epoch 1 |');
    expect(drawn).not.toMatch(/\{(epoch|loss|acc|value|total)\}/);
  });

  it('bench and verify draw bars; --json draws none', async () => {
    const b = await withTerminal(() => runCli('bench', onnxPath, '--batches', '1,2', '--thread-counts', '1', '--min-ms', '5'));
    expect(b.r.exitCode, b.r.stderr).toBe(0);
    expect(b.drawn).toMatch(/bench \|.*\| \d\/2 cells/);
    const v = await withTerminal(() => runCli('verify', onnxPath, '--count', '8'));
    expect(v.r.exitCode, v.r.stderr).toBe(0);
    expect(v.drawn).toMatch(/verify \|.*\| \d+% /);
    expect(v.drawn).not.toMatch(/\{[a-z]+\}/);
    const j = await withTerminal(() => runCli('verify', onnxPath, '--count', '8', '--json'));
    expect(j.r.exitCode).toBe(0);
    expect(j.drawn).toBe('');
  });

  it("QAT's bar counts batches, not epochs", async () => {
    const { r, drawn } = await withTerminal(() =>
      runCli('quantize', model, '--calibrate', 'synthetic', '--qat', '--epochs', '1', '--eval-images', '16', '--out', join(dir, 'qat.kiln')),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    // 2,048 synthetic training images in batches of 64: 32 steps in the one epoch.
    expect(drawn).toContain('0/32 batches');
    expect(drawn).toContain('epoch 1/1');
  }, 60_000);
});

describe('flags checked up front', () => {
  it('--threads above the hardware threads is lowered to them, with a warning', async () => {
    const most = availableParallelism();
    try {
      const r = await runCli('--threads', String(most + 998), 'info', model, '--json');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain(`--threads ${most + 998} is more than the ${most} hardware threads`);
      expect(cpuInfo().threads).toBe(most);
    } finally {
      setNumThreads(0);
    }
  });

  it('verify --count above the held-out split is refused before any comparison', async () => {
    const error = errorOf(await runCli('verify', onnxPath, '--dataset', 'synthetic', '--count', '600', '--json'));
    expect(error.code).toBe('ERR_KILN_INVALID_ARG');
    expect(error.message).toContain('--count');
    expect(error.message).toContain('at most 512');
    const r = await runCli('verify', onnxPath, '--count', '100000', '--json');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--count');
  });

  it('bench without --vs-ort times Kiln alone', async () => {
    const r = await runCli('bench', model, '--batches', '1,4', '--thread-counts', '1', '--min-ms', '5', '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const rows = (lastJson(r) as { rows: { threads: number; batch: number; kiln: { medianMs: number }; ort?: unknown }[] }).rows;
    expect(rows.map((row) => [row.threads, row.batch])).toEqual([[1, 1], [1, 4]]);
    for (const row of rows) {
      expect(row.kiln.medianMs).toBeGreaterThan(0);
      expect(row.ort).toBeUndefined();
    }
  });

  it('bench --profile reports each cell\'s steps: kernel, time, GFLOP/s and fraction of the measured peak', async () => {
    const r = await runCli('bench', model, '--batches', '2', '--thread-counts', '1', '--min-ms', '5', '--profile', '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const [row] = (lastJson(r) as { rows: { profile: { runs: number; images: number; steps: { op: string; kernel: string; ms: number; gflops: number; fractionOfPeak: number }[] } }[] }).rows;
    expect(row!.profile.runs).toBeGreaterThan(0);
    expect(row!.profile.images).toBe(2 * row!.profile.runs);
    const conv = row!.profile.steps.find((s) => s.op === 'Conv')!;
    expect(conv.kernel).toMatch(/^Conv /);
    expect(conv.gflops).toBeGreaterThan(0);
    expect(conv.fractionOfPeak).toBeGreaterThan(0);
    expect(conv.fractionOfPeak).toBeLessThan(2);
    const text = await runCli('bench', model, '--batches', '1', '--thread-counts', '1', '--min-ms', '5', '--profile', '--top', '3');
    expect(text.stdout).toMatch(/profile \(--profile; peak = measured single-core peak x threads: fp32 FMA [\d.]+ GFLOP\/s, int8 [\d.]+ GOP\/s/);
    expect(text.stdout).toMatch(/of peak/);
    expect((await runCli('bench', model, '--profile', '--vs-ort', '--min-ms', '5')).exitCode).not.toBe(0);
  });

  it('eval refuses a --seed other than the one the model was trained with, and defaults to it', async () => {
    const seeded = join(dir, 'seed3.kiln');
    expect((await runCli('train', ...SMALL, '--seed', '3', '--out', seeded, '--json')).exitCode).toBe(0);
    const error = errorOf(await runCli('eval', seeded, '--dataset', 'synthetic', '--seed', '2', '--json'));
    expect(error.code).toBe('ERR_KILN_INVALID_ARG');
    expect(error.message).toContain('--seed');
    expect(error.message).toContain('3');
    const r = await runCli('eval', seeded, '--dataset', 'synthetic', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(lastJson(r).seed).toBe(3);
    expect((await runCli('eval', seeded, '--dataset', 'synthetic', '--seed', '3', '--json')).exitCode).toBe(0);
    // The int8 model keeps the training split: the same check applies to it.
    const q = join(dir, 'seed3-int8.kiln');
    expect((await runCli('quantize', seeded, '--calibrate', 'synthetic', '--batches', '1', '--eval-images', '16', '--out', q, '--json')).exitCode).toBe(0);
    expect(errorOf(await runCli('eval', q, '--dataset', 'synthetic', '--seed', '1', '--json')).message).toContain('--seed');
  }, 60_000);

  it('InferenceSession.create() refuses an unknown option with the same error shape as quantize()', async () => {
    const net = await load(model);
    const session = await InferenceSession.create(net, { foo: 1 } as never).catch((e: unknown) => e);
    const fromQuantize = await quantize(net, datasets.synthetic({ count: 8, imageShape: [1, 28, 28], numClasses: 10 }), { foo: 1 } as never).catch((e: unknown) => e);
    for (const err of [session, fromQuantize]) {
      expect(err).toBeInstanceOf(RangeError);
      expect(err).toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
      expect((err as Error).message).toMatch(/^Expected only the keys .+ for options but received "foo" \(string\)$/);
    }
    await expect(InferenceSession.create(model, { foo: 1 } as never)).rejects.toThrow(/intraOpNumThreads, allowSpinning, graphOptimizationLevel, sparseKernels, inputShape/);
  });
});



