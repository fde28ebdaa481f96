/**
 * exportModel on int8 graphs (docs/int8-ir.md): small graphs of each int8 op run on
 * onnxruntime-node and agree with the op's definition computed here in float64; malformed int8
 * nodes are refused with a KilnError naming the node, never exported.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import type { Graph, GraphNode } from '../../src/graph/ir.js';
import { exportModel } from '../../src/onnx/index.js';
import { roundHalfEven } from '../../src/quant/qparams.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

function graph(nodes: GraphNode[], initializers: Record<string, Tensor>, inputShape: (number | string)[], output = 'y', inputs = ['x']): Graph {
  return {
    name: 'g',
    inputs: inputs.map((name) => ({ name, dtype: 'float32' as const, shape: inputShape })),
    outputs: [{ name: output, dtype: 'float32', shape: [] }],
    nodes,
    initializers: new Map(Object.entries(initializers)),
  };
}

async function runOrt(bytes: Uint8Array, feeds: Record<string, Float32Array>, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', v, shape);
    const out = await session.run(f);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const q = (x: number, s: number, zp: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(x / s)) + zp));

/**
 * Q(x) -> QLinearGemm (k -> m, per-channel weights, int32 bias, optional fused ReLU, quantized
 * output) -> DQ over an input of `inputShape`, and its definition computed here for every row.
 */
function gemmCase(seed: number, k: number, m: number, inputShape: (number | string)[], relu: boolean) {
  const rng = new Rng(seed);
  const w = Int8Array.from({ length: m * k }, () => Math.floor(rng.next() * 256) - 128);
  const ws = Float32Array.from({ length: m }, (_, i) => 0.01 * (i + 1));
  const bias = Int32Array.from({ length: m }, (_, i) => (i - 2) * 300);
  const [as, azp, ys, yzp] = [Math.fround(1 / 64), 3, Math.fround(0.05), 7];
  const g = graph(
    [
      { name: 'qa', op: 'QuantizeLinear', inputs: ['x'], outputs: ['xq'], attrs: { scale: as, zero_point: azp, dtype: 'uint8' } },
      { name: 'fc', op: 'QLinearGemm', inputs: ['xq', 'w', 'ws', 'b'], outputs: ['yq'], attrs: { transB: 1, a_scale: as, a_zero_point: azp, y_scale: ys, y_zero_point: yzp, y_dtype: 'uint8', ...(relu ? { kiln_activation: 'Relu' } : {}) } },
      { name: 'dq', op: 'DequantizeLinear', inputs: ['yq'], outputs: ['y'], attrs: { scale: ys, zero_point: yzp } },
    ],
    { w: new Tensor('int8', w, [m, k]), ws: new Tensor('float32', ws, [m]), b: new Tensor('int32', bias, [m]) },
    inputShape,
  );
  const input = (rows: number) => Float32Array.from({ length: rows * k }, () => rng.next() * 3 - (relu ? 0.2 : 1));
  const expectRows = (x: Float32Array, got: Float32Array) => {
    for (let r = 0; r < x.length / k; r++) {
      for (let o = 0; o < m; o++) {
        let acc = bias[o]!;
        for (let j = 0; j < k; j++) acc += (q(x[r * k + j]!, as, azp, 0, 255) - azp) * w[o * k + j]!;
        const mult = Math.fround(Math.fround(as * ws[o]!) / ys);
        const yq = Math.min(255 - yzp, Math.max(relu ? 0 : -yzp, roundHalfEven(Math.fround(acc * mult)))) + yzp;
        expect(got[r * m + o]).toBeCloseTo((yq - yzp) * ys, 5);
      }
    }
  };
  return { g, input, expectRows };
}

describe('exportModel: int8 ops as QDQ on onnxruntime', () => {
  it('QLinearGemm with per-channel weights, int32 bias, fused ReLU and a quantized output, then DequantizeLinear', async () => {
    const { g, input, expectRows } = gemmCase(5, 7, 5, ['N', 7], true);
    const x = input(3);
    expectRows(x, await runOrt(exportModel(g), { x }, [3, 7]));
  });

  // ConvNeXt's Linear layers: MatMul over the last axis of [N, H, W, C]. ONNX Gemm takes matrices
  // only, so the export reshapes to rows and back; static leading dims, then two unknown ones.
  for (const inputShape of [['N', 2, 3, 6], ['N', 'H', 3, 6]] as (number | string)[][]) {
    it(`QLinearGemm over the last axis of a rank-4 input [${inputShape.join(', ')}] exports as rows and runs on onnxruntime`, async () => {
      const { g, input, expectRows } = gemmCase(11, 6, 5, inputShape, false);
      const x = input(12);
      const session = await ort.InferenceSession.create(exportModel(g), { logSeverityLevel: 3 });
      try {
        const out = (await session.run({ x: new ort.Tensor('float32', x, [2, 2, 3, 6]) }))[session.outputNames[0]!]!;
        expect(out.dims).toEqual([2, 2, 3, 5]);
        expectRows(x, out.data as Float32Array);
      } finally {
        await session.release();
      }
    });
  }

  it('QLinearAdd of two int8 tensors and DynamicQGemm export and run', async () => {
    const g = graph(
      [
        { name: 'qa', op: 'QuantizeLinear', inputs: ['x'], outputs: ['xq'], attrs: { scale: 0.1, zero_point: 0, dtype: 'int8' } },
        { name: 'qb', op: 'QuantizeLinear', inputs: ['z'], outputs: ['zq'], attrs: { scale: 0.2, zero_point: 0, dtype: 'int8' } },
        { name: 'add', op: 'QLinearAdd', inputs: ['xq', 'zq'], outputs: ['sq'], attrs: { a_scale: 0.1, a_zero_point: 0, b_scale: 0.2, b_zero_point: 0, y_scale: 0.25, y_zero_point: 0, y_dtype: 'int8' } },
        { name: 'dq', op: 'DequantizeLinear', inputs: ['sq'], outputs: ['s'], attrs: { scale: 0.25, zero_point: 0 } },
        { name: 'dyn', op: 'DynamicQGemm', inputs: ['s', 'w', 'ws'], outputs: ['y'], attrs: { transB: 0 } },
      ],
      { w: new Tensor('int8', [1, -2, 3, 4, 5, -6], [2, 3]), ws: new Tensor('float32', [0.5], [1]) },
      ['N', 2],
      'y',
      ['x', 'z'],
    );
    const got = await runOrt(exportModel(g), { x: Float32Array.from([1, 2, -3, 0.4]), z: Float32Array.from([0.2, -1, 2, 2]) }, [2, 2]);
    // s = quantize(0.1*q(x) + 0.2*q(z)) at 0.25 -> [1.25, 1.0], [-1.0, 2.5]; then s @ (w * 0.5),
    // s quantized per call to uint8 over its own range [-1, 2.5]: every value is on that grid.
    const s = [1.25, 1.0, -1.0, 2.5];
    const w = [1, -2, 3, 4, 5, -6].map((v) => v * 0.5);
    const want = [0, 1].flatMap((r) => [0, 1, 2].map((c) => s[r * 2]! * w[c]! + s[r * 2 + 1]! * w[3 + c]!));
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 1));
  });
});

describe('exportModel: malformed int8 nodes are refused', () => {
  const base = (attrs: Partial<GraphNode['attrs']>, init: Record<string, Tensor> = {}): Graph =>
    graph(
      [
        { name: 'qa', op: 'QuantizeLinear', inputs: ['x'], outputs: ['xq'], attrs: { scale: 0.5, zero_point: 1, dtype: 'uint8' } },
        { name: 'fc', op: 'QLinearGemm', inputs: ['xq', 'w', 'ws', 'b'], outputs: ['y'], attrs: { transB: 1, a_scale: 0.5, a_zero_point: 1, ...attrs } as GraphNode['attrs'] },
      ],
      { w: new Tensor('int8', [1, 2, 3, 4], [2, 2]), ws: new Tensor('float32', [1, 1], [2]), b: new Tensor('int32', [0, 0], [2]), ...init },
      ['N', 2],
    );

  const cases: [string, Graph, RegExp][] = [
    ['scale 0', base({ a_scale: 0 }), /positive finite float32 scale for attribute a_scale of QLinearGemm 'fc' but received 0/],
    ['NaN scale', base({ y_scale: NaN, y_zero_point: 0 }), /attribute y_scale of QLinearGemm 'fc' but received NaN/],
    ['zero point out of range', base({ a_zero_point: 300 }), /\[0, 255\] \(uint8 zero point\) for attribute a_zero_point/],
    ['input parameters that differ from the producer', base({ a_zero_point: 2 }), /the parameters of its input/],
    ['per-axis scales of the wrong length', base({}, { ws: new Tensor('float32', [1, 1, 1], [3]) }), /float32 \[1\] or \[2\] scales for input 2 \(weight scale\)/],
    ['a negative channel scale', base({}, { ws: new Tensor('float32', [1, -1], [2]) }), /positive finite scale for weight scale \[1\]/],
    ['a float bias', base({}, { b: new Tensor('float32', [0, 0], [2]) }), /int32 \[2\] bias for input 3/],
    ['uint8 weights', base({}, { w: new Tensor('uint8', [1, 2, 3, 4], [2, 2]) }), /int8 initializer for input 1 \(weight\)/],
    ['a fused activation other than Relu', base({ kiln_activation: 'Sigmoid' }), /only kiln_activation 'Relu'/],
  ];
  for (const [what, g, message] of cases) {
    it(what, () => {
      let err: unknown;
      try {
        exportModel(g);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect((err as { code?: string }).code).toMatch(/^ERR_KILN_/);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('an int8 op reading a float value', () => {
    const g = base({});
    g.nodes[1]!.inputs[0] = 'x';
    expect(() => exportModel(g)).toThrow(/a quantized value .* for input 0 'x' of QLinearGemm 'fc'|Expected a quantized value/);
  });
});
