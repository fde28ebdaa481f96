/**
 * Parameter inputs: graph inputs that only ever reach the model through a parameter slot.
 *
 * Kiln's native plan is compiled with its weights, shapes, axes, pads, scales, Clip bounds,
 * split sizes... as constants. A model may still feed such a parameter as a graph input (the
 * ONNX backend tests feed Reshape's shape, Conv's W, QuantizeLinear's y_scale...). Such an input
 * is a *parameter input*: InferenceSession binds its fed value as an initializer, imports the
 * model as if it were a constant, and caches one plan per distinct value (the approach TensorRT
 * takes for shape tensors, generalised; see bound-session.ts). Data inputs stay run-time values.
 *
 * A graph input is a parameter when it has at least one reader, is not itself a graph output,
 * and every reader reads it
 *  - in a parameter slot of PARAMETER_SLOTS (e.g. Reshape's input 1), or
 *  - as any input of a node Kiln folds over known values (Cast, Concat, Unsqueeze, Add... : the
 *    shape arithmetic of exported and function-expanded models) all of whose outputs are, in
 *    turn, read only that way.
 * Shape and Size are not followed: they read only the shape of their input, so an input read by
 * them is data whose value does not matter, not a parameter.
 */
import { REDUCE_OPS } from '../graph/shape-inference.js';

/** One node as this analysis needs it (ONNX NodeProto fields). */
export interface ParameterNode {
  op: string;
  domain: string;
  inputs: readonly string[];
  outputs: readonly string[];
}


/**
 * Input slots (0-based) that a plan needs as constants, per default-domain operator
 * ('com.microsoft:Op' for that domain). Weights count: a fed weight is bound like any parameter.
 * Slots the runtime takes as computed values stay out (MatMul's operands, Gemm's).
 */
export const PARAMETER_SLOTS: ReadonlyMap<string, readonly number[]> = new Map<string, readonly number[]>([
  ['Conv', [1, 2]],
  ['ConvTranspose', [1, 2]],
  ['BatchNormalization', [1, 2, 3, 4]],
  ['InstanceNormalization', [1, 2]],
  ['LayerNormalization', [1, 2]],
  ['GroupNormalization', [1, 2]],
  ['Reshape', [1]],
  ['Resize', [1, 2, 3]],
  ['Upsample', [1]],
  ['Slice', [1, 2, 3, 4]],
  ['Split', [1]],
  ['Clip', [1, 2]],
  ['Pad', [1, 2, 3]],
  ['Tile', [1]],
  ['Expand', [1]],
  ['Squeeze', [1]],
  ['Unsqueeze', [1]],
  ...[...REDUCE_OPS].map((op): [string, number[]] => [op, [1]]),
  ['ConstantOfShape', [0]],
  ['Gather', [1]],
  ['PRelu', [1]], // only a slope of static declared shape (STATIC_ONLY)
  ['QuantizeLinear', [1, 2]],
  ['DequantizeLinear', [1, 2]],
  // x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B: all but x.
  ['QLinearConv', [1, 2, 3, 4, 5, 6, 7, 8]],
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point: b is the weight.
  ['QLinearMatMul', [1, 2, 3, 4, 5, 6, 7]],
  ['com.microsoft:QLinearAdd', [1, 2, 4, 5, 6, 7]],
  ['ConvInteger', [1, 2, 3]],
  ['MatMulInteger', [2, 3]],
  ['Dropout', [1, 2]],
  ['TopK', [1]],
  ['Range', [0, 1, 2]],
  ['OneHot', [1]],
  ['CumSum', [1]],
  ['Trilu', [1]],
]);

/**
 * Slots the runtime also takes computed, batch first: a graph input there is a parameter only when
 * its declared shape is static (a slope of shape ['N', 3, 1] is a per-image value).
 */
const STATIC_ONLY: ReadonlySet<string> = new Set(['PRelu']);

/**
 * Default-domain operators import folds over known values (constant-folding.ts FOLDABLE_OPS,
 * CastLike, Range) through which parameter-ness flows back to their inputs; Shape and Size are left
 * out on purpose (see the module comment).
 */
const PASS_THROUGH: ReadonlySet<string> = new Set([
  'Constant', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Reshape', 'Flatten', 'Cast', 'CastLike', 'Slice',
  'Identity', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sqrt', 'Exp', 'Abs', 'Reciprocal', 'Floor',
  'Ceil', 'Log', 'Pow', 'Max', 'Min', 'Range',
]);

/** Whether slot `index` of this node is a parameter slot. */
export function isParameterSlot(op: string, domain: string, index: number): boolean {
  const key = domain === '' || domain === 'ai.onnx' ? op : `${domain}:${op}`;
  return PARAMETER_SLOTS.get(key)?.includes(index) ?? false;
}

/**
 * The graph inputs (of `inputs`, in order) that are parameters, by the rule of the module
 * comment. `outputs` are the graph output names; `shapes` the declared input shapes.
 */
export function parameterInputs(
  nodes: readonly ParameterNode[],
  inputs: readonly string[],
  outputs: readonly string[],
  shapes: ReadonlyMap<string, readonly (number | string)[] | undefined> = new Map(),
): string[] {
  const staticInput = (name: string): boolean => shapes.get(name)?.every((d) => typeof d === 'number') ?? false;
  const readers = new Map<string, { node: ParameterNode; slot: number }[]>();
  for (const node of nodes) {
    node.inputs.forEach((name, slot) => {
      if (name === '') return;
      let list = readers.get(name);
      if (list === undefined) readers.set(name, (list = []));
      list.push({ node, slot });
    });
  }
  const graphOutputs = new Set(outputs);
  const memo = new Map<string, boolean>();
  const onlyParameter = (value: string): boolean => {
    const known = memo.get(value);
    if (known !== undefined) return known;
    memo.set(value, false); // a cycle (malformed graph) is not a parameter
    const list = readers.get(value) ?? [];
    const result =
      !graphOutputs.has(value) &&
      list.length > 0 &&
      list.every(({ node, slot }) => {
        if (isParameterSlot(node.op, node.domain, slot)) return !STATIC_ONLY.has(node.op) || staticInput(value);
        if (node.domain !== '' && node.domain !== 'ai.onnx') return false;
        if (!PASS_THROUGH.has(node.op)) return false;
        const outs = node.outputs.filter((o) => o !== '');
        return outs.length > 0 && outs.every(onlyParameter);
      });
    memo.set(value, result);
    return result;
  };
  return inputs.filter(onlyParameter);
}
