/**
 * Test helper: small ONNX models written directly as ModelProto messages (not through Kiln's
 * exporter), so import tests and ORT comparisons start from an independent file.
 */
import * as ort from 'onnxruntime-node';

import { AttributeType, DataType, encodeModel, type IAttributeProto, type INodeProto, type ITensorProto, type IValueInfoProto } from '../../src/onnx/proto.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

export const attr = {
  i: (name: string, i: number): IAttributeProto => ({ name, type: AttributeType.INT, i }),
  f: (name: string, f: number): IAttributeProto => ({ name, type: AttributeType.FLOAT, f }),
  ints: (name: string, ints: number[]): IAttributeProto => ({ name, type: AttributeType.INTS, ints }),
  floats: (name: string, floats: number[]): IAttributeProto => ({ name, type: AttributeType.FLOATS, floats }),
  s: (name: string, s: string): IAttributeProto => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(s) }),
  t: (name: string, t: ITensorProto): IAttributeProto => ({ name, type: AttributeType.TENSOR, t }),
};

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): ITensorProto {
  return { name, dims, dataType: DataType.FLOAT, floatData: Array.from(data) };
}

export function int64Tensor(name: string, dims: number[], data: number[]): ITensorProto {
  return { name, dims, dataType: DataType.INT64, int64Data: data };
}

/** Seeded values in [-scale, scale). */
export function randomData(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-scale, scale));
}

export function randomTensor(name: string, dims: number[], seed: number, scale = 1): ITensorProto {
  return floatTensor(name, dims, randomData(dims.reduce((a, b) => a * b, 1), seed, scale));
}

export function node(op: string, inputs: string[], outputs: string[], attribute: IAttributeProto[] = [], name?: string): INodeProto {
  return { opType: op, input: inputs, output: outputs, attribute, name: name ?? `${op.toLowerCase()}_${outputs[0]}` };
}

export function valueInfo(name: string, shape?: (number | string)[], elemType: number = DataType.FLOAT): IValueInfoProto {
  const tensorType: NonNullable<IValueInfoProto['type']>['tensorType'] = { elemType };
  if (shape) tensorType.shape = { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType } };
}

export interface ModelSpec {
  opset: number;
  inputs: IValueInfoProto[];
  outputs: IValueInfoProto[];
  nodes: INodeProto[];
  initializers?: ITensorProto[];
  valueInfo?: IValueInfoProto[];
  irVersion?: number;
}

/** IR version ORT expects with each opset. */
function irFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

export function model(spec: ModelSpec): Uint8Array {
  return encodeModel({
    irVersion: spec.irVersion ?? irFor(spec.opset),
    opsetImport: [{ domain: '', version: spec.opset }],
    producerName: 'kiln-test',
    graph: {
      name: 'test',
      node: spec.nodes,
      input: spec.inputs,
      output: spec.outputs,
      initializer: spec.initializers ?? [],
      valueInfo: spec.valueInfo ?? [],
    },
  });
}

/** Runs a model with onnxruntime-node on float inputs; returns every output by name. */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    // Float32Array feeds are float32; a Uint8Array or Int8Array feed is quantized codes.
    for (const [k, v] of Object.entries(feeds)) {
      const data = v.data as ArrayBufferView;
      ortFeeds[k] = data instanceof Uint8Array ? new ort.Tensor('uint8', data, v.dims) : data instanceof Int8Array ? new ort.Tensor('int8', data, v.dims) : new ort.Tensor('float32', v.data, v.dims);
    }
    const out = await session.run(ortFeeds);
    const result: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const [k, v] of Object.entries(out)) result[k] = { data: v.data as Float32Array, dims: v.dims.slice() };
    return result;
  } finally {
    await session.release();
  }
}

/** Kiln's InferenceSession on the same file and float32 feeds as runOrt, outputs in the same form. */
export async function runKiln(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await InferenceSession.create(bytes);
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)])));
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: t.dims.slice() }]));
  } finally {
    session.release();
  }
}

/** Largest |a - b| / max(1, |b|) over two equally long arrays (Infinity on a length mismatch). */
export function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** A small CNN in the style of a PyTorch export: dynamic batch, x.view(x.size(0), -1). */
export function smallCnn(): ModelSpec {
  return {
    opset: 13,
    inputs: [valueInfo('input', ['batch', 1, 8, 8])],
    outputs: [valueInfo('probs', ['batch', 5])],
    nodes: [
      node('Conv', ['input', 'conv.w', 'conv.b'], ['c1'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], 'conv'),
      node('Relu', ['c1'], ['r1'], [], 'relu'),
      node('MaxPool', ['r1'], ['p1'], [attr.ints('kernel_shape', [2, 2]), attr.ints('strides', [2, 2])], 'pool'),
      node('Shape', ['p1'], ['s'], [], 'shape'),
      node('Gather', ['s', 'zero'], ['n'], [attr.i('axis', 0)], 'gather'),
      node('Unsqueeze', ['n', 'axes0'], ['n1'], [], 'unsqueeze'),
      node('Concat', ['n1', 'minus1'], ['target'], [attr.i('axis', 0)], 'concat'),
      node('Reshape', ['p1', 'target'], ['flat'], [], 'reshape'),
      node('Gemm', ['flat', 'fc.w', 'fc.b'], ['logits'], [attr.i('transB', 1)], 'fc'),
      node('Softmax', ['logits'], ['probs'], [attr.i('axis', 1)], 'softmax'),
    ],
    initializers: [
      randomTensor('conv.w', [4, 1, 3, 3], 1, 0.5), randomTensor('conv.b', [4], 2, 0.1),
      randomTensor('fc.w', [5, 64], 3, 0.2), randomTensor('fc.b', [5], 4, 0.1),
      int64Tensor('zero', [], [0]), int64Tensor('axes0', [1], [0]), int64Tensor('minus1', [1], [-1]),
    ],
  };
}
