/**
 * Fixtures of the int8 ONNX tests: a briefly trained SeedCNN, its activation ranges over some
 * digits, a hand-built int8 IR graph of it (min/max ranges, per-channel int8 weights), and the
 * same model written node by node with protobufjs as an ONNX QDQ model and as a QOperator model
 * (nothing from Kiln's exporter), as a model "quantized elsewhere" would arrive.
 */
import type { Dataset } from '../../src/data/dataset.js';
import { mnist } from '../../src/data/mnist.js';
import { toGraph } from '../../src/graph/from-module.js';
import type { Graph, GraphNode } from '../../src/graph/ir.js';
import type { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { onnx, type INodeProto, type ITensorProto } from '../../src/onnx/proto.js';
import { perChannelQuantParams, quantizePerChannel, quantParams, roundHalfEven, type QuantKind } from '../../src/quant/qparams.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';

export const { train: trainSet, test: testSet } = mnist({ seed: 1 });

export function firstImages(d: Dataset, n: number): Tensor<'float32'> {
  const size = d.imageShape[0] * d.imageShape[1] * d.imageShape[2];
  return new Tensor('float32', d.images.slice(0, n * size), [n, ...d.imageShape]);
}

/** SeedCNN after one epoch on 2,048 digits (about 95% held out: logits with clear winners). */
export async function trainedSeedCnn(): Promise<Sequential> {
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 });
  const size = 28 * 28;
  const subset: Dataset = { ...trainSet, images: trainSet.images.subarray(0, 2048 * size), labels: trainSet.labels.subarray(0, 2048), length: 2048 };
  await train(model, subset, { ...defaultMnistRecipe, epochs: 1 });
  return model.eval() as Sequential;
}

/** One quantized layer of SeedCNN. */
export interface QuantLayer {
  kind: 'conv' | 'gemm';
  weight: Int8Array;
  dims: number[];
  wScale: Float32Array;
  /** int32, scale x_scale * w_scale[o]. */
  bias: Int32Array;
  /** The ReLU's output after it (all but the last layer), or undefined for the float logits. */
  out?: { scale: number; zeroPoint: number };
}

export interface QuantSeedCnn {
  input: { scale: number; zeroPoint: number };
  layers: QuantLayer[];
  dtype: QuantKind;
  /** Largest |logit - bias| seen in calibration, with some head room. */
  logitSpan: number;
}

/** Min/max of the ReLU outputs of SeedCNN over `images`, then the largest |logit|. */
async function reluRanges(net: Sequential, images: Tensor<'float32'>): Promise<{ min: number; max: number }[]> {
  const graph = toGraph(net, [1, 28, 28]);
  const relus = graph.nodes.filter((n) => n.op === 'Relu').map((n) => n.outputs[0]!);
  const withOutputs: Graph = { ...graph, outputs: [...graph.outputs, ...relus.map((name) => ({ name, dtype: 'float32' as const, shape: [] }))] };
  const session = await InferenceSession.create(withOutputs, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run({ input: images });
    const ranges = relus.map((name) => {
      let max = 0;
      for (const v of out[name]!.data) if (v > max) max = v;
      return { min: 0, max };
    });
    let logit = 0;
    for (const v of out.logits!.data) logit = Math.max(logit, Math.abs(v));
    return [...ranges, { min: -logit, max: logit }];
  } finally {
    session.release();
  }
}

/** Quantizes SeedCNN by hand: min/max activation ranges, symmetric per-channel int8 weights. */
export async function quantizeSeedCnn(net: Sequential, calibration: Tensor<'float32'>, dtype: QuantKind = 'uint8'): Promise<QuantSeedCnn> {
  const ranges = await reluRanges(net, calibration);
  const act = (r: { min: number; max: number }): { scale: number; zeroPoint: number } => {
    const p = quantParams(dtype === 'uint8' ? r : { min: -r.max, max: r.max }, dtype);
    return { scale: p.scale, zeroPoint: p.zeroPoint };
  };
  const input = act({ min: 0, max: 1 });
  const params = net.parameters().map((p) => p.value);
  const layers: QuantLayer[] = [];
  let xScale = input.scale;
  for (let l = 0; l < 4; l++) {
    const w = params[2 * l]!;
    const b = params[2 * l + 1]!;
    const pc = perChannelQuantParams(w.data, w.dims, 'int8');
    const bias = Int32Array.from(b.data, (v, o) => roundHalfEven(v / Math.fround(xScale * pc.scales[o]!)));
    const out = l < 3 ? act(ranges[l]!) : undefined;
    layers.push({ kind: l < 2 ? 'conv' : 'gemm', weight: quantizePerChannel(w.data, w.dims, pc) as Int8Array, dims: w.dims.slice(), wScale: pc.scales, bias, out });
    if (out) xScale = out.scale;
  }
  const maxBias = Math.max(...Array.from(params[7]!.data, Math.abs));
  return { input, layers, dtype, logitSpan: 1.25 * (ranges[3]!.max + maxBias) };
}

const CONV = { kernel_shape: [3, 3], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };
const POOL = { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] };

/** The int8 IR graph of a quantized SeedCNN (docs/int8-ir.md), as quantize() would produce it. */
export function int8Graph(q: QuantSeedCnn): Graph {
  const nodes: GraphNode[] = [];
  const initializers = new Map<string, Tensor>();
  let x = 'input_q';
  let xq = q.input;
  nodes.push({ name: 'quantize_input', op: 'QuantizeLinear', inputs: ['input'], outputs: [x], attrs: { scale: q.input.scale, zero_point: q.input.zeroPoint, dtype: q.dtype } });
  q.layers.forEach((layer, l) => {
    initializers.set(`w${l}`, new Tensor('int8', layer.weight, layer.dims));
    initializers.set(`w${l}_scale`, new Tensor('float32', layer.wScale, [layer.wScale.length]));
    initializers.set(`b${l}`, new Tensor('int32', layer.bias, [layer.bias.length]));
    const conv = layer.kind === 'conv';
    const out = layer.out ? `q${l}` : 'logits';
    const attrs: GraphNode['attrs'] = conv
      ? { ...CONV, x_scale: xq.scale, x_zero_point: xq.zeroPoint }
      : { transB: 1, a_scale: xq.scale, a_zero_point: xq.zeroPoint };
    if (layer.out) Object.assign(attrs, { y_scale: layer.out.scale, y_zero_point: layer.out.zeroPoint, y_dtype: q.dtype, kiln_activation: 'Relu' });
    nodes.push({ name: `layer${l}`, op: conv ? 'QLinearConv' : 'QLinearGemm', inputs: [x, `w${l}`, `w${l}_scale`, `b${l}`], outputs: [out], attrs });
    x = out;
    if (conv) {
      nodes.push({ name: `pool${l}`, op: 'MaxPool', inputs: [x], outputs: [`p${l}`], attrs: { ...POOL, ceil_mode: 0 } });
      x = `p${l}`;
    }
    if (l === 1) {
      nodes.push({ name: 'flatten', op: 'Flatten', inputs: [x], outputs: ['flat'], attrs: { axis: 1 } });
      x = 'flat';
    }
    if (layer.out) xq = layer.out;
  });
  return {
    name: 'seedcnn_int8',
    inputs: [{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }],
    nodes,
    initializers,
    metadata: { kiln_quantization: JSON.stringify({ scheme: 'hand-built min/max (test fixture)' }) },
  };
}

// ---------------------------------------------------------------------------------------------
// ONNX models built node by node.

type Proto = ReturnType<typeof onnx.ModelProto.create>;
const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

class ProtoBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private k = 0;

  tensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): string {
    const t: ITensorProto = { name, dataType, dims };
    if (dataType === DT.FLOAT) t.floatData = Array.from(values);
    else if (dataType === DT.INT64) t.int64Data = Array.from(values);
    else t.int32Data = Array.from(values); // int8, uint8 and int32 all live in int32_data
    this.initializers.push(t);
    return name;
  }

  scalar(base: string, dataType: number, value: number): string {
    return this.tensor(`${base}_${this.k++}`, dataType, [], [value]);
  }

  node(opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}, domain = ''): void {
    const attribute = Object.entries(attrs).map(([name, v]) => (Array.isArray(v) ? { name, type: 7, ints: v } : Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v }));
    this.nodes.push({ name: `${opType}_${this.nodes.length}`, opType, input, output, attribute, domain });
  }

  model(opsets: { domain: string; version: number }[]): Uint8Array {
    const m: Proto = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'onnx-int8-fixtures',
      opsetImport: opsets,
      graph: {
        name: 'seedcnn',
        node: this.nodes,
        initializer: this.initializers,
        input: [{ name: 'input', type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 28 }, { dimValue: 28 }] } } } }],
        output: [{ name: 'logits', type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 10 }] } } } }],
      },
    });
    return onnx.ModelProto.encode(m).finish();
  }
}

const qType = (dtype: QuantKind): number => (dtype === 'uint8' ? DT.UINT8 : DT.INT8);

/**
 * SeedCNN in QDQ form, as ONNX Runtime's quantizer writes it: Q/DQ pairs on activations,
 * DequantizeLinear (axis 0 or 1) on int8 weights and int32 biases, Relu folded into the output
 * QuantizeLinear's range, MaxPool and Reshape between a DQ and a Q with equal parameters.
 */
export function qdqModel(q: QuantSeedCnn): Uint8Array {
  const b = new ProtoBuilder();
  const t = qType(q.dtype);
  const dq = (x: string, p: { scale: number; zeroPoint: number }, out: string): string => {
    b.node('DequantizeLinear', [x, b.scalar('s', DT.FLOAT, p.scale), b.scalar('zp', t, p.zeroPoint)], [out]);
    return out;
  };
  const qz = (x: string, p: { scale: number; zeroPoint: number }, out: string): string => {
    b.node('QuantizeLinear', [x, b.scalar('s', DT.FLOAT, p.scale), b.scalar('zp', t, p.zeroPoint)], [out]);
    return out;
  };
  let x = qz('input', q.input, 'input_q');
  let xq = q.input;
  q.layers.forEach((layer, l) => {
    const conv = layer.kind === 'conv';
    const o = layer.dims[0]!;
    const axis = conv ? 0 : 1;
    // Gemm weights are written [K, N] (transB 0), so their per-channel axis is 1.
    let wData: ArrayLike<number> = layer.weight;
    let wDims = layer.dims;
    if (!conv) {
      const [n, k] = layer.dims as [number, number];
      const tr = new Int8Array(n * k);
      for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) tr[j * n + i] = layer.weight[i * k + j]!;
      wData = tr;
      wDims = [k, n];
    }
    b.tensor(`w${l}`, DT.INT8, wDims, wData);
    b.tensor(`w${l}_s`, DT.FLOAT, [o], layer.wScale);
    b.tensor(`w${l}_zp`, DT.INT8, [o], new Int8Array(o));
    b.node('DequantizeLinear', [`w${l}`, `w${l}_s`, `w${l}_zp`], [`w${l}_f`], { axis });
    b.tensor(`b${l}`, DT.INT32, [o], layer.bias);
    b.tensor(`b${l}_s`, DT.FLOAT, [o], layer.wScale.map((s) => Math.fround(xq.scale * s)));
    b.tensor(`b${l}_zp`, DT.INT32, [o], new Int32Array(o));
    b.node('DequantizeLinear', [`b${l}`, `b${l}_s`, `b${l}_zp`], [`b${l}_f`], { axis: 0 });
    const xf = dq(x, xq, `x${l}_f`);
    const y = `y${l}`;
    if (conv) b.node('Conv', [xf, `w${l}_f`, `b${l}_f`], [y], { kernel_shape: [3, 3] });
    else b.node('Gemm', [xf, `w${l}_f`, `b${l}_f`], [y], {});
    if (!layer.out) {
      b.node('Identity', [y], ['logits']);
      return;
    }
    b.node('Relu', [y], [`r${l}`]);
    x = qz(`r${l}`, layer.out, `q${l}`);
    xq = layer.out;
    if (conv) {
      b.node('MaxPool', [dq(x, xq, `q${l}_f`)], [`p${l}_f`], { kernel_shape: [2, 2], strides: [2, 2] });
      x = qz(`p${l}_f`, xq, `p${l}`);
    }
    if (l === 1) {
      b.tensor('flat_shape', DT.INT64, [2], [0, -1]);
      b.node('Reshape', [dq(x, xq, 'p1_ff'), 'flat_shape'], ['flat_f']);
      x = qz('flat_f', xq, 'flat');
    }
  });
  return b.model([{ domain: '', version: 13 }]);
}

/**
 * SeedCNN in QOperator form (uint8 activations: each ReLU is the zero point 0 of its output
 * range): QuantizeLinear, QLinearConv, MaxPool and Flatten on uint8 tensors, com.microsoft QGemm
 * for the hidden layer, and QLinearMatMul + DequantizeLinear + a float Add for the logits.
 */
export function qoperatorModel(q: QuantSeedCnn): Uint8Array {
  const b = new ProtoBuilder();
  const t = qType(q.dtype);
  const sc = (v: number): string => b.scalar('s', DT.FLOAT, v);
  const zp = (v: number): string => b.scalar('zp', t, v);
  b.node('QuantizeLinear', ['input', sc(q.input.scale), zp(q.input.zeroPoint)], ['input_q']);
  let x = 'input_q';
  let xq = q.input;
  q.layers.forEach((layer, l) => {
    const o = layer.dims[0]!;
    b.tensor(`w${l}_s`, DT.FLOAT, [o], layer.wScale);
    b.tensor(`w${l}_zp`, DT.INT8, [o], new Int8Array(o));
    if (layer.kind === 'conv') {
      b.tensor(`w${l}`, DT.INT8, layer.dims, layer.weight);
      b.tensor(`b${l}`, DT.INT32, [o], layer.bias);
      b.node('QLinearConv', [x, sc(xq.scale), zp(xq.zeroPoint), `w${l}`, `w${l}_s`, `w${l}_zp`, sc(layer.out!.scale), zp(layer.out!.zeroPoint), `b${l}`], [`c${l}`], { kernel_shape: [3, 3] });
      // The ReLU is in the output range (zero point = 0 of the uint8 range after a ReLU).
      b.node('MaxPool', [`c${l}`], [`p${l}`], { kernel_shape: [2, 2], strides: [2, 2] });
      x = `p${l}`;
      if (l === 1) {
        b.node('Flatten', [x], ['flat'], { axis: 1 });
        x = 'flat';
      }
    } else if (layer.out) {
      // The hidden layer: com.microsoft QGemm ([N, K] weight, transB 1, int32 bias, uint8 output).
      b.tensor(`w${l}`, DT.INT8, layer.dims, layer.weight);
      b.tensor(`b${l}`, DT.INT32, [o], layer.bias);
      b.node('QGemm', [x, sc(xq.scale), zp(xq.zeroPoint), `w${l}`, `w${l}_s`, `w${l}_zp`, `b${l}`, sc(layer.out.scale), zp(layer.out.zeroPoint)], [`g${l}`], { transB: 1 }, 'com.microsoft');
      x = `g${l}`;
    } else {
      // The logits: QLinearMatMul ([K, N] weight, per-column scales) to a wide uint8 range, then
      // DequantizeLinear and the float bias.
      const [n, k] = layer.dims as [number, number];
      const tr = new Int8Array(n * k);
      for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) tr[j * n + i] = layer.weight[i * k + j]!;
      b.tensor(`w${l}`, DT.INT8, [k, n], tr);
      const mm = { scale: q.logitSpan / 127, zeroPoint: 128 };
      b.node('QLinearMatMul', [x, sc(xq.scale), zp(xq.zeroPoint), `w${l}`, `w${l}_s`, `w${l}_zp`, sc(mm.scale), zp(mm.zeroPoint)], [`m${l}`]);
      b.node('DequantizeLinear', [`m${l}`, sc(mm.scale), zp(mm.zeroPoint)], [`m${l}_f`]);
      b.tensor(`bf${l}`, DT.FLOAT, [o], Array.from(layer.bias, (v, i) => v * Math.fround(xq.scale * layer.wScale[i]!)));
      b.node('Add', [`m${l}_f`, `bf${l}`], ['logits']);
    }
    if (layer.out) xq = layer.out;
  });
  return b.model([{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
}
