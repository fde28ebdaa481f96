/**
 * The int8 ops of Kiln's IR (docs/int8-ir.md) as ONNX QDQ: each int8 op becomes
 * DequantizeLinear on its quantized input(s), on its int8 weight (per-axis scales, int8 zero
 * points) and on its int32 bias (scale x_scale * w_scale[o]), the float op it stands for, and
 * QuantizeLinear on its output. This is the form onnxruntime recognises and fuses back into
 * QLinearConv / QGemm / QLinearAdd, so running the export on ORT runs int8 kernels there too.
 *
 * Pass-through ops on quantized values (MaxPool) are wrapped as DQ -> MaxPool -> Q with the same
 * parameters (exact: the values are on the grid); Flatten / Reshape / Identity run on the
 * quantized tensor itself, which ONNX allows.
 */
import { QuantAttrs, quantWeights, type QDType, type TensorQuant } from '../graph/int8-ir.js';
import { lookupOf } from '../graph/int8-lookup.js';
import type { Dim, GraphNode } from '../graph/ir.js';
import { Tensor } from '../tensor.js';
import { AttributeType, type IAttributeProto } from './proto.js';

/** What the exporter lends to this module (see Emitter in export.ts). */
export interface QdqEmitter {
  fresh(base: string): string;
  constant(base: string, tensor: Tensor): string;
  node(name: string, op: string, inputs: string[], outputs: string[], attribute?: IAttributeProto[]): void;
  /** A 1-D INT64 constant (a Reshape shape, Concat of shape pieces). */
  shapeConstant(base: string, values: readonly number[]): string;
  /** Emits an ordinary float node (attributes in canonical form, `kiln_activation` expanded). */
  float(node: GraphNode): void;
}

export interface QdqContext {
  /** Quantization of every quantized value by name. */
  quant: ReadonlyMap<string, TensorQuant>;
  /** Inferred shape of every value (a QLinearGemm over rank > 2 needs its input's). */
  shapes: ReadonlyMap<string, readonly Dim[]>;
}

/** Scalar constants are shared across the exported graph, by dtype and value. */
const scalars = new WeakMap<QdqEmitter, Map<string, string>>();

function scalar(e: QdqEmitter, base: string, type: 'float32' | QDType, value: number): string {
  let cache = scalars.get(e);
  if (cache === undefined) scalars.set(e, (cache = new Map()));
  const key = `${type}:${value}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const name = e.constant(base, new Tensor(type, [value], []));
  cache.set(key, name);
  return name;
}

function dequantize(e: QdqEmitter, base: string, q: string, p: TensorQuant): string {
  const out = e.fresh(`${base}_dq`);
  e.node(e.fresh(`${base}_DequantizeLinear`), 'DequantizeLinear', [q, scalar(e, 'scale', 'float32', p.scale), scalar(e, `zero_point_${p.dtype}`, p.dtype, p.zeroPoint)], [out]);
  return out;
}

function quantizeTo(e: QdqEmitter, base: string, x: string, p: TensorQuant, out: string): void {
  e.node(e.fresh(`${base}_QuantizeLinear`), 'QuantizeLinear', [x, scalar(e, 'scale', 'float32', p.scale), scalar(e, `zero_point_${p.dtype}`, p.dtype, p.zeroPoint)], [out]);
}

/** DequantizeLinear of an int8 weight or int32 bias, per axis when the scales differ. */
function dequantizeConstant(e: QdqEmitter, base: string, value: string, type: 'int8' | 'int32', scales: Float32Array, axis: number): string {
  const out = e.fresh(`${base}_dq`);
  const perTensor = scales.every((s) => s === scales[0]);
  const inputs = perTensor
    ? [value, e.constant(`${base}_scale`, new Tensor('float32', [scales[0]!], [])), e.constant(`${base}_zero_point`, new Tensor(type, [0], []))]
    : [value, e.constant(`${base}_scale`, new Tensor('float32', scales, [scales.length])), e.constant(`${base}_zero_point`, new Tensor(type, new Array<number>(scales.length).fill(0), [scales.length]))];
  const attrs: IAttributeProto[] = perTensor ? [] : [{ name: 'axis', type: AttributeType.INT, i: axis }];
  e.node(e.fresh(`${base}_DequantizeLinear`), 'DequantizeLinear', inputs, [out], attrs);
  return out;
}

function inputQuant(a: QuantAttrs, ctx: QdqContext, index: number, prefix: string): TensorQuant {
  const name = a.node.inputs[index] ?? '';
  const q = ctx.quant.get(name);
  if (q === undefined) throw a.fail(`input ${index} '${name}'`, 'a quantized value (from QuantizeLinear or a quantized int8 op)', 'a float32 value');
  const scale = a.scale(`${prefix}_scale`);
  const zeroPoint = a.zeroPoint(`${prefix}_zero_point`, q.dtype);
  if (scale !== q.scale || zeroPoint !== q.zeroPoint) {
    throw a.fail(`attributes ${prefix}_scale / ${prefix}_zero_point`, `the parameters of its input (${q.scale}, ${q.zeroPoint})`, `${scale}, ${zeroPoint}`);
  }
  return q;
}

const CONV_ATTRS = ['kernel_shape', 'strides', 'dilations', 'pads', 'group'];

/** Emits the QDQ form of one int8 IR node. */
export function emitQdqNode(e: QdqEmitter, node: GraphNode, ctx: QdqContext, initializers: ReadonlyMap<string, Tensor>): void {
  const a = new QuantAttrs(node);
  const out = node.outputs[0]!;
  const act = a.activation();
  /** Float result -> (Relu) -> the node's output, quantized or not. */
  const finish = (floatNode: GraphNode, y: TensorQuant | undefined): void => {
    if (act !== undefined) floatNode.attrs.kiln_activation = act;
    if (y === undefined) {
      floatNode.outputs = [out];
      e.float(floatNode);
    } else {
      const pre = e.fresh(`${out}_float`);
      floatNode.outputs = [pre];
      e.float(floatNode);
      quantizeTo(e, node.name, pre, y, out);
    }
  };
  switch (node.op) {
    case 'QuantizeLinear': {
      const dtype = a.dtype('dtype', 'uint8');
      const p = { scale: a.scale('scale'), zeroPoint: a.zeroPoint('zero_point', dtype), dtype };
      e.node(node.name, 'QuantizeLinear', [node.inputs[0]!, scalar(e, 'scale', 'float32', p.scale), scalar(e, `zero_point_${dtype}`, dtype, p.zeroPoint)], [out]);
      return;
    }
    case 'DequantizeLinear': {
      const q = ctx.quant.get(node.inputs[0] ?? '');
      if (q === undefined) throw a.fail(`input 0 '${node.inputs[0]}'`, 'a quantized value', 'a float32 value');
      const p = { scale: a.scale('scale'), zeroPoint: a.zeroPoint('zero_point', q.dtype), dtype: q.dtype };
      e.node(node.name, 'DequantizeLinear', [node.inputs[0]!, scalar(e, 'scale', 'float32', p.scale), scalar(e, `zero_point_${p.dtype}`, p.dtype, p.zeroPoint)], [out]);
      return;
    }
    case 'QLinearConv':
    case 'QLinearGemm': {
      const conv = node.op === 'QLinearConv';
      const x = inputQuant(a, ctx, 0, conv ? 'x' : 'a');
      const { wScale, bias, axis } = quantWeights(a, initializers);
      const xShape = ctx.shapes.get(node.inputs[0]!);
      if (!conv && xShape !== undefined && xShape.length > 2) {
        emitGemmOverRows(e, node, x, xShape, ctx, initializers);
        return;
      }
      const xf = dequantize(e, `${node.name}_input`, node.inputs[0]!, x);
      const wf = dequantizeConstant(e, `${node.name}_weight`, node.inputs[1]!, 'int8', wScale, axis);
      const inputs = [xf, wf];
      if (bias !== undefined) {
        const biasScale = wScale.map((s) => Math.fround(x.scale * s));
        inputs.push(dequantizeConstant(e, `${node.name}_bias`, node.inputs[3]!, 'int32', biasScale, 0));
      }
      const attrs: GraphNode['attrs'] = {};
      if (conv) {
        for (const k of CONV_ATTRS) if (node.attrs[k] !== undefined) attrs[k] = node.attrs[k]!;
      } else {
        Object.assign(attrs, { alpha: 1, beta: 1, transA: 0, transB: node.attrs.transB ?? 0 });
      }
      finish({ name: node.name, op: conv ? 'Conv' : 'Gemm', inputs, outputs: [], attrs }, a.output());
      return;
    }
    case 'QLinearAdd':
    case 'QLinearMul': {
      const qa = inputQuant(a, ctx, 0, 'a');
      const qb = inputQuant(a, ctx, 1, 'b');
      const y = a.output();
      if (y === undefined) throw a.fail('attributes y_scale / y_zero_point', 'a quantized output', 'none');
      const af = dequantize(e, `${node.name}_a`, node.inputs[0]!, qa);
      const bf = dequantize(e, `${node.name}_b`, node.inputs[1]!, qb);
      finish({ name: node.name, op: node.op === 'QLinearAdd' ? 'Add' : 'Mul', inputs: [af, bf], outputs: [], attrs: {} }, y);
      return;
    }
    case 'QLinearConcat': {
      // DQ each input with its own parameters, Concat, Q with the output's.
      const y = a.output();
      if (y === undefined) throw a.fail('attributes y_scale / y_zero_point', 'a quantized output', 'none');
      const scales = node.attrs.x_scales as number[];
      const zps = node.attrs.x_zero_points as number[];
      const inputs = node.inputs.map((x, i) => {
        const dtype = ctx.quant.get(x)?.dtype ?? y.dtype;
        return dequantize(e, `${node.name}_${i}`, x, { scale: scales[i]!, zeroPoint: zps[i]!, dtype });
      });
      finish({ name: node.name, op: 'Concat', inputs, outputs: [], attrs: { axis: node.attrs.axis ?? 1 } }, y);
      return;
    }
    case 'QLinearGlobalAveragePool': {
      const x = inputQuant(a, ctx, 0, 'x');
      const y = a.output();
      if (y === undefined) throw a.fail('attributes y_scale / y_zero_point', 'a quantized output', 'none');
      const xf = dequantize(e, `${node.name}_x`, node.inputs[0]!, x);
      finish({ name: node.name, op: 'GlobalAveragePool', inputs: [xf], outputs: [], attrs: {} }, y);
      return;
    }
    case 'QLinearAveragePool': {
      // DQ -> AveragePool with the node's window -> Q.
      const x = inputQuant(a, ctx, 0, 'x');
      const y = a.output();
      if (y === undefined) throw a.fail('attributes y_scale / y_zero_point', 'a quantized output', 'none');
      const xf = dequantize(e, `${node.name}_x`, node.inputs[0]!, x);
      const window = Object.fromEntries(Object.entries(node.attrs).filter(([k]) => !/^[xy]_(scale|zero_point|dtype)$/.test(k)));
      finish({ name: node.name, op: 'AveragePool', inputs: [xf], outputs: [], attrs: window }, y);
      return;
    }
    case 'QLinearLookup': {
      // DQ -> the function's float op(s) -> Q (SiLU: Sigmoid and Mul).
      const x = inputQuant(a, ctx, 0, 'x');
      const { name, y } = lookupOf(a, x);
      const xf = dequantize(e, `${node.name}_x`, node.inputs[0]!, x);
      if (name === 'SiLU') {
        const s = e.fresh(`${node.name}_sigmoid`);
        e.float({ name: e.fresh(`${node.name}_Sigmoid`), op: 'Sigmoid', inputs: [xf], outputs: [s], attrs: {} });
        finish({ name: node.name, op: 'Mul', inputs: [xf, s], outputs: [], attrs: {} }, y);
        return;
      }
      if (name === 'Gelu' || name === 'GeluTanh') {
        finish({ name: node.name, op: 'Gelu', inputs: [xf], outputs: [], attrs: { approximate: name === 'Gelu' ? 'none' : 'tanh' } }, y);
        return;
      }
      const attrs: GraphNode['attrs'] = {};
      for (const k of ['alpha', 'beta', 'gamma']) if (node.attrs[k] !== undefined) attrs[k] = node.attrs[k]!;
      finish({ name: node.name, op: name, inputs: [xf], outputs: [], attrs }, y);
      return;
    }
    case 'DynamicQGemm': {
      const { wScale, axis } = quantWeights(a, initializers);
      const [q, s, zp] = [e.fresh(`${node.name}_a_q`), e.fresh(`${node.name}_a_scale`), e.fresh(`${node.name}_a_zero_point`)];
      e.node(e.fresh(`${node.name}_DynamicQuantizeLinear`), 'DynamicQuantizeLinear', [node.inputs[0]!], [q, s, zp]);
      const af = e.fresh(`${node.name}_a_dq`);
      e.node(e.fresh(`${node.name}_a_DequantizeLinear`), 'DequantizeLinear', [q, s, zp], [af]);
      const wf = dequantizeConstant(e, `${node.name}_weight`, node.inputs[1]!, 'int8', wScale, axis);
      const inputs = [af, wf];
      if (node.inputs[3]) inputs.push(node.inputs[3]);
      finish({ name: node.name, op: 'Gemm', inputs, outputs: [], attrs: { alpha: 1, beta: 1, transA: 0, transB: node.attrs.transB ?? 0 } }, undefined);
      return;
    }
    default:
      throw a.fail('op', 'an int8 IR op', node.op);
  }
}

/**
 * A QLinearGemm whose input has rank > 2 (a Linear over the last axis, as ConvNeXt's MatMul on
 * [N, H, W, C]): ONNX Gemm takes matrices only, so the quantized input is reshaped to rows
 * [-1, K], runs as the usual DQ -> Gemm -> Q (which onnxruntime fuses into QGemm, per-channel
 * weights and bias included) and the quantized result is reshaped back to [...leading dims, N].
 * Reshape on the uint8/int8 values is exact. The leading dims are static where shape inference
 * knows all but one of them; otherwise they are read at run time (Shape, Concat).
 */
function emitGemmOverRows(e: QdqEmitter, node: GraphNode, x: TensorQuant, xShape: readonly Dim[], ctx: QdqContext, initializers: ReadonlyMap<string, Tensor>): void {
  const out = node.outputs[0]!;
  const k = xShape[xShape.length - 1]!;
  const wDims = initializers.get(node.inputs[1]!)?.dims;
  const n = wDims?.[Number(node.attrs.transB ?? 0) !== 0 ? 0 : 1];
  if (typeof k !== 'number' || n === undefined) {
    throw new QuantAttrs(node).fail(`input 0 '${node.inputs[0]}'`, 'a static last dimension and a constant weight', `shape [${xShape.join(', ')}]`);
  }
  const rows = e.fresh(`${node.inputs[0]}_rows`);
  e.node(e.fresh(`${node.name}_to_rows`), 'Reshape', [node.inputs[0]!, e.shapeConstant(`${node.name}_rows_shape`, [-1, k])], [rows]);
  const lead = xShape.slice(0, -1);
  const dynamic = lead.filter((d) => typeof d !== 'number').length;
  let backShape: string;
  if (dynamic <= 1) {
    backShape = e.shapeConstant(`${node.name}_out_shape`, [...lead.map((d) => (typeof d === 'number' ? d : -1)), n]);
  } else {
    const leadDims = e.fresh(`${node.name}_lead_dims`);
    e.node(e.fresh(`${node.name}_Shape`), 'Shape', [node.inputs[0]!], [leadDims], [{ name: 'end', type: AttributeType.INT, i: -1 }]);
    backShape = e.fresh(`${node.name}_out_shape`);
    e.node(e.fresh(`${node.name}_out_shape_Concat`), 'Concat', [leadDims, e.shapeConstant(`${node.name}_n`, [n])], [backShape], [{ name: 'axis', type: AttributeType.INT, i: 0 }]);
  }
  const rowsOut = e.fresh(`${out}_rows`);
  const rowsNode: GraphNode = { ...node, inputs: [rows, ...node.inputs.slice(1)], outputs: [rowsOut] };
  const rowsQuant = new Map(ctx.quant).set(rows, x);
  // Rank 2 now, so the call below takes the plain Gemm path.
  const shapes = new Map(ctx.shapes).set(rows, ['rows', k]);
  emitQdqNode(e, rowsNode, { quant: rowsQuant, shapes }, initializers);
  e.node(e.fresh(`${node.name}_from_rows`), 'Reshape', [rowsOut, backShape], [out]);
}

/** MaxPool (or nearest Resize, Slice, Split) on a quantized value: DQ -> op -> Q (each output) with the input's own parameters. */
export function emitQuantizedPool(e: QdqEmitter, node: GraphNode, q: TensorQuant): void {
  const xf = dequantize(e, `${node.name}_input`, node.inputs[0]!, q);
  const outputs = node.op === 'Split' ? node.outputs : node.outputs.slice(0, 1);
  const pre = outputs.map((o) => (o === '' ? '' : e.fresh(`${o}_float`)));
  e.float({ ...node, inputs: [xf], outputs: pre });
  outputs.forEach((o, i) => {
    if (o !== '') quantizeTo(e, outputs.length > 1 ? `${node.name}_${i}` : node.name, pre[i]!, q, o);
  });
}
