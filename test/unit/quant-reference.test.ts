/**
 * The int8 reference interpreter: float ops against the native runtime on a SeedCNN graph, and each
 * int8 op against values worked out by hand (rounding half to even, saturation, fused ReLU at the
 * zero point, per-channel scales, the float32 multiplier, float outputs).
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { toGraph } from '../../src/graph/from-module.js';
import type { Graph, GraphNode } from '../../src/graph/ir.js';
import { optimizeGraph } from '../../src/graph/passes/index.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantParams, quantize } from '../../src/quant/qparams.js';
import { requantize, runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

function graphOf(nodes: GraphNode[], initializers: Record<string, Tensor>, inputShape: number[], output = 'y'): Graph {
  return {
    name: 't',
    inputs: [{ name: 'x', dtype: 'float32', shape: inputShape }],
    outputs: [{ name: output, dtype: 'float32', shape: [] }],
    nodes,
    initializers: new Map(Object.entries(initializers)),
  };
}

function node(op: string, inputs: string[], output: string, attrs: GraphNode['attrs'] = {}): GraphNode {
  return { name: output, op, inputs, outputs: [output], attrs };
}

describe('runInt8Reference float ops', () => {
  it('matches the native runtime on a SeedCNN graph (Conv+Relu, MaxPool, Flatten, Gemm)', async () => {
    const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25, seed: 3 });
    const graph = optimizeGraph(toGraph(model, [1, 12, 12]));
    const x = new Float32Array(3 * 144).map((_, i) => Math.sin(i * 0.37));
    const feed = new Tensor('float32', x, [3, 1, 12, 12]);
    const ref = runInt8Reference(graph, { [graph.inputs[0].name]: feed });
    const session = await InferenceSession.create(graph);
    const out = await session.run({ [graph.inputs[0].name]: feed });
    const name = graph.outputs[0].name;
    const a = ref[name].data as Float32Array;
    const b = out[name].data;
    expect(a.length).toBe(15);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 4);
  });
});

describe('runInt8Reference int8 ops', () => {
  it('QuantizeLinear / DequantizeLinear follow qparams (half to even, saturation)', () => {
    const x = new Float32Array([-3, -0.25, 0.25, 0.75, 1.25, 1000, 0]);
    const g = graphOf(
      [node('QuantizeLinear', ['x'], 'q', { scale: 0.5, zero_point: 10, dtype: 'uint8' }), node('DequantizeLinear', ['q'], 'y', { scale: 0.5, zero_point: 10 })],
      {},
      [7],
    );
    const r = runInt8Reference(g, { x: new Tensor('float32', x, [7]) }, { values: ['q'] });
    // -3/0.5=-6 -> 4; -0.5 -> -0 (even) -> 10; 0.5 -> 0 -> 10; 1.5 -> 2 -> 12; 2.5 -> 2 -> 12; 2000 -> 255
    expect(Array.from(r.q.data)).toEqual([4, 10, 10, 12, 12, 255, 10]);
    expect(Array.from(quantize(x, { kind: 'uint8', scale: 0.5, zeroPoint: 10 }))).toEqual(Array.from(r.q.data));
    expect(Array.from(r.y.data)).toEqual([-3, 0, 0, 1, 1, 122.5, 0]);
  });

  it('requantize rounds float32(acc) * multiplier half to even, saturates, clamps a fused ReLU at the zero point', () => {
    expect(requantize(5, 0.5, 100, 'uint8', false)).toBe(102); // 2.5 -> 2
    expect(requantize(7, 0.5, 100, 'uint8', false)).toBe(104); // 3.5 -> 4
    expect(requantize(-1000, 1, 100, 'uint8', false)).toBe(0);
    expect(requantize(1000, 1, 100, 'uint8', false)).toBe(255);
    expect(requantize(-7, 1, 100, 'uint8', true)).toBe(100);
    expect(requantize(-1000, 1, 0, 'int8', false)).toBe(-128);
    expect(requantize(1000, 1, 0, 'int8', false)).toBe(127);
    // float32(2^24 + 1) is 2^24: the accumulator goes through float32 as the contract says.
    expect(requantize(16777217, 1, 0, 'int8', false)).toBe(127);
  });

  it('QLinearConv: exact accumulators, per-channel multipliers, int32 bias, zero-point padding', () => {
    // x: 1x1x2x2 uint8 with zero point 3, w: 2 output channels of 1x1x2x2 int8, pads 1 on the left.
    const x = new Tensor('uint8', new Uint8Array([5, 3, 7, 1]), [1, 1, 2, 2]);
    const w = new Tensor('int8', new Int8Array([1, 2, 3, 4, -1, -1, -1, -1]), [2, 1, 2, 2]);
    const wScale = new Tensor('float32', new Float32Array([0.5, 0.25]), [2]);
    const bias = new Tensor('int32', new Int32Array([10, -4]), [2]);
    const attrs = { kernel_shape: [2, 2], strides: [1, 1], dilations: [1, 1], pads: [0, 1, 0, 0], group: 1, x_scale: 0.1, x_zero_point: 3, y_scale: 0.2, y_zero_point: 50, y_dtype: 'uint8' };
    const g: Graph = {
      name: 't',
      inputs: [{ name: 'x', dtype: 'uint8', shape: [1, 1, 2, 2] }],
      outputs: [{ name: 'y', dtype: 'uint8', shape: [] }],
      nodes: [node('QLinearConv', ['x', 'w', 's', 'b'], 'y', attrs)],
      initializers: new Map<string, Tensor>([['w', w], ['s', wScale], ['b', bias]]),
    };
    const y = runInt8Reference(g, { x }).y;
    expect(y.type).toBe('uint8');
    expect(y.dims).toEqual([1, 2, 1, 2]);
    // x - zp = [2, 0, 4, -2]. Output column 0 sees [pad, 2; pad, 4]: o0 = 2*2 + 4*4 = 20, o1 = -6.
    // Column 1 sees [2, 0; 4, -2]: o0 = 2 + 0 + 12 - 8 = 6, o1 = -4.
    const acc = [20 + 10, 6 + 10, -6 - 4, -4 - 4];
    const expected = acc.map((a, i) => {
      const m = Math.fround(Math.fround(0.1 * (i < 2 ? 0.5 : 0.25)) / 0.2);
      return Math.min(255, Math.max(0, Math.round(Math.fround(a * m)) + 50));
    });
    expect(Array.from(y.data)).toEqual(expected);
    // A float output: no y_* attrs.
    const { y_scale: _s, y_zero_point: _z, y_dtype: _d, ...floatAttrs } = attrs;
    g.nodes = [node('QLinearConv', ['x', 'w', 's', 'b'], 'y', { ...floatAttrs, kiln_activation: 'Relu' })];
    const yf = runInt8Reference(g, { x }).y;
    expect(yf.type).toBe('float32');
    expect(Array.from(yf.data)).toEqual([30, 16, 0, 0].map((a, i) => Math.fround(a * Math.fround(0.1 * (i < 2 ? 0.5 : 0.25)))));
  });

  it('QLinearGemm with transB and per-tensor scale; DynamicQGemm quantizes the batch from its own range', () => {
    const a = new Tensor('int8', new Int8Array([1, -2, 3, 4, 5, -6]), [2, 3]);
    const w = new Tensor('int8', new Int8Array([1, 1, 1, 2, 0, -1]), [2, 3]);
    const g: Graph = {
      name: 't',
      inputs: [{ name: 'a', dtype: 'int8', shape: [2, 3] }],
      outputs: [{ name: 'y', dtype: 'int8', shape: [] }],
      nodes: [node('QLinearGemm', ['a', 'w', 's', ''], 'y', { transB: 1, a_scale: 1, a_zero_point: 0, y_scale: 1, y_zero_point: 0, y_dtype: 'int8' })],
      initializers: new Map<string, Tensor>([['w', w], ['s', new Tensor('float32', new Float32Array([2]), [1])]]),
    };
    // rows: [1,-2,3]·[1,1,1]=2, ·[2,0,-1]=-1; [4,5,-6]·[1,1,1]=3, ·[2,0,-1]=14 -> times 2
    expect(Array.from(runInt8Reference(g, { a }).y.data)).toEqual([4, -2, 6, 28]);

    const x = new Float32Array([0.5, -1, 2, 0.25, 0, 1]);
    const wf = new Int8Array([3, -2, 1, 0, 5, 7]);
    const dg = graphOf([node('DynamicQGemm', ['x', 'w', 's', 'b'], 'y', { transB: 0 })], {
      w: new Tensor('int8', wf, [3, 2]),
      s: new Tensor('float32', new Float32Array([0.1, 0.2]), [2]),
      b: new Tensor('float32', new Float32Array([1, -1]), [2]),
    }, [2, 3]);
    const y = runInt8Reference(dg, { x: new Tensor('float32', x, [2, 3]) }).y.data as Float32Array;
    const p = quantParams({ min: -1, max: 2 }, 'uint8');
    const q = Array.from(quantize(x, p)).map((v) => v - p.zeroPoint);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        let acc = 0;
        for (let k = 0; k < 3; k++) acc += q[i * 3 + k] * wf[k * 2 + j];
        expect(y[i * 2 + j]).toBe(Math.fround(Math.fround(acc * Math.fround(p.scale * [0.1, 0.2][j])) + [1, -1][j]));
      }
    }
  });

  it('QLinearAdd computes in float32 and keeps MaxPool/Flatten quantized', () => {
    const g: Graph = {
      name: 't',
      inputs: [{ name: 'a', dtype: 'uint8', shape: [1, 1, 2, 2] }],
      outputs: [{ name: 'y', dtype: 'uint8', shape: [] }],
      nodes: [
        node('QLinearAdd', ['a', 'a'], 's', { a_scale: 0.5, a_zero_point: 10, b_scale: 0.5, b_zero_point: 10, y_scale: 0.25, y_zero_point: 0, y_dtype: 'uint8' }),
        node('MaxPool', ['s'], 'p', { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] }),
        node('Flatten', ['p'], 'y', { axis: 1 }),
      ],
      initializers: new Map(),
    };
    const r = runInt8Reference(g, { a: new Tensor('uint8', new Uint8Array([10, 12, 9, 200]), [1, 1, 2, 2]) }, { values: ['s'] });
    expect(Array.from(r.s.data)).toEqual([0, 8, 0, 255]);
    expect(r.y.type).toBe('uint8');
    expect(Array.from(r.y.data)).toEqual([255]);
    expect(r.y.dims).toEqual([1, 1]);
  });

  it('refuses ops it does not know with ERR_KILN_UNSUPPORTED_OP', () => {
    const g = graphOf([node('Hardmax', ['x'], 'y')], {}, [1]);
    expect(() => runInt8Reference(g, { x: new Tensor('float32', [1], [1]) })).toThrow(expect.objectContaining({ code: ErrorCode.UNSUPPORTED_OP }));
  });
});
