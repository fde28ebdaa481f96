/** Softmax / LogSoftmax over one axis (opset-13 semantics; the importer normalises older opsets). */
import { NodeLowering, Unsupported, type ValueRef } from './context.js';

export function lowerSoftmax(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const axis = n.axis(n.int('axis', -1), x.shape.length + 1);
  if (axis === 0) throw new Unsupported('softmax over the batch axis');
  return [n.emit(n.node.op as 'Softmax', [x], x.shape, { attrs: { axis } })];
}
