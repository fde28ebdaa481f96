/** ReduceMean / ReduceMax / ReduceMin / ReduceSum / ReduceProd / ReduceL1 / ReduceL2 / ReduceSumSquare / ReduceLogSumExp / ReduceLogSum. */
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
