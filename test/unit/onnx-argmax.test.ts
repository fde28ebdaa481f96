/**
 * ArgMax / ArgMin on run-time float32 values, against onnxruntime on the same file: every axis
 * (the batch axis through the unit-batch plan), keepdims 0/1, select_last_index, ties and NaN, at
 * batch 1 and 3. The plan computes the indices as float32 integers; a graph output declared int64
 * comes back as a BigInt64Array from the session's typed edge, and a Cast to FLOAT inside the graph
 * lets float ops use them. Any other reader of the indices is integer arithmetic, refused by name.
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { ErrorCode } from '../../src/errors.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { DataType } from '../../src/onnx/proto.js';
import { Plan, type PlanSpec } from '../../src/runtime/plan.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { attr, floatTensor, int64Tensor, model, node, randomTensor, runOrt, valueInfo, type ModelSpec } from './onnx-model-builder.js';

interface Feed { data: Float32Array; dims: number[] }

const size = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

/** Small halves (many ties along every axis), with a NaN now and then, and +-inf. */
function feed(dims: number[], seed: number, nan = true): Feed {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: size(dims) }, () => {
    const r = rng.uniform(0, 1);
    if (nan && r < 0.08) return Number.NaN;
    if (r < 0.12) return r < 0.1 ? Infinity : -Infinity;
    return Math.round(rng.uniform(-3, 3)) / 2;
  });
  return { data, dims };
}

async function kilnRun(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<Record<string, Tensor<DType>>> {
  const session = await InferenceSession.create(bytes);
  try {
    return await session.run<DType>(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)])));
  } finally {
    session.release();
  }
}

/** onnxruntime on the file (and on Kiln's export of it) vs Kiln: same dims, same numbers, same dtype. */
async function check(spec: ModelSpec, feeds: Record<string, Feed>, roundTrip = true): Promise<void> {
  const bytes = model(spec);
  const want = await runOrt(bytes, feeds);
  const got = await kilnRun(bytes, feeds);
  const sources: [string, Record<string, { data: ArrayLike<unknown>; dims: readonly number[] }>][] = [['kiln', got]];
  if (roundTrip) sources.push(['export', await runOrt(exportModel(await importModel(bytes)), feeds)]);
  for (const [name, w] of Object.entries(want)) {
    for (const [label, results] of sources) {
      const g = results[name]!;
      expect(g.dims, `${label} ${name} dims`).toEqual(w.dims);
      expect(g.data.constructor, `${label} ${name} type`).toBe(w.data.constructor);
      const gn = Array.from(g.data as ArrayLike<number | bigint>, Number);
      const wn = Array.from(w.data as ArrayLike<number | bigint>, Number);
      expect(gn, `${label} ${name}`).toEqual(wn);
    }
  }
}

function argSpec(op: string, opset: number, shape: (number | string)[], attrs: ReturnType<typeof attr.i>[]): ModelSpec {
  return { opset, inputs: [valueInfo('x', shape)], outputs: [valueInfo('y', undefined, DataType.INT64)], nodes: [node(op, ['x'], ['y'], attrs, 'arg')] };
}

describe('ArgMax / ArgMin match onnxruntime', () => {
  for (const op of ['ArgMax', 'ArgMin']) {
    it(`${op}: every axis, keepdims 0/1, select_last_index 0/1, ties and NaN, batch 1 and 3`, async () => {
      const dims = [3, 5, 7];
      for (const axis of [0, 1, 2, 3, -1, -3]) {
        for (const keepdims of [0, 1]) {
          for (const last of [0, 1]) {
            const spec = argSpec(op, 13, ['N', ...dims], [attr.i('axis', axis), attr.i('keepdims', keepdims), attr.i('select_last_index', last)]);
            for (const batch of [1, 3]) await check(spec, { x: feed([batch, ...dims], 100 + 10 * axis + 3 * keepdims + last + batch) });
          }
        }
      }
    });

    it(`${op}: defaults (axis 0, keepdims 1) at opsets 11 and 12, a static shape, a long axis, rank 2`, async () => {
      for (const opset of [11, 12]) await check(argSpec(op, opset, [3, 4, 6], []), { x: feed([3, 4, 6], opset) });
      await check(argSpec(op, 13, [2, 4, 6], [attr.i('axis', 2), attr.i('keepdims', 0)]), { x: feed([2, 4, 6], 5) });
      await check(argSpec(op, 13, ['N', 1031], [attr.i('axis', 1)]), { x: feed([3, 1031], 6) });
      await check(argSpec(op, 13, ['N', 1031], [attr.i('axis', 1), attr.i('select_last_index', 1)]), { x: feed([2, 1031], 7) });
      // A leading NaN is never replaced; a later one never wins (onnxruntime's comparisons).
      const nanFirst: Feed = { data: Float32Array.from([NaN, 1, 2, 3, 5, NaN, 4, 5]), dims: [2, 4] };
      for (const last of [0, 1]) await check(argSpec(op, 13, ['N', 4], [attr.i('axis', 1), attr.i('select_last_index', last)]), { x: nanFirst });
    });
  }

  it('indices Cast to FLOAT feed float ops; Cast to int64 at an output', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 4, 5])], outputs: [valueInfo('y'), valueInfo('z', undefined, DataType.INT64), valueInfo('w', undefined, DataType.INT64), valueInfo('v')],
      nodes: [
        node('ArgMin', ['x'], ['i'], [attr.i('axis', 2)], 'argmin'),
        node('Cast', ['i'], ['f'], [attr.i('to', DataType.FLOAT)], 'tofloat'),
        node('Mul', ['f', 'k'], ['y'], [], 'mul'),
        node('ArgMax', ['x'], ['j'], [attr.i('axis', -2), attr.i('keepdims', 0)], 'argmax'),
        node('Cast', ['j'], ['z'], [attr.i('to', DataType.INT64)], 'toint'),
        // The same indices as an int64 output and, through a Cast to FLOAT, as a float operand.
        node('ArgMax', ['x'], ['w'], [attr.i('axis', 1)], 'argmax2'),
        node('Cast', ['w'], ['wf'], [attr.i('to', DataType.FLOAT)], 'wfloat'),
        node('Add', ['wf', 'k'], ['v'], [], 'add'),
      ],
      initializers: [floatTensor('k', [1], [0.5])],
    };
    for (const batch of [1, 3]) await check(spec, { x: feed([batch, 4, 5], 20 + batch, false) });
  });

  it('a classification head Conv -> GlobalAveragePool -> Flatten -> Gemm -> ArgMax returns int64 labels', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 3, 9, 11])], outputs: [valueInfo('label', ['N'], DataType.INT64)],
      nodes: [
        node('Conv', ['x', 'w', 'b'], ['c'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])]),
        node('Relu', ['c'], ['r']),
        node('GlobalAveragePool', ['r'], ['g']),
        node('Flatten', ['g'], ['f']),
        node('Gemm', ['f', 'fw', 'fb'], ['logits'], [attr.i('transB', 1)]),
        node('ArgMax', ['logits'], ['label'], [attr.i('axis', 1), attr.i('keepdims', 0)]),
      ],
      initializers: [randomTensor('w', [8, 3, 3, 3], 1), randomTensor('b', [8], 2), randomTensor('fw', [10, 8], 3), randomTensor('fb', [10], 4)],
    };
    const rng = new Rng(9);
    for (const batch of [1, 3]) {
      const x = { data: Float32Array.from({ length: batch * 3 * 9 * 11 }, () => rng.uniform(-1, 1)), dims: [batch, 3, 9, 11] };
      await check(spec, { x });
      const got = (await kilnRun(model(spec), { x })).label!;
      expect(got.type).toBe('int64');
      expect(got.dims).toEqual([batch]);
    }
  });
});

describe('ArgMax / ArgMin of constants fold at import', () => {
  it('folded indices Cast to FLOAT feed an Add; a folded int64 output comes back as int64', async () => {
    const k = floatTensor('k', [2, 3, 4], feed([2, 3, 4], 30).data);
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 3])], outputs: [valueInfo('y'), valueInfo('z', undefined, DataType.INT64)],
      nodes: [
        node('ArgMax', ['k'], ['i'], [attr.i('axis', 2), attr.i('keepdims', 0), attr.i('select_last_index', 1)], 'fold_max'),
        node('Cast', ['i'], ['f'], [attr.i('to', DataType.FLOAT)]),
        node('Add', ['x', 'f'], ['y']),
        node('ArgMin', ['k'], ['z'], [attr.i('axis', -3)], 'fold_min'),
      ],
      initializers: [k],
    };
    const graph = await importModel(model(spec));
    expect(graph.nodes.map((n) => n.op)).not.toContain('ArgMax');
    for (const batch of [1, 2]) await check(spec, { x: feed([batch, 3], 31 + batch, false) }, false);
  });
});

describe('readers of the indices other than a Cast are refused', () => {
  it('a float op reading int64 indices is integer arithmetic, named with its source', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 3, 4])], outputs: [valueInfo('y', undefined, DataType.INT64), valueInfo('ok', undefined, DataType.INT64)],
      nodes: [
        node('ArgMax', ['x'], ['i'], [attr.i('axis', 1)], 'argmax'),
        node('Identity', ['i'], ['v'], [], 'view'),
        node('Add', ['v', 'one'], ['y'], [], 'add'),
        node('ArgMin', ['x'], ['ok'], [attr.i('axis', 2)], 'argmin'),
      ],
      initializers: [int64Tensor('one', [], [1])],
    };
    const error = (await InferenceSession.create(model(spec)).catch((e: unknown) => e)) as Error & { code: string };
    expect(error).toMatchObject({ code: ErrorCode.UNSUPPORTED_OP });
    expect(error.message).toMatch(/Add 'add' \(integer arithmetic: it reads the int64 indices 'v' of ArgMax 'argmax'/);
    expect(error.message).toMatch(/cannot run 1 node\(s\)/);
  });

  it('a Cast of the indices to int64 inside the graph is refused', async () => {
    const inner: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 3, 4])], outputs: [valueInfo('y')],
      nodes: [
        node('ArgMax', ['x'], ['i'], [attr.i('axis', 1)], 'argmax'),
        node('Cast', ['i'], ['c'], [attr.i('to', DataType.INT64)], 'cast'),
        node('Cast', ['c'], ['y'], [attr.i('to', DataType.FLOAT)], 'back'),
      ],
    };
    const error = (await InferenceSession.create(model(inner)).catch((e: unknown) => e)) as Error & { code: string };
    expect(error).toMatchObject({ code: ErrorCode.UNSUPPORTED_OP });
    expect(error.message).toMatch(/Cast 'cast'/);
  });
});

describe('the native ArgMax step', () => {
  const spec = (values: number[][], attrs: Record<string, number>): PlanSpec => ({
    values, inputs: [0], outputs: [1], steps: [{ op: 'ArgMax', name: 'arg', inputs: [0], outputs: [1], attrs }],
  });
  const badArg = (message: RegExp) => expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(message) });

  it('re-checks axis, keepdims, select_last_index and the output shape', () => {
    expect(() => native.createPlan(spec([[3, 4], [3]], { axis: 2, keepdims: 0 }))).not.toThrow();
    expect(() => native.createPlan(spec([[3, 4], [3]], { axis: 0, keepdims: 0 }))).toThrow(badArg(/axis/));
    expect(() => native.createPlan(spec([[3, 4], [3]], { axis: 3, keepdims: 0 }))).toThrow(badArg(/axis/));
    expect(() => native.createPlan(spec([[3, 4], [3]], { keepdims: 0 }))).toThrow(badArg(/axis/));
    expect(() => native.createPlan(spec([[3, 4], [3]], { axis: 2, keepdims: 2 }))).toThrow(badArg(/keepdims/));
    expect(() => native.createPlan(spec([[3, 4], [3]], { axis: 2, keepdims: 0, select_last_index: -1 }))).toThrow(badArg(/select_last_index/));
    expect(() => native.createPlan(spec([[3, 4], [3, 1]], { axis: 2, keepdims: 0 }))).toThrow(badArg(/per-image shape \[3\]/));
    expect(() => native.createPlan(spec([[0, 4], [1, 4]], { axis: 1 }))).toThrow(badArg(/empty/));
  });

  it('writes every output, first or last of the ties, over the batch', () => {
    const x = Float32Array.from([1, 3, 3, 0, /**/ 2, 2, 2, 2, /**/ -1, -5, -5, -1]);
    for (const [last, want] of [[0, [1, 0, 0]], [1, [2, 3, 3]]] as const) {
      const plan = Plan.createSync(spec([[4], [1]], { axis: 1, keepdims: 1, select_last_index: last }));
      const y = new Float32Array(3).fill(Number.NaN);
      plan.run([x], [y], 3, false);
      expect(Array.from(y)).toEqual(want);
      plan.dispose();
    }
  });
});
