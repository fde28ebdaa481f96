/**
 * `kiln export q.kiln --out q.onnx` and `kiln verify q.kiln|q.onnx` on an int8 graph saved by
 * `save` (the form `kiln quantize` writes), through the same `main(argv)` bin/kiln.js calls, with
 * the --json last-line contract; a truncated int8 .kiln ends in exit code 1 and ERR_KILN_CORRUPT_MODEL.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { importModel } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { save } from '../../src/runtime/model-io.js';
import { firstImages, testSet, trainedSeedCnn, trainSet } from './onnx-int8-fixtures.js';
import { runCli } from './run-cli.js';

describe('kiln export and kiln verify on an int8 .kiln', () => {
  let dir = '';
  let graph: Graph;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-int8-cli-'));
    const net = await trainedSeedCnn();
    graph = (await quantize(net, firstImages(trainSet, 256), { reportImages: 0 })).graph;
    await save(graph, join(dir, 'q.kiln'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the QDQ export, which onnxruntime runs and which imports back into the same int8 ops', async () => {
    const out = join(dir, 'q.onnx');
    const r = await runCli('export', join(dir, 'q.kiln'), '--out', out, '--json');
    expect(r.exitCode).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(json).toMatchObject({ out, opset: 17 });
    const bytes = new Uint8Array(await readFile(out));
    expect((await importModel(bytes)).nodes.map((n) => n.op)).toEqual(graph.nodes.map((n) => n.op));
    const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    const x = firstImages(testSet, 4);
    const y = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data, x.dims.slice()) });
    expect(y[session.outputNames[0]!]!.dims).toEqual([4, 10]);
    await session.release();
  });

  it('kiln verify compares Kiln int8 with ORT: on the QDQ export for a .kiln, on the file itself for an int8 .onnx', async () => {
    const onnxPath = join(dir, 'verify.onnx');
    expect((await runCli('export', join(dir, 'q.kiln'), '--out', onnxPath)).exitCode).toBe(0);
    for (const [path, reference] of [[join(dir, 'q.kiln'), 'qdq-export'], [onnxPath, 'onnx-file']] as const) {
      const r = await runCli('verify', path, '--dataset', 'mnist', '--count', '1000', '--json');
      expect(r.exitCode).toBe(0);
      const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { int8: boolean; reference: string; engine: string; batch: number; outputs: { top1Agreement: number; maxDiffSteps?: number }[] };
      console.log(`kiln verify ${path.endsWith('.kiln') ? 'q.kiln' : 'q.onnx'}: ${JSON.stringify(json.outputs[0])}`);
      expect(json).toMatchObject({ int8: true, reference, engine: 'runtime', batch: 1000 });
      expect(json.outputs[0]!.top1Agreement).toBeGreaterThanOrEqual(0.999);
      expect(json.outputs[0]!.maxDiffSteps).toBeLessThanOrEqual(1);
    }
    const human = await runCli('verify', join(dir, 'q.kiln'), '--count', '8');
    expect(human.stdout).toMatch(/Kiln int8 vs onnxruntime-node on Kiln's QDQ export, 8 random inputs:\n {2}\S+: top-1 agreement/);
  });

  it('a truncated int8 .kiln ends in exit code 1 and ERR_KILN_CORRUPT_MODEL, not a crash', async () => {
    const bytes = new Uint8Array(await readFile(join(dir, 'q.kiln')));
    const bad = join(dir, 'bad.kiln');
    await writeFile(bad, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const r = await runCli('export', bad, '--out', join(dir, 'bad.onnx'), '--json');
    expect(r.exitCode).toBe(1);
    const { error } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { error: { code: string; message: string } };
    expect(error.code).toBe('ERR_KILN_CORRUPT_MODEL');
    expect(error.message).toMatch(/^Corrupt \.kiln file/);
  });
});
