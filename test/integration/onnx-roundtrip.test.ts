/**
 * Export round trip on real data: a SeedCNN (briefly trained, so its logits mean something)
 * exported to ONNX and run by onnxruntime-node agrees with Kiln on 512 MNIST digits, and
 * re-importing the export gives bit-identical Kiln outputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { mnist } from '../../src/data/mnist.js';
import { toGraph } from '../../src/graph/from-module.js';
import { seedCNN } from '../../src/nn/models.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { train } from '../../src/train/index.js';

describe('SeedCNN ONNX round trip on MNIST', () => {
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 });
  const { train: trainSet, test } = mnist();
  const count = 512;
  const images = new Tensor('float32', test.images.slice(0, count * 28 * 28), [count, 1, 28, 28]);

  beforeAll(async () => {
    // One pass over 2,048 training digits (a few seconds) gives ~90% test accuracy.
    const n = 2048;
    const subset = { ...trainSet, name: 'mnist-2k', images: trainSet.images.subarray(0, n * 784), labels: trainSet.labels.subarray(0, n), length: n };
    await train(model, subset, { epochs: 1, batchSize: 32, optimizer: { type: 'adam', lr: 2e-3 }, seed: 1 });
    model.eval();
  });

  it('onnxruntime on the exported file agrees with Kiln (relL2 <= 1e-5, same top-1)', async () => {
    const bytes = exportModel(model, { inputShape: [1, 28, 28] });
    const graph = await importModel(bytes);
    const result = await compareWithOnnxRuntime(bytes, { [graph.inputs[0]!.name]: images });
    expect(result.batch).toBe(count);
    for (const out of result.outputs) {
      expect(out.relL2).toBeLessThanOrEqual(1e-5);
      expect(out.top1Agreement).toBe(1);
    }
    // The Module itself (Kiln lowers it; ORT runs Kiln's export of it) gives the same verdict.
    const direct = await compareWithOnnxRuntime(model, { [graph.inputs[0]!.name]: images }, { inputShape: [1, 28, 28] });
    expect(direct.outputs[0]!.relL2).toBeLessThanOrEqual(1e-5);
  });

  it('re-importing the export gives bit-identical Kiln outputs', async () => {
    const original = toGraph(model, [1, 28, 28]);
    const reimported = await importModel(exportModel(model, { inputShape: [1, 28, 28] }));
    expect(reimported.inputs.map((i) => i.shape)).toEqual([['N', 1, 28, 28]]);
    const run = async (g: typeof original): Promise<Float32Array> => {
      const session = await InferenceSession.create(g);
      try {
        const out = await session.run({ [g.inputs[0]!.name]: images });
        return out[g.outputs[0]!.name]!.data as Float32Array;
      } finally {
        session.release();
      }
    };
    const [a, b] = [await run(original), await run(reimported)];
    expect(a.length).toBe(count * 10);
    expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(0);
  });
});

describe('compareWithOnnxRuntime in chunks', () => {
  it('runs 600 inputs as chunks of 256 rows, reports each runtime’s progress, and gives the one-piece result', async () => {
    const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 9 }).eval();
    const bytes = exportModel(model, { inputShape: [1, 28, 28] });
    const events: string[] = [];
    const chunked = await compareWithOnnxRuntime(bytes, 600, { onProgress: (p) => events.push(`${p.runtime} ${p.done}/${p.total}`) });
    expect(events).toEqual(['onnxruntime 256/600', 'onnxruntime 512/600', 'onnxruntime 600/600', 'kiln 256/600', 'kiln 512/600', 'kiln 600/600']);
    expect(chunked.batch).toBe(600);
    // Per-node comparisons run in one piece (and unfused): the same inputs agree as well.
    const whole = await compareWithOnnxRuntime(bytes, 600, { perNode: true });
    expect(chunked.outputs[0]!.top1Agreement).toBe(whole.outputs[0]!.top1Agreement);
    expect(chunked.outputs[0]!.maxAbsDiff).toBeLessThan(1e-5);
    expect(whole.outputs[0]!.maxAbsDiff).toBeLessThan(1e-5);
    await expect(compareWithOnnxRuntime(bytes, 2, { onProgress: 5 as never })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' });
  });
});
