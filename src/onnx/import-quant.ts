/**
 * Import of int8 ONNX models made elsewhere (ONNX Runtime's quantizer, PyTorch, TensorFlow) into
 * Kiln's int8 IR (docs/int8-ir.md), as whole int8 regions rather than op-by-op emulation.
 *
 * The importer (import.ts) hands each quantization node to `addQuantNode` during its forward pass
 * (shapes inferred, constants folded) and keeps it as it is while it normalises the float nodes
 * around them; `liftQuantized` then rewrites them, with two jobs in two modules:
 *
 * - QDQ form, lifted by lift-qdq.ts: DequantizeLinear on a quantized value and on an int8 weight
 *   (and an int32 or float bias) -> Conv / Gemm / MatMul (+ a constant bias Add) -> optional Relu
 *   -> QuantizeLinear becomes one QLinearConv / QLinearGemm (ReLU fused); without the final
 *   QuantizeLinear, a QLinear* op with a float32 output. DQ -> Add -> (Relu) -> Q of two quantized
 *   values becomes QLinearAdd; DQ -> MaxPool / Flatten / Reshape / Identity / Slice / nearest Resize -> Q with equal
 *   parameters runs on the quantized value directly.
 * - QOperator form, mapped by map-qoperator.ts: QLinearConv, QLinearMatMul, com.microsoft QGemm and
 *   QLinearAdd map one to one; DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales)
 *   (-> Add bias) becomes DynamicQGemm.
 *
 * What the int8 IR cannot hold falls back to float, correct but not int8: a weight that is uint8,
 * has a non-zero zero point, or is not per output channel is dequantized at import and its op
 * runs in float32 between a DequantizeLinear and a QuantizeLinear (so do QLinear* ops of that
 * kind, and QLinearAdd with a constant or broadcast input). Left-over QuantizeLinear /
 * DequantizeLinear on run-time values become the IR's boundary ops (per tensor, 8-bit) or float
 * arithmetic on the codes (per axis, per block, 16-bit DequantizeLinear: `floatForm`); on
 * constants they are folded. Refused with ERR_KILN_UNSUPPORTED_OP (node named): QuantizeLinear to
 * 16 bits, scales or zero points computed at run time (other than the DynamicQuantizeLinear pattern), and
 * MatMulInteger / ConvInteger outside that pattern (their int32 outputs have no IR type).
 * Malformed parameters (scale 0, negative, NaN or infinite; zero points of another type or count;
 * per-axis scales of the wrong length) are ERR_KILN_CORRUPT_MODEL. The parameter checks both share
 * are in quant-params.ts.
 */
import { LOOKUP_FUNCTIONS } from '../graph/int8-lookup.js';
import type { GraphNode } from '../graph/ir.js';
import { Tensor } from '../tensor.js';
import { broadcastShapes, inferNodeShapes, type Shape } from '../graph/shape-inference.js';
import { foldGemmOverRows, fuseQuantizedRelu, QdqLifter } from './lift-qdq.js';
import { liftDynamicQGemm, mapQLinear, mapQLinearAdd } from './map-qoperator.js';
import { Unsupported } from './normalize.js';
import { corrupt } from './proto.js';
import {
  activationParams, axisAttr, checkAxis, constant, convAttrs, dequantizeConstant, qparams, quantizeConstant, where,
  type QuantImportEnv,
} from './quant-params.js';
import { QuantRewrites } from './quant-rewrites.js';

export type { QuantImportEnv } from './quant-params.js';

const ONNX_QUANT_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger', 'DynamicQuantizeLinear']);
const MS_QUANT_OPS = new Set(['QLinearAdd', 'QGemm', 'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

/** Whether the importer hands this node to this module. */
export function isQuantOnnxNode(op: string, domain: string): boolean {
  return (domain === '' && ONNX_QUANT_OPS.has(op)) || (domain === 'com.microsoft' && MS_QUANT_OPS.has(op));
}

/** Ops whose constant DequantizeLinear inputs may become int8 weights or int32 biases. */
const WEIGHT_READERS = new Set(['Conv', 'Gemm', 'MatMul', 'Add']);

// ---------------------------------------------------------------------------------------------
// The forward pass: shapes of the nodes kept while the float nodes are normalised.

function need(env: QuantImportEnv, node: GraphNode, i: number): Shape {
  const s = env.shapes.get(node.inputs[i] ?? '');
  if (s === undefined) throw new TypeError(`Expected a known shape for input ${i} of ${where(node)} but received none`);
  return s;
}

/** Output shapes of a quantization node in its ONNX form. */
function onnxQuantShapes(env: QuantImportEnv, node: GraphNode): Shape[] {
  switch (node.op) {
    case 'QuantizeLinear':
    case 'DequantizeLinear':
      return [need(env, node, 0).slice()];
    case 'DynamicQuantizeLinear':
      return [need(env, node, 0).slice(), [], []];
    case 'QLinearConv':
    case 'ConvInteger': {
      const w = node.op === 'QLinearConv' ? 3 : 1;
      const attrs = convAttrs(env, node, node.inputs[0]!, node.inputs[w]!);
      return inferNodeShapes({ ...node, op: 'Conv', attrs }, [need(env, node, 0), need(env, node, w)])!;
    }
    case 'QLinearMatMul':
      return inferNodeShapes({ ...node, op: 'MatMul' }, [need(env, node, 0), need(env, node, 3)])!;
    case 'MatMulInteger':
      return inferNodeShapes({ ...node, op: 'MatMul' }, [need(env, node, 0), need(env, node, 1)])!;
    case 'QGemm':
      return inferNodeShapes({ ...node, op: 'Gemm', attrs: { transA: node.attrs.transA ?? 0, transB: node.attrs.transB ?? 0 } }, [need(env, node, 0), need(env, node, 3)])!;
    case 'QLinearAdd':
      return [broadcastShapes(node, need(env, node, 0), need(env, node, 3))];
    default:
      throw new Unsupported('not implemented');
  }
}

/**
 * Adds one quantization node during the import's forward pass: infers its output shapes and
 * folds QuantizeLinear / DequantizeLinear of constants, except a DequantizeLinear whose readers
 * may take it as an int8 weight or int32 bias (it waits for `liftQuantized`).
 */
export function addQuantNode(node: GraphNode, env: QuantImportEnv, nodes: GraphNode[]): void {
  const x = constant(env, node.inputs[0]);
  if ((node.op === 'DequantizeLinear' || node.op === 'QuantizeLinear') && x !== undefined) {
    const readers = env.readerOps(node.outputs[0]!);
    const keep = node.op === 'DequantizeLinear' && readers.length > 0 && readers.every((op) => WEIGHT_READERS.has(op)) && !env.graphOutputs.has(node.outputs[0]!);
    const p = qparams(env, node, 1, 2);
    const axis = axisAttr(node, x.dims.length);
    checkAxis(node, p, x.dims, axis);
    if (!keep) {
      const folded = node.op === 'DequantizeLinear' ? dequantizeConstant(x, p, axis) : quantizeConstant(node, x, p, axis);
      env.known.set(node.outputs[0]!, folded);
      env.shapes.set(node.outputs[0]!, folded.dims.slice());
      return;
    }
  }
  const shapes = onnxQuantShapes(env, node);
  node.outputs.forEach((o, i) => {
    if (o !== '' && shapes[i] !== undefined) env.shapes.set(o, shapes[i]!);
  });
  nodes.push(node);
}

// ---------------------------------------------------------------------------------------------
// Lifting.

/**
 * Rewrites the quantization nodes kept by `addQuantNode` (and the float nodes between them) into
 * int8 IR ops: first the multi-node patterns (QDQ chains, the DynamicQuantizeLinear chain), then,
 * node by node, the QOperator ops and the left-over boundary ops; see the file comment. What cannot
 * run is passed to `reject` (with the node) and kept as it is.
 */
export function liftQuantized(nodes: GraphNode[], env: QuantImportEnv, reject: (node: GraphNode, reason: string) => void): GraphNode[] {
  if (!nodes.some((n) => isQuantOnnxNode(n.op, '') || isQuantOnnxNode(n.op, 'com.microsoft'))) return nodes;
  const rw = new QuantRewrites(nodes, env.graphOutputs);
  const qdq = new QdqLifter(env, rw);
  for (const node of nodes) {
    if (rw.removed.has(node)) continue;
    try {
      if (LOOKUP_FUNCTIONS.has(node.op) && qdq.liftLookup(node)) continue;
      switch (node.op) {
        case 'Conv':
        case 'Gemm':
        case 'MatMul':
          qdq.liftConvOrGemm(node);
          break;
        case 'Add':
          qdq.liftAdd(node);
          break;
        case 'MaxPool':
        case 'Flatten':
        case 'Reshape':
        case 'Identity':
        case 'Slice':
        case 'Transpose':
          qdq.liftPassThrough(node);
          break;
        case 'Resize':
          // (tf_crop_and_resize writes its extrapolation value, not a copied code)
          if ((node.attrs.mode ?? 'nearest') === 'nearest' && node.attrs.roi === undefined) qdq.liftPassThrough(node);
          break;
        case 'Concat':
          qdq.liftConcat(node);
          break;
        case 'Mul':
          qdq.liftMul(node);
          break;
        case 'GlobalAveragePool':
        case 'ReduceMean':
          qdq.liftGlobalAveragePool(node);
          break;
        case 'AveragePool':
          qdq.liftAveragePool(node);
          break;
        case 'MatMulInteger':
          liftDynamicQGemm(env, rw, node);
          break;
      }
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
    }
  }
  const out: GraphNode[] = [];
  for (const node of nodes) {
    if (rw.removed.has(node)) continue;
    const lifted = rw.replaced.get(node);
    if (lifted !== undefined) {
      out.push(...lifted);
      continue;
    }
    try {
      switch (node.op) {
        case 'QuantizeLinear':
        case 'DequantizeLinear':
          out.push(...boundary(env, node));
          break;
        case 'QLinearConv':
        case 'QLinearMatMul':
        case 'QGemm':
          out.push(...mapQLinear(env, node));
          break;
        case 'QLinearAdd':
          out.push(...mapQLinearAdd(env, node));
          break;
        case 'DynamicQuantizeLinear':
          // Kept only as part of a DynamicQGemm; alone it has no IR form. Any output still read
          // outside the lifted pattern, or handed out as a graph output, needs the node itself.
          if (node.outputs.some((o) => o !== '' && (env.graphOutputs.has(o) || (rw.consumers.get(o) ?? []).some((c) => !rw.replaced.has(c))))) {
            throw new Unsupported('DynamicQuantizeLinear outside a DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul pattern');
          }
          break;
        case 'MatMulInteger':
        case 'ConvInteger':
          throw new Unsupported(`${node.op} outside a DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul pattern (its int32 output has no Kiln int8 IR form)`);
        default:
          out.push(node);
      }
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      reject(node, err.reason);
      out.push(node);
    }
  }
  return foldGemmOverRows(fuseQuantizedRelu(out, env.graphOutputs), env);
}

/** Left-over QuantizeLinear / DequantizeLinear in canonical IR form (run-time values, per tensor). */
function boundary(env: QuantImportEnv, node: GraphNode): GraphNode[] {
  const t = constant(env, node.inputs[0]);
  if (t !== undefined) {
    // A constant dequantized for a float op after all: fold it.
    const p = qparams(env, node, 1, 2);
    const axis = axisAttr(node, t.dims.length);
    env.known.set(node.outputs[0]!, node.op === 'DequantizeLinear' ? dequantizeConstant(t, p, axis) : quantizeConstant(node, t, p, axis));
    return [];
  }
  const float = floatForm(env, node);
  if (float !== undefined) return float;
  const p = activationParams(env, node, 1, 2);
  const attrs: GraphNode['attrs'] = node.op === 'QuantizeLinear' ? { scale: p.scale, zero_point: p.zeroPoint, dtype: p.dtype } : { scale: p.scale, zero_point: p.zeroPoint };
  return [{ name: node.name, op: node.op, inputs: [node.inputs[0]!], outputs: [node.outputs[0]!], attrs }];
}

/**
 * Q / DQ of a run-time value that the int8 IR cannot hold (scales per axis or per block, or a
 * zero point wider than 8 bits), written as float32 arithmetic on the codes, which is what ONNX
 * defines them as: DQ = (codes - zero point) * scale and Q = clip(round(x / scale) + zero point),
 * with the scales and zero points as constants broadcast along the axis (a block's scale repeated
 * over its block). Codes reach the arithmetic as exact float32 integers: a DequantizeLinear with
 * scale 1 and zero point 0 of an 8-bit value, a Cast of a wider graph input; a Q whose output is
 * not a graph output turns its codes back into an 8-bit value the same way. Undefined for the
 * per-tensor 8-bit case, which the IR's own ops run.
 */
function floatForm(env: QuantImportEnv, node: GraphNode): GraphNode[] | undefined {
  const x = node.inputs[0]!;
  const shape = env.shapes.get(x);
  const scale = constant(env, node.inputs[1]);
  const zpName = node.inputs[2] ?? '';
  const zp = zpName === '' ? undefined : constant(env, zpName);
  const block = typeof node.attrs.block_size === 'number' ? node.attrs.block_size : 0;
  if (shape === undefined || scale === undefined || (zpName !== '' && zp === undefined)) return undefined;
  const wide = zp !== undefined && zp.type === 'int32';
  if (scale.size === 1 && block === 0 && !wide) return undefined;
  const rank = shape.length;
  // ONNX ignores the axis of per-tensor parameters (and defaults it to 1 even for a 1-D value).
  const axis = scale.size === 1 && block === 0 ? 0 : axisAttr(node, rank);
  const dims = shape.map((d) => (typeof d === 'number' ? d : undefined));
  // The constants' shape: the scale's own (blocked: the input's), else 1s but along the axis.
  let target: number[];
  if (block > 0) {
    if (dims.some((d) => d === undefined) || scale.dims.length !== rank) throw new Unsupported(`blocked quantization of a value of dynamic shape ${JSON.stringify(shape)}`);
    target = dims as number[];
    const blocks = Math.ceil(target[axis]! / block);
    if (scale.dims.some((d, i) => d !== (i === axis ? blocks : target[i]))) {
      throw new Unsupported(`blocked scales of shape [${scale.dims.join(', ')}] for a value of shape [${target.join(', ')}] (axis ${axis}, block_size ${block})`);
    }
  } else if (scale.size === 1) {
    target = [];
  } else {
    if (scale.dims.length !== 1 || (dims[axis] !== undefined && dims[axis] !== scale.size)) {
      throw new Unsupported(`per-axis scales of shape [${scale.dims.join(', ')}] along axis ${axis} of a value of shape ${JSON.stringify(shape)}`);
    }
    target = shape.map((_, i) => (i === axis ? scale.size : 1));
  }
  const spread = (t: { data: ArrayLike<number>; dims: readonly number[] }, name: string): string => {
    const out = new Float32Array(target.reduce((a, b) => a * b, 1));
    const inner = target.slice(axis + 1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < out.length; i++) {
      let src = i;
      if (block > 0) {
        // Element i of the input's shape reads its block's entry.
        const along = Math.floor(i / inner) % target[axis]!;
        const outer = Math.floor(i / (inner * target[axis]!));
        src = (outer * Math.ceil(target[axis]! / block) + Math.floor(along / block)) * inner + (i % inner);
      }
      out[i] = Number(t.data[t.dims.length === 0 || t.data.length === 1 ? 0 : src]);
    }
    const fresh = env.ctx.fresh(`${node.name}_${name}`);
    env.known.set(fresh, new Tensor('float32', out, target));
    env.shapes.set(fresh, target.slice());
    return fresh;
  };
  for (let i = 0; i < scale.size; i++) {
    const v = Number(scale.data[i]);
    if (scale.type !== 'float32' || !(v > 0) || !Number.isFinite(v)) throw corrupt(`Expected positive finite float scales for ${where(node)} but received ${v} at index ${i}`);
  }
  const scaleC = spread(scale, 'scales');
  const zpC = zp !== undefined && Array.from(zp.data as ArrayLike<number>).some((v) => v !== 0) ? spread(zp, 'zero_points') : undefined;
  const value = (base: string): string => {
    const name = env.ctx.fresh(`${node.name}_${base}`);
    env.shapes.set(name, shape.slice());
    return name;
  };
  const step = (op: string, inputs: string[], output: string, attrs: GraphNode['attrs'] = {}): GraphNode => ({ name: env.ctx.fresh(`${node.name}_${op.toLowerCase()}`), op, inputs, outputs: [output], attrs });
  const y = node.outputs[0]!;
  if (node.op === 'DequantizeLinear') {
    const codes = value('codes');
    const first = wide ? step('Cast', [x], codes, { to: 1 }) : step('DequantizeLinear', [x], codes, { scale: 1, zero_point: 0 });
    const centred = zpC ? value('centred') : codes;
    return [first, ...(zpC ? [step('Sub', [codes, zpC], centred)] : []), step('Mul', [centred, scaleC], y)];
  }
  if (wide) throw new Unsupported('QuantizeLinear to a type wider than 8 bits');
  const dtype = zp?.type === 'int8' || (zp === undefined && node.attrs.output_dtype === 3) ? 'int8' : 'uint8';
  if (zp === undefined && typeof node.attrs.output_dtype === 'number' && ![0, 2, 3].includes(node.attrs.output_dtype)) throw new Unsupported(`output_dtype ${node.attrs.output_dtype} (Kiln quantizes to uint8 or int8)`);
  const [lo, hi] = dtype === 'int8' ? [-128, 127] : [0, 255];
  const scaled = value('scaled');
  const rounded = value('rounded');
  const shifted = zpC ? value('shifted') : rounded;
  const codes = env.graphOutputs.has(y) ? y : value('codes');
  const nodes = [step('Div', [x, scaleC], scaled), step('Round', [scaled], rounded), ...(zpC ? [step('Add', [rounded, zpC], shifted)] : []), step('Clip', [shifted], codes, { min: lo, max: hi })];
  // A graph output hands out the codes themselves; inside the graph they become an 8-bit value again.
  if (codes !== y) nodes.push(step('QuantizeLinear', [codes], y, { scale: 1, zero_point: 0, dtype }));
  return nodes;
}
