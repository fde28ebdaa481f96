/** ReduceMean / ReduceMax / ReduceMin / ReduceSum / ReduceProd / ReduceL1 / ReduceL2 / ReduceSumSquare / ReduceLogSumExp / ReduceLogSum; ArgMax / ArgMin. */
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';

export function lowerReduce(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const rank = x.shape.length + 1;
  const axes = [...new Set(n.intList('axes').map((a) => n.axis(a, rank, 'axes')))].sort((p, q) => p - q);
  const keepdims = n.int('keepdims', 1) !== 0;
  if (axes.includes(0)) {
    // The batch is the plan's run-time outer dimension: only a fixed batch of 1 kept as 1 can be reduced.
    if (!(n.fixedBatch === 1 && keepdims)) throw new Unsupported(`reducing the batch axis (axes ${shapeText(axes)} of ${shapeText(['N', ...x.shape])})`);
  }
  const perImage = axes.filter((a) => a > 0);
  const out = x.shape.flatMap((d, i) => (!perImage.includes(i + 1) ? [d] : keepdims ? [1] : []));
  if (perImage.length === 0) return [n.view(x, out)];
  return [n.emit(n.node.op as 'ReduceMean', [x], out, { attrs: { axes: perImage, keepdims: keepdims ? 1 : 0 }, macs: numel(x.shape) })];
}

/** Indices up to this are exact in a float32 value. */
const MAX_ARG_COUNT = 2 ** 24;

/**
 * ArgMax / ArgMin over one per-image axis: the indices are a float32 value of exact integers
 * (import lets only a Cast read them; the session's typed edge returns them as int64). The batch
 * axis is refused here, so that the session runs the graph through the unit-batch plan instead.
 */
export function lowerArgReduce(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const rank = x.shape.length + 1;
  const axis = n.axis(n.int('axis', 0), rank);
  const keepdims = n.int('keepdims', 1) !== 0;
  const last = n.int('select_last_index', 0);
  if (last !== 0 && last !== 1) throw n.shapeError(`attribute 'select_last_index' must be 0 or 1, received ${last}`);
  if (axis === 0) throw new Unsupported(`${n.node.op} over the batch axis (axis 0 of ${shapeText(['N', ...x.shape])})`);
  const count = x.shape[axis - 1];
  if (count === 0) throw new Unsupported(`${n.node.op} over an empty axis (it has no index to return)`);
  if (count > MAX_ARG_COUNT) throw new Unsupported(`an axis of ${count} elements (indices above 2^24 are not exact in float32)`);
  const out = x.shape.flatMap((d, i) => (i !== axis - 1 ? [d] : keepdims ? [1] : []));
  return [n.emit(n.node.op as 'ArgMax', [x], out, { attrs: { axis, keepdims: keepdims ? 1 : 0, select_last_index: last }, macs: numel(x.shape) })];
}
