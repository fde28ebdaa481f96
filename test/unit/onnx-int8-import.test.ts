/**
 * importModel on int8 ONNX models: each QOperator op and QDQ pattern on a small model written
 * node by node, checked two ways: the imported graph holds the int8 IR op expected (or the float
 * fallback the importer documents), and onnxruntime computes the same on Kiln's QDQ re-export of
 * the imported graph as on the original file. Bad int8 models end in a KilnError, never a crash.
 */
import { describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { exportModel, importModel } from '../../src/onnx/index.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { DataType, encodeModel, type INodeProto, type ITensorProto } from '../../src/onnx/proto.js';
import { Rng } from '../../src/util/rng.js';
import * as ort from 'onnxruntime-node';

import { attr, floatTensor, node, valueInfo } from './onnx-model-builder.js';

function tensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): ITensorProto {
  return dataType === DataType.FLOAT ? floatTensor(name, dims, values) : { name, dims, dataType, int32Data: Array.from(values) };
}

function ints(n: number, lo: number, hi: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => lo + Math.floor(rng.next() * (hi - lo + 1)));
}

function qmodel(nodes: INodeProto[], initializers: ITensorProto[], inputShape: (number | string)[], outputs = ['y'], inputs = ['x'], shapes: (number | string)[][] = []): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }],
    producerName: 'kiln-test',
    graph: {
      name: 'q',
      node: nodes,
      input: inputs.map((i, k) => valueInfo(i, shapes[k] ?? inputShape)),
      output: outputs.map((o) => valueInfo(o)),
      initializer: initializers,
    },
  });
}

function ms(n: INodeProto): INodeProto {
  return { ...n, domain: 'com.microsoft' };
}

const scalarF = (name: string, v: number): ITensorProto => tensor(name, DataType.FLOAT, [], [v]);
const scalarU8 = (name: string, v: number): ITensorProto => tensor(name, DataType.UINT8, [], [v]);
const scalarI8 = (name: string, v: number): ITensorProto => tensor(name, DataType.INT8, [], [v]);

function input(n: number, seed: number, lo = -1, hi = 3): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + rng.next() * (hi - lo));
}

async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>, level: 'disabled' | 'all' = 'all'): Promise<Record<string, { data: Float32Array }>> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: 1, graphOptimizationLevel: level });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', v.data, v.dims);
    const out = await session.run(f);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array }]));
  } finally {
    await session.release();
  }
}

/**
 * ORT on the original vs ORT on Kiln's QDQ export of the imported graph. Float fallbacks run with
 * ORT's optimizations off: at 'all' ORT quantizes the float weights between a DQ and a Q itself
 * (with its own scales), which is not what the graph says.
 */
async function roundTrip(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>, level: 'disabled' | 'all' = 'all'): Promise<{ graph: Graph; ours: Float32Array; theirs: Float32Array }> {
  const graph = await importModel(bytes);
  const theirs = (await runOrt(bytes, feeds)).y!.data;
  const ours = (await runOrt(exportModel(graph), feeds, level)).y!.data;
  return { graph, ours, theirs };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** x -> Q(uint8) -> QLinearConv(int8 per-channel weights, int32 bias) -> DQ -> y. */
function qlinearConvModel(opts: { weightType?: number; weightZp?: number[]; scale?: number; yZp?: ITensorProto; wScales?: number[] } = {}): Uint8Array {
  const [o, c] = [4, 3];
  const wType = opts.weightType ?? DataType.INT8;
  const w = wType === DataType.INT8 ? ints(o * c * 9, -127, 127, 1) : ints(o * c * 9, 0, 255, 1);
  return qmodel(
    [
      node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
      node('QLinearConv', ['xq', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz', 'b'], ['yq'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], 'conv'),
      node('DequantizeLinear', ['yq', 'ys', 'yz'], ['y']),
    ],
    [
      scalarF('xs', opts.scale ?? 1 / 64), scalarU8('xz', 64),
      tensor('w', wType, [o, c, 3, 3], w),
      tensor('ws', DataType.FLOAT, [(opts.wScales ?? [0.01, 0.02, 0.005, 0.03]).length], opts.wScales ?? [0.01, 0.02, 0.005, 0.03]),
      tensor('wz', wType, [(opts.weightZp ?? [0, 0, 0, 0]).length], opts.weightZp ?? [0, 0, 0, 0]),
      scalarF('ys', 0.05), opts.yZp ?? scalarU8('yz', 100),
      tensor('b', DataType.INT32, [o], [100, -2000, 0, 5000]),
    ],
    ['N', c, 7, 6],
  );
}

describe('importModel: QOperator int8 ops', () => {
  const feeds = { x: { data: input(2 * 3 * 7 * 6, 3), dims: [2, 3, 7, 6] } };

  it('QLinearConv with per-channel int8 weights becomes one int8 QLinearConv, bit-identical on ORT', async () => {
    const { graph, ours, theirs } = await roundTrip(qlinearConvModel(), feeds);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'DequantizeLinear']);
    const conv = graph.nodes[1]!;
    expect(conv.attrs).toMatchObject({ x_scale: Math.fround(1 / 64), x_zero_point: 64, y_scale: Math.fround(0.05), y_zero_point: 100, y_dtype: 'uint8', pads: [1, 1, 1, 1], group: 1 });
    expect(graph.initializers.get(conv.inputs[1]!)?.type).toBe('int8');
    expect(maxDiff(ours, theirs)).toBe(0);
  });

  it('uint8 weights with non-zero zero points fall back to a float Conv between DequantizeLinear and QuantizeLinear (within one step)', async () => {
    const { graph, ours, theirs } = await roundTrip(qlinearConvModel({ weightType: DataType.UINT8, weightZp: [128, 120, 130, 127] }), feeds, 'disabled');
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'DequantizeLinear', 'Conv', 'QuantizeLinear', 'DequantizeLinear']);
    expect(graph.initializers.get(graph.nodes[2]!.inputs[1]!)?.type).toBe('float32');
    expect(maxDiff(ours, theirs)).toBeLessThanOrEqual(0.05 + 1e-6);
  });

  it('QLinearMatMul and com.microsoft QLinearAdd of two run-time values', async () => {
    const [k, n] = [6, 5];
    const bytes = qmodel(
      [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('QLinearMatMul', ['xq', 'xs', 'xz', 'w', 'ws', 'wz', 'ms', 'mz'], ['mq'], [], 'matmul'),
        node('QuantizeLinear', ['z', 'zs', 'zz'], ['zq']),
        ms(node('QLinearAdd', ['mq', 'ms', 'mz', 'zq', 'zs', 'zz', 'ys', 'yz'], ['yq'], [], 'add')),
        node('DequantizeLinear', ['yq', 'ys', 'yz'], ['y']),
      ],
      [
        scalarF('xs', 0.02), scalarU8('xz', 50), tensor('w', DataType.INT8, [k, n], ints(k * n, -128, 127, 2)),
        tensor('ws', DataType.FLOAT, [n], [0.01, 0.02, 0.03, 0.015, 0.005]), tensor('wz', DataType.INT8, [n], [0, 0, 0, 0, 0]),
        scalarF('ms', 0.04), scalarU8('mz', 128), scalarF('zs', 0.03), scalarU8('zz', 10), scalarF('ys', 0.06), scalarU8('yz', 90),
      ],
      ['N', k], ['y'], ['x', 'z'], [['N', k], ['N', n]],
    );
    const graph = await importModel(bytes);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearGemm', 'QuantizeLinear', 'QLinearAdd', 'DequantizeLinear']);
    expect(graph.nodes[1]!.attrs).toMatchObject({ transB: 0, a_zero_point: 50, y_zero_point: 128 });
    // QLinearAdd needs equal shapes: z is [N, 5] like the MatMul's output.
    const f = { x: { data: input(3 * k, 4), dims: [3, k] }, z: { data: input(3 * n, 5), dims: [3, n] } };
    const zModel = await runOrt(bytes, f);
    const ours = await runOrt(exportModel(graph), f);
    expect(maxDiff(ours.y!.data, zModel.y!.data)).toBe(0);
  });

  it('DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Add becomes one DynamicQGemm', async () => {
    const [k, n] = [7, 4];
    const bytes = qmodel(
      [
        node('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xz']),
        node('MatMulInteger', ['xq', 'w', 'xz'], ['acc'], [], 'mmi'),
        node('Cast', ['acc'], ['accf'], [attr.i('to', 1)]),
        node('Mul', ['xs', 'ws'], ['scale']),
        node('Mul', ['accf', 'scale'], ['prod']),
        node('Add', ['prod', 'bias'], ['y']),
      ],
      [tensor('w', DataType.INT8, [k, n], ints(k * n, -127, 127, 6)), tensor('ws', DataType.FLOAT, [], [0.02]), tensor('bias', DataType.FLOAT, [n], [0.5, -0.25, 0, 1])],
      ['N', k],
    );
    const { graph, ours, theirs } = await roundTrip(bytes, { x: { data: input(5 * k, 7), dims: [5, k] } });
    expect(graph.nodes.map((n) => n.op)).toEqual(['DynamicQGemm']);
    expect(graph.nodes[0]!.inputs.length).toBe(4);
    expect(maxDiff(ours, theirs)).toBeLessThan(1e-5);
  });
});

describe('importModel: QDQ patterns', () => {
  it('Q -> DQ -> Relu -> Q with equal parameters after an int8 op is that op\'s fused ReLU (PyTorch style)', async () => {
    const bytes = qmodel(
      [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('QLinearMatMul', ['xq', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], ['mq'], [], 'matmul'),
        node('DequantizeLinear', ['mq', 'ys', 'yz'], ['mf']),
        node('Relu', ['mf'], ['r']),
        node('QuantizeLinear', ['r', 'ys', 'yz'], ['rq']),
        node('DequantizeLinear', ['rq', 'ys', 'yz'], ['y']),
      ],
      [scalarF('xs', 0.02), scalarU8('xz', 50), tensor('w', DataType.INT8, [4, 3], ints(12, -128, 127, 12)), scalarF('ws', 0.05), scalarI8('wz', 0), scalarF('ys', 0.01), scalarU8('yz', 128)],
      ['N', 4],
    );
    const { graph, ours, theirs } = await roundTrip(bytes, { x: { data: input(6 * 4, 13), dims: [6, 4] } });
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearGemm', 'DequantizeLinear']);
    expect(graph.nodes[1]!.attrs.kiln_activation).toBe('Relu');
    expect(maxDiff(ours, theirs)).toBe(0);
    expect(Math.min(...theirs)).toBe(0);
  });

  /** x -> Q -> DQ -> MatMul(DQ(w)) -> Add(bias) -> Relu -> Q -> DQ -> y, weights per column. */
  function qdqMatMul(weightZp: number, lead: (number | string)[] = ['N']): Uint8Array {
    const [k, n] = [5, 3];
    return qmodel(
      [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('DequantizeLinear', ['xq', 'xs', 'xz'], ['xf']),
        node('DequantizeLinear', ['w', 'ws', 'wz'], ['wf'], [attr.i('axis', 1)]),
        node('MatMul', ['xf', 'wf'], ['m'], [], 'matmul'),
        node('Add', ['m', 'bias'], ['a']),
        node('Relu', ['a'], ['r']),
        node('QuantizeLinear', ['r', 'ys', 'yz'], ['yq']),
        node('DequantizeLinear', ['yq', 'ys', 'yz'], ['y']),
      ],
      [
        scalarF('xs', 0.03), scalarI8('xz', 0),
        tensor('w', DataType.INT8, [k, n], ints(k * n, -127, 127, 8)), tensor('ws', DataType.FLOAT, [n], [0.01, 0.02, 0.04]),
        tensor('wz', DataType.INT8, [n], [weightZp, 0, 0]), tensor('bias', DataType.FLOAT, [n], [0.1, -0.2, 0.05]),
        scalarF('ys', 0.02), scalarI8('yz', 0),
      ],
      [...lead, k],
    );
  }
  const feeds = { x: { data: input(4 * 5, 9, -2, 2), dims: [4, 5] } };

  it('MatMul over the last axis of [N, 2, 3, K] (a ConvNeXt Linear in QDQ): one QLinearGemm on rank 4; Kiln\'s export of it (rows reshaped for Gemm) imports back as that one op', async () => {
    const rank4 = { x: { data: input(2 * 2 * 3 * 5, 10, -2, 2), dims: [2, 2, 3, 5] } };
    const { graph, ours, theirs } = await roundTrip(qdqMatMul(0, ['N', 2, 3]), rank4);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearGemm', 'DequantizeLinear']);
    expect(maxDiff(ours, theirs)).toBeLessThanOrEqual(0.02 + 1e-6);
    const again = await importModel(exportModel(graph));
    expect(again.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearGemm', 'DequantizeLinear']);
    // Kiln's runtime on the imported graph: the same codes as ORT on its own export of it.
    const session = await InferenceSession.create(again, { intraOpNumThreads: 1 });
    try {
      const native = (await session.run({ x: new Tensor('float32', rank4.x.data, rank4.x.dims) })).y!.data as Float32Array;
      expect(maxDiff(native, ours)).toBeLessThanOrEqual(1e-6);
    } finally {
      session.release();
    }
  });

  it('int8 activations, MatMul + constant bias + Relu between DQ and Q: one QLinearGemm with the ReLU fused', async () => {
    const { graph, ours, theirs } = await roundTrip(qdqMatMul(0), feeds);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearGemm', 'DequantizeLinear']);
    expect(graph.nodes[1]!.attrs).toMatchObject({ transB: 0, kiln_activation: 'Relu', y_dtype: 'int8' });
    // The float bias becomes int32 at a_scale * w_scale: one rounding, so within one output step.
    expect(maxDiff(ours, theirs)).toBeLessThanOrEqual(0.02 + 1e-6);
  });

  it('a weight with a non-zero zero point stays float (dequantized at import)', async () => {
    const { graph, ours, theirs } = await roundTrip(qdqMatMul(3), feeds, 'disabled');
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'DequantizeLinear', 'MatMul', 'Add', 'Relu', 'QuantizeLinear', 'DequantizeLinear']);
    // ORT runs it as integers (it takes weight zero points); Kiln in float: one output step apart at most.
    expect(maxDiff(ours, theirs)).toBeLessThanOrEqual(0.02 + 1e-6);
  });
});

describe('importModel: DQ -> Transpose -> Q on the codes', () => {
  for (const perm of [[0, 2, 3, 1], [0, 1, 3, 2]]) {
    it(`perm [${perm.join(', ')}] with equal parameters runs on the quantized value; Kiln's runtime gives ORT's output`, async () => {
      const bytes = qmodel(
        [
          node('QuantizeLinear', ['x', 's', 'z'], ['xq']),
          node('DequantizeLinear', ['xq', 's', 'z'], ['xf']),
          node('Transpose', ['xf'], ['t'], [attr.ints('perm', perm)]),
          node('QuantizeLinear', ['t', 's', 'z'], ['tq']),
          node('DequantizeLinear', ['tq', 's', 'z'], ['y']),
        ],
        [scalarF('s', 0.015625), scalarU8('z', 100)],
        ['N', 3, 4, 5],
      );
      const graph = await importModel(bytes);
      expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'Transpose', 'DequantizeLinear']);
      const x = input(2 * 3 * 4 * 5, 12, -1.5, 1.5);
      const theirs = (await runOrt(bytes, { x: { data: x, dims: [2, 3, 4, 5] } })).y!.data;
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      try {
        const ours = (await session.run({ x: new Tensor('float32', x, [2, 3, 4, 5]) })).y!.data as Float32Array;
        expect(Array.from(ours)).toEqual(Array.from(theirs));
      } finally {
        session.release();
      }
    });
  }
});

describe('importModel: bad int8 models', () => {
  async function error(bytes: Uint8Array): Promise<{ code?: string; message: string }> {
    try {
      await importModel(bytes);
    } catch (err) {
      return err as { code?: string; message: string };
    }
    throw new Error('expected importModel to throw');
  }

  it('scale 0, NaN or negative', async () => {
    for (const s of [0, NaN, -0.5, Infinity]) {
      const e = await error(qlinearConvModel({ scale: s }));
      expect(e.code).toBe('ERR_KILN_CORRUPT_MODEL');
      expect(e.message).toMatch(/Expected positive finite scales for input 1 \('xs'\) of (QuantizeLinear|QLinearConv)/);
    }
  });

  it('per-axis scales whose length is not the channel count', async () => {
    const e = await error(qlinearConvModel({ wScales: [0.1, 0.2, 0.3], weightZp: [0, 0, 0] }));
    expect(e.code).toBe('ERR_KILN_CORRUPT_MODEL');
    expect(e.message).toMatch(/Expected 4 per-axis scales .* for QLinearConv 'conv' but received 3/);
  });

  it('a zero point outside the uint8/int8 range (int32 typed) or of the wrong count', async () => {
    const e = await error(qlinearConvModel({ yZp: tensor('yz', DataType.INT32, [], [300]) }));
    expect(e.code).toBe('ERR_KILN_CORRUPT_MODEL');
    expect(e.message).toMatch(/uint8 or int8 zero point .* received an int32 zero point 300/);
    const e2 = await error(qlinearConvModel({ weightZp: [0, 0] }));
    expect(e2.message).toMatch(/Expected 4 zero point\(s\) like the scales for input 5 \('wz'\) of QLinearConv 'conv' but received 2/);
  });

  it('QuantizeLinear to 16 bits (valid ONNX Kiln does not run) is unsupported, not corrupt', async () => {
    const wide = qmodel(
      [node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']), node('DequantizeLinear', ['xq', 'xs', 'xz'], ['y'])],
      [scalarF('xs', 0.1), tensor('xz', DataType.INT16, [], [300])],
      ['N', 3],
    );
    const e = await error(wide);
    expect(e.code).toBe('ERR_KILN_UNSUPPORTED_OP');
    expect(e.message).toMatch(/QuantizeLinear .*wider than 8 bits/);
    // (Blocked Q/DQ runs: test/unit/onnx-qdq-float-form.test.ts.)
  });

  it('MatMulInteger outside the dynamic pattern is unsupported, named', async () => {
    const mmi = qmodel(
      [node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']), node('MatMulInteger', ['xq', 'w'], ['acc'], [], 'lonely'), node('Cast', ['acc'], ['y'], [attr.i('to', 1)])],
      [scalarF('xs', 0.1), scalarU8('xz', 0), tensor('w', DataType.INT8, [3, 2], [1, 2, 3, 4, 5, 6])],
      ['N', 3],
    );
    const e = await error(mmi);
    expect(e.code).toBe('ERR_KILN_UNSUPPORTED_OP');
    expect(e.message).toMatch(/MatMulInteger 'lonely' \(MatMulInteger outside a DynamicQuantizeLinear/);
// (Per-axis Q/DQ of run-time values runs: test/unit/onnx-qdq-float-form.test.ts.)
  });

  it('truncated and corrupt int8 files', async () => {
    const good = qlinearConvModel();
    for (const cut of [7, 100, Math.floor(good.length / 2), good.length - 3]) {
      const e = await error(good.subarray(0, cut));
      expect(e.code).toBe('ERR_KILN_CORRUPT_MODEL');
    }
    // int8 weight whose raw data is shorter than its dims say.
    const short = qmodel(
      [node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']), node('QLinearMatMul', ['xq', 'xs', 'xz', 'w', 'ws', 'wz', 'xs', 'xz'], ['yq']), node('DequantizeLinear', ['yq', 'xs', 'xz'], ['y'])],
      [scalarF('xs', 0.1), scalarU8('xz', 0), { name: 'w', dims: [3, 2], dataType: DataType.INT8, rawData: new Uint8Array(5) }, scalarF('ws', 0.1), scalarI8('wz', 0)],
      ['N', 3],
    );
    const e = await error(short);
    expect(e.code).toBe('ERR_KILN_CORRUPT_MODEL');
    expect(e.message).toMatch(/Expected 6 bytes of data/);
    // Random byte flips: a KilnError or a graph, never anything else.
    const rng = new Rng(11);
    for (let trial = 0; trial < 200; trial++) {
      const bytes = good.slice();
      for (let f = 0; f < 3; f++) bytes[Math.floor(rng.next() * bytes.length)] = Math.floor(rng.next() * 256);
      try {
        await importModel(bytes);
      } catch (err) {
        expect((err as { code?: string }).code).toMatch(/^ERR_KILN_/);
      }
    }
  });
});
