/**
 * The quantization step kiln verify measures int8 differences in: the scale of a dequantized
 * output, one accumulator unit (x_scale * w_scale[channel]) of a float-output QLinear* op; and
 * argument checks of compareInt8WithOnnxRuntime.
 */
import { describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { diffInSteps } from '../../src/onnx/compare-int8.js';
import { compareInt8WithOnnxRuntime, outputSteps } from '../../src/onnx/index.js';
import { Tensor } from '../../src/tensor.js';

function gemmGraph(float: boolean): Graph {
  return {
    name: 'g',
    inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 3] }],
    nodes: [
      { name: 'q', op: 'QuantizeLinear', inputs: ['x'], outputs: ['xq'], attrs: { scale: 0.5, zero_point: 0, dtype: 'uint8' } },
      {
        name: 'fc', op: 'QLinearGemm', inputs: ['xq', 'w', 'ws'], outputs: [float ? 'f' : 'yq'],
        attrs: { transB: 1, a_scale: 0.5, a_zero_point: 0, ...(float ? {} : { y_scale: 0.25, y_zero_point: 3, y_dtype: 'uint8' }) },
      },
      float
        ? { name: 'id', op: 'Identity', inputs: ['f'], outputs: ['y'], attrs: {} }
        : { name: 'dq', op: 'DequantizeLinear', inputs: ['yq'], outputs: ['y'], attrs: { scale: 0.25, zero_point: 3 } },
    ],
    initializers: new Map<string, Tensor>([['w', new Tensor('int8', [1, 2, 3, 4, 5, 6], [3, 2])], ['ws', new Tensor('float32', [0.1, 0.2, 0.4], [3])]]),
  };
}

describe('outputSteps and diffInSteps', () => {
  it('a dequantized output steps by its scale; a float QLinearGemm output by a_scale * w_scale[o]', () => {
    expect(Array.from(outputSteps(gemmGraph(false)).get('y')!)).toEqual([0.25]);
    expect(Array.from(outputSteps(gemmGraph(true)).get('y')!)).toEqual([0.05, 0.1, 0.2].map(Math.fround));
  });

  it('divides each difference by its channel step (axis 1)', () => {
    const step = Float32Array.from([0.5, 2]);
    // [N=1, C=2, H*W=2]: channel 0 differs by 1 (2 steps), channel 1 by 3 (1.5 steps).
    expect(diffInSteps([0, 0, 0, 0], [1, 0, 3, 0], [1, 2, 1, 2], step)).toBe(2);
    expect(diffInSteps([0, 0], [0, 3], [1, 2], step)).toBe(1.5);
    expect(diffInSteps([NaN], [0], [1, 1], Float32Array.of(1))).toBeNaN();
  });
});

describe('compareInt8WithOnnxRuntime', () => {
  it('the reference interpreter against ORT on the QDQ export: every output within one step', async () => {
    for (const float of [false, true]) {
      const x = new Tensor('float32', [0, 1.5, 3, -1, 20, 7.25, 0.5, 0.5], [4, 2]);
      const r = await compareInt8WithOnnxRuntime(gemmGraph(float), { x }, undefined, { engine: 'reference' });
      expect(r).toMatchObject({ batch: 4, reference: 'qdq-export', engine: 'reference' });
      expect(r.outputs[0]!.maxDiffSteps).toBeLessThanOrEqual(1);
      expect(r.outputs[0]!.top1Agreement).toBe(1);
    }
  });

  it('runs 600 rows in chunks of 256 through both runtimes, reporting each, with the one-piece result', async () => {
    const x = new Tensor('float32', Float32Array.from({ length: 1200 }, (_, i) => ((i * 37) % 41) / 4), [600, 2]);
    const events: string[] = [];
    const chunked = await compareInt8WithOnnxRuntime(gemmGraph(false), { x }, undefined, { onProgress: (p) => events.push(`${p.runtime} ${p.done}/${p.total}`) });
    expect(events).toEqual(['onnxruntime 256/600', 'onnxruntime 512/600', 'onnxruntime 600/600', 'kiln 256/600', 'kiln 512/600', 'kiln 600/600']);
    const whole = await compareInt8WithOnnxRuntime(gemmGraph(false), { x }, undefined, { engine: 'reference' });
    expect(chunked).toMatchObject({ batch: 600, outputs: [{ maxDiffSteps: whole.outputs[0]!.maxDiffSteps, top1Agreement: whole.outputs[0]!.top1Agreement }] });
    await expect(compareInt8WithOnnxRuntime(gemmGraph(false), { x }, undefined, { onProgress: 1 as never })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
  });

  it('refuses a float graph, missing feeds and references that are neither a path nor bytes', async () => {
    const x = new Tensor('float32', [1, 2], [1, 2]);
    const float: Graph = { ...gemmGraph(true), nodes: [{ name: 'id', op: 'Identity', inputs: ['x'], outputs: ['y'], attrs: {} }] };
    await expect(compareInt8WithOnnxRuntime(float, { x })).rejects.toThrow(/quantized graph/);
    await expect(compareInt8WithOnnxRuntime(gemmGraph(true), {})).rejects.toThrow(/Expected a float32 Tensor for inputs\['x'\]/);
    await expect(compareInt8WithOnnxRuntime(gemmGraph(true), { x }, 42 as never)).rejects.toThrow(/a path or ONNX bytes for reference/);
  });
});
