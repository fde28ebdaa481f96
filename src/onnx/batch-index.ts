/**
 * Index tensors computed from the batch size, and the one use of them Kiln rewrites.
 *
 * PyTorch's dynamo exporter writes `as_strided` on a flattened tensor (ConvNeXt's classifier head
 * does this: `mean -> view(-1) -> as_strided`) as a Gather whose indices it builds at run time:
 *
 *   Range(0, N, 1) * S -> Unsqueeze -> + offsets -> Gather(Reshape(x, [-1]), ., axis 0)
 *
 * where N is the dynamic batch and S the per-image size of x. Such indices are affine in the
 * batch index b: b * scale + offset[...], with offset the same for every image. When scale is
 * x's per-image size and every offset lies inside one image, the Gather reads each image's own
 * elements, so it becomes a per-image Gather with constant indices:
 *
 *   Reshape(x, [0, -1]) -> Gather(., offset, axis 1)
 *
 * which the plan runs at any batch. Anything else that reads such an index is refused.
 */
import type { Dim, GraphNode } from '../graph/ir.js';
import { isSymbolic, type KnownValue } from '../graph/constant-folding.js';
import { Tensor, sizeOf } from '../tensor.js';

/** Values b * scale + offset, b the position along axis 0 (the batch), offset of shape [1, ...shape.slice(1)]. */
export interface BatchIndex {
  readonly shape: readonly Dim[];
  readonly scale: number;
  readonly offset: Int32Array;
}

export interface BatchIndexContext {
  batchIndex(name: string): BatchIndex | undefined;
  known(name: string): KnownValue | undefined;
  shape(name: string): readonly Dim[] | undefined;
  /** The node (already converted) that computes `name`, if any. */
  producer(name: string): GraphNode | undefined;
  fresh(base: string): string;
}

export type BatchIndexStep =
  | { kind: 'index'; value: BatchIndex }
  | { kind: 'nodes'; nodes: GraphNode[]; constants: Map<string, Tensor> }
  | { kind: 'unsupported'; reason: string };

const REFUSED = 'it reads an index tensor built from the dynamic batch size (Range), which Kiln runs only as the per-image Gather of a flattened tensor';

/** The scalar a known constant holds, if it is a one-element tensor. */
function scalarOf(v: KnownValue | undefined): number | undefined {
  if (v === undefined || isSymbolic(v) || v.size !== 1) return undefined;
  return Number(v.data[0]);
}

/**
 * What a node makes of batch indices: a new one (Range over the batch, affine steps on one), the
 * nodes replacing a Gather that reads one, a refusal when it reads one otherwise, or undefined
 * when it has nothing to do with them.
 */
export function batchIndexStep(node: GraphNode, ctx: BatchIndexContext): BatchIndexStep | undefined {
  if (node.op === 'Range') return range(node, ctx);
  const reads = node.inputs.map((n) => (n === '' ? undefined : ctx.batchIndex(n)));
  if (!reads.some((r) => r !== undefined)) return undefined;
  const refuse = { kind: 'unsupported', reason: REFUSED } as const;
  const [a, b] = reads;
  switch (node.op) {
    case 'Identity':
    case 'Cast':
      return a ? { kind: 'index', value: a } : refuse;
    case 'Unsqueeze':
      return a ? unsqueeze(node, a) ?? refuse : refuse;
    case 'Mul': {
      const index = a ?? b;
      const c = scalarOf(ctx.known(node.inputs[a ? 1 : 0]!));
      if (!index || (a && b) || c === undefined || !Number.isInteger(c)) return refuse;
      return { kind: 'index', value: { shape: index.shape, scale: index.scale * c, offset: index.offset.map((o) => o * c) } };
    }
    case 'Add':
    case 'Sub': {
      if (a && b) return refuse;
      const other = ctx.known(node.inputs[a ? 1 : 0]!);
      if (other === undefined || isSymbolic(other)) return refuse;
      const sign = node.op === 'Sub' ? -1 : 1;
      if (node.op === 'Sub' && !a) return refuse; // const - index would negate the batch term
      return addConstant(a ?? b!, other, sign) ?? refuse;
    }
    case 'Gather':
      return a === undefined && b ? gather(node, b, ctx) ?? refuse : refuse;
    default:
      return refuse;
  }
}

/** Range(0, N, 1) with N the batch symbol: the batch index itself. */
function range(node: GraphNode, ctx: BatchIndexContext): BatchIndexStep | undefined {
  const [start, limit, delta] = node.inputs.map((n) => ctx.known(n));
  if (!isSymbolic(limit) || !limit.scalar || limit.dims.length !== 1 || typeof limit.dims[0] !== 'string') return undefined;
  if (scalarOf(start) !== 0 || scalarOf(delta) !== 1) return { kind: 'unsupported', reason: 'a Range over a dynamic dimension other than 0 .. N step 1' };
  return { kind: 'index', value: { shape: [limit.dims[0]], scale: 1, offset: new Int32Array(1) } };
}

function unsqueeze(node: GraphNode, index: BatchIndex): BatchIndexStep | undefined {
  const axes = node.attrs.axes;
  if (!Array.isArray(axes)) return undefined;
  const rank = index.shape.length + axes.length;
  const sorted = (axes as number[]).map((x) => (x < 0 ? x + rank : x)).sort((p, q) => p - q);
  if (sorted.includes(0)) return undefined;
  const shape = index.shape.slice();
  for (const x of sorted) shape.splice(x, 0, 1);
  return { kind: 'index', value: { shape, scale: index.scale, offset: index.offset } };
}

/** index + sign * constant, the constant broadcasting over the image dimensions only. */
function addConstant(index: BatchIndex, constant: Tensor, sign: number): BatchIndexStep | undefined {
  const rank = index.shape.length;
  if (constant.dims.length > rank) return undefined;
  const c = [...new Array<number>(rank - constant.dims.length).fill(1), ...constant.dims];
  if (c[0] !== 1) return undefined;
  const from = [1, ...index.shape.slice(1)];
  if (from.slice(1).some((d) => typeof d !== 'number')) return undefined;
  const out: number[] = [1];
  for (let i = 1; i < rank; i++) {
    const p = from[i] as number;
    const q = c[i]!;
    if (p !== q && p !== 1 && q !== 1) return undefined;
    out.push(Math.max(p, q));
  }
  const n = sizeOf(out);
  const offset = new Int32Array(n);
  const at = (shape: readonly number[], flat: number): number => {
    // Position in `shape` (broadcast from `out`) of element `flat` of `out`.
    let pos = 0;
    let rest = flat;
    let stride = 1;
    const idx: number[] = new Array<number>(rank);
    for (let i = rank - 1; i >= 0; i--) {
      idx[i] = rest % out[i]!;
      rest = Math.floor(rest / out[i]!);
    }
    for (let i = rank - 1; i >= 0; i--) {
      pos += (shape[i] === 1 ? 0 : idx[i]!) * stride;
      stride *= shape[i]!;
    }
    return pos;
  };
  for (let k = 0; k < n; k++) offset[k] = index.offset[at(from as number[], k)]! + sign * Number(constant.data[at(c, k)]);
  return { kind: 'index', value: { shape: [index.shape[0]!, ...out.slice(1)], scale: index.scale, offset } };
}

/** Gather(Reshape(x, [-1]), index, axis 0) -> Reshape(x, [0, -1]) then a per-image Gather. */
function gather(node: GraphNode, index: BatchIndex, ctx: BatchIndexContext): BatchIndexStep | undefined {
  if ((node.attrs.axis ?? 0) !== 0) return undefined;
  const flat = ctx.producer(node.inputs[0]!);
  if (flat?.op !== 'Reshape') return undefined;
  const target = flat.attrs.shape;
  if (!Array.isArray(target) || target.length !== 1 || target[0] !== -1) return undefined;
  const x = flat.inputs[0]!;
  const xShape = ctx.shape(x);
  if (xShape === undefined || xShape[0] !== index.shape[0] || xShape.slice(1).some((d) => typeof d !== 'number')) return undefined;
  const perImage = sizeOf(xShape.slice(1) as number[]);
  if (index.scale !== perImage || index.offset.some((o) => o < 0 || o >= perImage)) return undefined;
  const rows = ctx.fresh(`${node.name}_rows`);
  const indices = ctx.fresh(`${node.name}_indices`);
  const dims = (index.shape.slice(1) as number[]);
  return {
    kind: 'nodes',
    constants: new Map([[indices, new Tensor('int32', index.offset.slice(), dims)]]),
    nodes: [
      { name: ctx.fresh(`${node.name}_per_image`), op: 'Reshape', inputs: [x], outputs: [rows], attrs: { shape: [0, -1] } },
      { name: node.name, op: 'Gather', inputs: [rows, indices], outputs: node.outputs.slice(), attrs: { axis: 1 } },
    ],
  };
}
