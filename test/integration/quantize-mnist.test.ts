/**
 * Post-training int8 quantization on real MNIST: a briefly trained SeedCNN, calibrated on the train
 * split, must lose at most 0.3 points of held-out accuracy on the 2,000 held-out digits, measured by
 * actually running the int8 graph (the native runtime when it can run it, else the int8 reference
 * interpreter; the test prints which). Then `kiln quantize` end to end on the same model.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { main } from '../../src/cli/main.js';
import type { Dataset } from '../../src/data/dataset.js';
import { mnist } from '../../src/data/mnist.js';
import { ErrorCode, KilnError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { evaluate } from '../../src/train/evaluate.js';
import { countCorrect } from '../../src/train/metrics.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';

const { train: trainSet, test } = mnist({ seed: 1 });
const dir = await mkdtemp(join(tmpdir(), 'kiln-quantize-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
await train(model, trainSet, { ...defaultMnistRecipe, epochs: 2 });

/** Correct predictions of an int8 graph on `data`: on the runtime if it runs the graph, else on the reference. */
async function int8Correct(graph: Graph, data: Dataset): Promise<{ correct: number; engine: string }> {
  const per = 28 * 28;
  const input = graph.inputs[0].name;
  const output = graph.outputs[0].name;
  let session: InferenceSession | undefined;
  try {
    session = await InferenceSession.create(graph);
  } catch (err) {
    if (!(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
  }
  let correct = 0;
  const batch = session ? 500 : 50;
  for (let start = 0; start < data.length; start += batch) {
    const n = Math.min(batch, data.length - start);
    const x = new Tensor('float32', data.images.subarray(start * per, (start + n) * per), [n, 1, 28, 28]);
    const logits = session ? (await session.run({ [input]: x }))[output] : runInt8Reference(graph, { [input]: x })[output];
    correct += countCorrect(logits.data as Float32Array, data.labels.subarray(start, start + n), n, 10);
  }
  session?.release();
  return { correct, engine: session ? 'native int8 runtime' : 'int8 reference interpreter' };
}

describe('int8 PTQ of SeedCNN on MNIST', () => {
  it('loses at most 0.3 points of held-out accuracy on the 2,000 held-out digits', async () => {
    const fp32 = await evaluate(model, test);
    expect(fp32.count).toBe(2000);
    const { graph, report } = await quantize(model, trainSet, { method: 'minmax', batches: 16 });
    const { correct, engine } = await int8Correct(graph, test);
    const int8 = correct / 2000;
    console.log(
      `MNIST PTQ (minmax, 1,024 calibration images): fp32 ${(fp32.accuracy * 100).toFixed(2)}%, int8 ${(int8 * 100).toFixed(2)}% on 2,000 held-out digits (${engine}); ` +
        `layer SQNR dB ${report.layers.map((l) => l.sqnrDb!.toFixed(1)).join(', ')}`,
    );
    expect(fp32.accuracy).toBeGreaterThan(0.96);
    expect(int8).toBeGreaterThanOrEqual(fp32.accuracy - 0.003);
    // The int8 graph survives a .kiln round trip unchanged.
    const path = join(dir, 'q.kiln');
    await save(graph, path);
    expect((await loadGraph(path)).nodes).toEqual(graph.nodes);
  }, 600_000); // CPU time is ~20 s; the generous limit absorbs a shared, loaded machine.

  it('kiln quantize: report table, fp32 vs int8 accuracy, --json last line, the .kiln written', async () => {
    const modelPath = join(dir, 'seed.kiln');
    await save(model, modelPath);
    const out = join(dir, 'cli-q.kiln');
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string | Uint8Array) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => (chunks.push(String(c)), true)) as typeof process.stderr.write;
    try {
      await main(['node', 'kiln', 'quantize', modelPath, '--calibrate', 'mnist', '--method', 'percentile', '--percentile', '99.99', '--batches', '4', '--eval-images', '200', '--out', out, '--json']);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const text = chunks.join('');
    expect(process.exitCode ?? 0).toBe(0);
    expect(text).toMatch(/layer\s+op\s+in scale/);
    const result = JSON.parse(text.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(result).toMatchObject({ method: 'percentile', percentile: 99.99, calibrationBatches: 4, calibrationImages: 256, evalImages: 200, out });
    expect(result.int8Accuracy as number).toBeGreaterThan(0.9);
    expect(Math.abs((result.int8Accuracy as number) - (result.fp32Accuracy as number))).toBeLessThan(0.03);
    expect((result.layers as unknown[]).length).toBe(4);
    const graph = await loadGraph(out);
    expect(graph.nodes.filter((n) => n.op.startsWith('QLinear'))).toHaveLength(4);
  }, 600_000);

  it('kiln quantize: bad flags end in exit code 1 naming the flag, no crash', async () => {
    const modelPath = join(dir, 'seed.kiln');
    for (const [args, flag] of [
      [['--out', join(dir, 'x.kiln')], '--calibrate'],
      [['--calibrate', 'mnist', '--activations', 'int4', '--out', join(dir, 'x.kiln')], '--activations'],
      [['--calibrate', 'mnist', '--method', 'kl', '--out', join(dir, 'x.kiln')], '--method'],
      [['--calibrate', 'mnist', '--percentile', '99', '--out', join(dir, 'x.kiln')], '--percentile'],
    ] as const) {
      const chunks: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((c: string | Uint8Array) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
      const previous = process.exitCode;
      try {
        await main(['node', 'kiln', 'quantize', modelPath, ...args, '--json']);
        expect(process.exitCode).toBe(1);
      } finally {
        process.stdout.write = write;
        process.exitCode = previous;
      }
      const error = (JSON.parse(chunks.join('').trim().split('\n').pop()!) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('ERR_KILN_INVALID_ARG');
      expect(error.message).toContain(flag);
    }
  });
});
