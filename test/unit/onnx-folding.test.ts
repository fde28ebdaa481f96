/**
 * Constant folding and shape inference on their own (src/graph/constant-folding.ts,
 * shape-inference.ts): symbolic dimensions, the size limits checked before allocating, and the
 * foldConstants pass over a canonical graph. (Folding semantics against onnxruntime are in
 * onnx-opsets.test.ts.)
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { foldConstants, foldNode, isSymbolic, MAX_FOLD_ELEMENTS } from '../../src/graph/constant-folding.js';
import { GraphBuilder, type GraphNode } from '../../src/graph/ir.js';
import { dimDivide, dimProduct, inferNodeShapes, inferShapes } from '../../src/graph/shape-inference.js';
import { Tensor } from '../../src/tensor.js';

const node = (op: string, inputs: string[], attrs: GraphNode['attrs'] = {}): GraphNode => ({ name: op.toLowerCase(), op, inputs, outputs: ['out'], attrs });
const ints = (values: number[]): Tensor => new Tensor('int32', values);

describe('symbolic dimensions', () => {
  it('multiply and divide exactly', () => {
    expect(dimProduct(['N', 3, 4])).toBe('12*N');
    expect(dimProduct([2, 'N', 'C'])).toBe('2*C*N');
    expect(dimProduct([5, 7])).toBe(35);
    expect(dimDivide('12*N', 12)).toBe('N');
    expect(dimDivide('12*N', 'N')).toBe(12);
    expect(dimDivide('12*N', 5)).toBeUndefined();
    expect(dimDivide(12, 'N')).toBeUndefined();
  });

  it('flow through Flatten, Reshape with -1 and 0, and a same-padded conv', () => {
    expect(inferNodeShapes(node('Flatten', ['x'], { axis: 2 }), [['N', 3, 4, 5]])).toEqual([['3*N', 20]]);
    expect(inferNodeShapes(node('Reshape', ['x'], { shape: [-1, 12] }), [['N', 3, 4]])).toEqual([['N', 12]]);
    expect(inferNodeShapes(node('Reshape', ['x'], { shape: [0, -1] }), [['N', 3, 4]])).toEqual([['N', 12]]);
    const conv = node('Conv', ['x', 'w'], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });
    expect(inferNodeShapes(conv, [['N', 2, 'H', 'W'], [4, 2, 3, 3]])).toEqual([['N', 4, 'H', 'W']]);
    expect(() => inferNodeShapes(node('Reshape', ['x'], { shape: [5, -1] }), [[2, 3, 4]])).toThrow(expect.objectContaining({ code: ErrorCode.SHAPE_MISMATCH }));
  });
});

describe('foldNode', () => {
  it('evaluates shape chains over a dynamic batch symbolically', () => {
    const shape = foldNode(node('Shape', ['x']), [undefined], [['N', 3, 8]])![0]!;
    expect(isSymbolic(shape) && shape.dims).toEqual(['N', 3, 8]);
    const picked = foldNode(node('Gather', ['s', 'i'], { axis: 0 }), [shape, new Tensor('int32', [1], [])])![0]!;
    // The static entry comes out as a plain int32 scalar.
    expect(picked).toBeInstanceOf(Tensor);
    expect(Array.from((picked as Tensor).data)).toEqual([3]);
  });

  it('refuses an output beyond its limit before allocating it', () => {
    const fill = node('ConstantOfShape', ['s']);
    expect(() => foldNode(fill, [ints([2 ** 15, 2 ** 15])])).toThrow(expect.objectContaining({ code: ErrorCode.SHAPE_MISMATCH, message: expect.stringMatching(/at most 268435456 elements/) }));
    expect(() => foldNode(fill, [ints([10, 10])], [], 99)).toThrow(/at most 99 elements/);
    expect((foldNode(fill, [ints([10, 10])], [], 100)![0] as Tensor).size).toBe(100);
    // Broadcasting can expand too: [n, 1] + [1, n].
    const add = node('Add', ['a', 'b']);
    const a = new Tensor('float32', new Float32Array(64), [64, 1]);
    const b = new Tensor('float32', new Float32Array(64), [1, 64]);
    expect(() => foldNode(add, [a, b], [], 4095)).toThrow(/at most 4095/);
    expect(MAX_FOLD_ELEMENTS).toBe(2 ** 28);
  });
});

describe('foldConstants pass', () => {
  it('folds constant subgraphs into initializers and keeps what depends on inputs', () => {
    const b = new GraphBuilder('g');
    const x = b.addInput('x', ['N', 3]);
    const w = b.addInitializer('w', new Tensor('float32', [1, 2, 3, 4, 5, 6], [3, 2]));
    const wt = b.addNode('Transpose', [w], { perm: [1, 0] });
    const w2 = b.addNode('Mul', [wt, b.addInitializer('two', new Tensor('float32', [2], []))]);
    const y = b.addNode('MatMul', [x, b.addNode('Transpose', [w2], { perm: [1, 0] })]);
    const g = foldConstants(b.build([{ name: y, dtype: 'float32', shape: ['N', 2] }]));
    expect(g.nodes.map((n) => n.op)).toEqual(['MatMul']);
    const folded = g.initializers.get(g.nodes[0]!.inputs[1]!)!;
    expect(folded.dims).toEqual([3, 2]);
    expect(Array.from(folded.data)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(inferShapes(g).get(y)).toEqual(['N', 2]);
  });
});
