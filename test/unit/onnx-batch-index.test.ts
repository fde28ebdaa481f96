/**
 * Index tensors built from the dynamic batch size (src/onnx/batch-index.ts): the dynamo
 * exporter's as_strided-on-a-flattened-tensor pattern runs as a per-image Gather and matches
 * ORT at several batch sizes; other uses of such indices are refused with a reason.
 */
import { describe, expect, it } from 'vitest';

import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { attr, int64Tensor, maxScaledDiff, model, node, randomData, runOrt, valueInfo } from './onnx-model-builder.js';

/** x [N, C, 1, 1] -> view(-1) -> as_strided([N, C, 1, 1]) with a channel permutation, as dynamo writes it. */
function stridedHead(scale: number, delta = 1): Uint8Array {
  const c = 6;
  return model({
    opset: 21,
    inputs: [valueInfo('x', ['batch', c, 1, 1])],
    outputs: [valueInfo('y', ['batch', c, 1, 1])],
    initializers: [
      int64Tensor('flat', [1], [-1]),
      int64Tensor('zero', [], [0]),
      int64Tensor('delta', [], [delta]),
      int64Tensor('scale', [], [scale]),
      int64Tensor('axes', [3], [1, 2, 3]),
      int64Tensor('channels', [1, c, 1, 1], [5, 3, 1, 0, 2, 4]),
      int64Tensor('none', [1, 1, 1, 1], [0]),
    ],
    nodes: [
      node('Shape', ['x'], ['shape'], [attr.i('start', 0), attr.i('end', 1)]),
      node('Squeeze', ['shape'], ['batch']),
      node('Range', ['zero', 'batch', 'delta'], ['rows']),
      node('Mul', ['rows', 'scale'], ['starts']),
      node('Unsqueeze', ['starts', 'axes'], ['starts4']),
      node('Add', ['starts4', 'channels'], ['index']),
      node('Add', ['index', 'none'], ['index2']),
      node('Reshape', ['x', 'flat'], ['x_flat']),
      node('Gather', ['x_flat', 'index2'], ['y'], [attr.i('axis', 0)]),
    ],
  });
}

describe('batch-dependent Gather indices (dynamo as_strided)', () => {
  it('runs as a per-image Gather and matches ORT at batch 1, 2 and 5', async () => {
    const bytes = stridedHead(6);
    const session = await InferenceSession.create(bytes);
    for (const n of [1, 2, 5]) {
      const data = randomData(n * 6, n);
      const ours = await session.run({ x: new Tensor('float32', data, [n, 6, 1, 1]) });
      const ort = await runOrt(bytes, { x: { data, dims: [n, 6, 1, 1] } });
      expect(ours.y!.dims).toEqual([n, 6, 1, 1]);
      expect(maxScaledDiff(ours.y!.data, ort.y!.data)).toBe(0);
    }
    expect(session.info().steps.join('\n')).not.toMatch(/Range/);
    session.release();
  });

  it('refuses indices that cross images or a Range it cannot read, naming the reason', async () => {
    await expect(InferenceSession.create(stridedHead(5))).rejects.toMatchObject({ code: 'ERR_KILN_UNSUPPORTED_OP', message: expect.stringMatching(/Gather.*index tensor built from the dynamic batch size/) });
    await expect(InferenceSession.create(stridedHead(6, 2))).rejects.toMatchObject({ code: 'ERR_KILN_UNSUPPORTED_OP', message: expect.stringMatching(/Range.*0 \.\. N step 1/) });
  });
});
