/**
 * Bool values in the native plan: Equal / Less / LessOrEqual / Greater / GreaterOrEqual, IsNaN,
 * IsInf, Not / And / Or / Xor, Cast between float and bool, and Where, on models written directly
 * as ONNX, against onnxruntime on the same file and on Kiln's export of the imported graph, on
 * every ISA this CPU has (the compare / classify / where kernels come from the dispatch table).
 * Inputs mix small integers (ties), NaN, +-0 and +-inf; shapes broadcast every way the plan
 * allows, with constant operands; rows run past every vector width. The session's outputs are
 * float32: a bool graph output leaves the plan as 0/1 and the session's edge returns it as 'bool'.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { ErrorCode } from '../../src/errors.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { DataType } from '../../src/onnx/proto.js';
import { Plan, type PlanSpec } from '../../src/runtime/plan.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { cpuInfo, setIsa } from '../../src/system.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { attr, floatTensor, model, node, runOrt, valueInfo, type ModelSpec, runKiln } from './onnx-model-builder.js';

const ORIGINAL_ISA = cpuInfo().isa;
const ISAS = cpuInfo().supportedIsas;
afterAll(() => setIsa(ORIGINAL_ISA));

const TO_FLOAT = attr.i('to', DataType.FLOAT);
const TO_BOOL = attr.i('to', DataType.BOOL);
const SPECIAL = [Number.NaN, 0, -0, Infinity, -Infinity];

/** Halves in [-2, 2] (many ties between operands), with NaN, +-0 and +-inf mixed in. */
function data(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => {
    const r = rng.uniform(0, 1);
    return r < 0.25 ? SPECIAL[Math.floor(rng.uniform(0, SPECIAL.length))]! : Math.round(rng.uniform(-4, 4)) / 2;
  });
}

interface Feed { data: Float32Array; dims: number[] }

const size = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

function feed(dims: number[], seed: number): Feed {
  return { data: data(size(dims), seed), dims };
}

const text = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/**
 * Indices where two outputs differ (NaN equal to NaN), the first few. +0 and -0 count as equal:
 * onnxruntime's Where returns +0 where it selects a -0 (Kiln keeps the bits; the native test
 * checks them).
 */
function differences(got: ArrayLike<number>, want: ArrayLike<number>): string[] {
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!(g === w || (Number.isNaN(g) && Number.isNaN(w)))) bad.push(`[${i}] kiln ${text(g)} ort ${text(w)}`);
  }
  return bad;
}

/** onnxruntime on the file vs Kiln on every ISA, and onnxruntime on Kiln's export: exact. */
async function check(spec: ModelSpec, feeds: Record<string, Feed>): Promise<void> {
  const bytes = model(spec);
  const want = await runOrt(bytes, feeds);
  const round = await runOrt(exportModel(await importModel(bytes)), feeds);
  for (const isa of ISAS) {
    setIsa(isa);
    const got = await runKiln(bytes, feeds);
    for (const [name, w] of Object.entries(want)) {
      expect(got[name]!.dims, `${isa} ${name} dims`).toEqual(w.dims);
      expect(differences(got[name]!.data, w.data), `${isa} ${name}`).toEqual([]);
    }
  }
  setIsa(ORIGINAL_ISA);
  for (const [name, w] of Object.entries(want)) {
    expect(round[name]!.dims, `export ${name} dims`).toEqual(w.dims);
    expect(differences(round[name]!.data, w.data), `export ${name}`).toEqual([]);
  }
}

const COMPARISONS = ['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual'];

describe('comparisons of float32 values make bool values', () => {
  for (const op of COMPARISONS) {
    it(`${op}: two values broadcast both ways, a constant on either side, rows past the vector widths`, async () => {
      const twoValues: ModelSpec = {
        opset: 16, inputs: [valueInfo('a', ['N', 3, 1, 5]), valueInfo('b', ['N', 1, 4, 5])], outputs: [valueInfo('y')],
        nodes: [node(op, ['a', 'b'], ['c']), node('Cast', ['c'], ['y'], [TO_FLOAT])],
      };
      await check(twoValues, { a: feed([2, 3, 1, 5], 1), b: feed([2, 1, 4, 5], 2) });
      for (const constantFirst of [false, true]) {
        const spec: ModelSpec = {
          opset: 13, inputs: [valueInfo('a', ['N', 3, 4])], outputs: [valueInfo('y')],
          nodes: [node(op, constantFirst ? ['k', 'a'] : ['a', 'k'], ['c']), node('Cast', ['c'], ['y'], [TO_FLOAT])],
          initializers: [floatTensor('k', [4], data(4, 3))],
        };
        await check(spec, { a: feed([3, 3, 4], 4) });
      }
      const long: ModelSpec = {
        opset: 16, inputs: [valueInfo('a', [1, 1037]), valueInfo('b', [1, 1037])], outputs: [valueInfo('y')],
        nodes: [node(op, ['a', 'b'], ['c']), node('Cast', ['c'], ['y'], [TO_FLOAT])],
      };
      await check(long, { a: feed([1, 1037], 5), b: feed([1, 1037], 6) });
    });
  }
});

describe('Where selects float32 values by a bool condition', () => {
  it('three-way broadcast of the condition, X and a constant Y', async () => {
    const spec: ModelSpec = {
      opset: 16, inputs: [valueInfo('p', ['N', 1, 4, 1]), valueInfo('q', ['N', 1, 4, 5]), valueInfo('x', ['N', 3, 1, 5])], outputs: [valueInfo('y')],
      nodes: [node('Less', ['p', 'q'], ['c']), node('Where', ['c', 'x', 'k'], ['y'])],
      initializers: [floatTensor('k', [5], data(5, 7))],
    };
    await check(spec, { p: feed([2, 1, 4, 1], 8), q: feed([2, 1, 4, 5], 9), x: feed([2, 3, 1, 5], 10) });
  });

  it('a constant X, both values, and long rows (the Clip expansion: Where(x < lo, lo, x))', async () => {
    const clip: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 1037])], outputs: [valueInfo('y')],
      nodes: [node('Less', ['x', 'lo'], ['c']), node('Where', ['c', 'lo', 'x'], ['y'])],
      initializers: [floatTensor('lo', [], [0.25])],
    };
    await check(clip, { x: feed([3, 1037], 11) });
    const minimum: ModelSpec = {
      opset: 9, inputs: [valueInfo('a', ['N', 6, 7]), valueInfo('b', ['N', 6, 7])], outputs: [valueInfo('y')],
      nodes: [node('Greater', ['a', 'b'], ['c']), node('Where', ['c', 'b', 'a'], ['y'])],
    };
    await check(minimum, { a: feed([2, 6, 7], 12), b: feed([2, 6, 7], 13) });
  });
});

describe('large values split over the thread pool', () => {
  it('flat and broadcast rows, in chunks on several threads', async () => {
    const spec: ModelSpec = {
      opset: 16, inputs: [valueInfo('a', ['N', 300, 1000]), valueInfo('b', ['N', 1, 1000])], outputs: [valueInfo('y'), valueInfo('z')],
      nodes: [
        node('Greater', ['a', 'b'], ['g']), node('Where', ['g', 'a', 'b'], ['y']),
        node('IsNaN', ['a'], ['n']), node('Not', ['n'], ['nn']), node('Cast', ['nn'], ['z'], [TO_FLOAT]),
      ],
    };
    await check(spec, { a: feed([2, 300, 1000], 19), b: feed([2, 1, 1000], 20) });
  });
});

describe('bool values in a graph whose inputs share no batch (run as one image)', () => {
  it('the Clip expansion with its bounds fed as scalar inputs', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', [3, 4, 5]), valueInfo('lo', []), valueInfo('hi', [])], outputs: [valueInfo('y')],
      nodes: [
        node('Less', ['x', 'lo'], ['below']), node('Where', ['below', 'lo', 'x'], ['t']),
        node('Less', ['hi', 't'], ['above']), node('Where', ['above', 'hi', 't'], ['y']),
      ],
    };
    await check(spec, { x: feed([3, 4, 5], 17), lo: { data: Float32Array.from([-0.5]), dims: [] }, hi: { data: Float32Array.from([1]), dims: [] } });
  });
});

describe('IsNaN, IsInf, Not, And, Or, Xor, Equal of bools and Cast', () => {
  it('IsNaN and IsInf with each detect flag combination', async () => {
    const flags: [number, number][] = [[1, 1], [1, 0], [0, 1], [0, 0]];
    const spec: ModelSpec = {
      opset: 20, inputs: [valueInfo('x', ['N', 5, 41])], outputs: [valueInfo('nan'), ...flags.map((_, i) => valueInfo(`inf${i}`))],
      nodes: [
        node('IsNaN', ['x'], ['n']), node('Cast', ['n'], ['nan'], [TO_FLOAT]),
        ...flags.flatMap(([neg, pos], i) => [
          node('IsInf', ['x'], [`i${i}`], [attr.i('detect_negative', neg), attr.i('detect_positive', pos)]),
          node('Cast', [`i${i}`], [`inf${i}`], [TO_FLOAT]),
        ]),
      ],
    };
    await check(spec, { x: feed([3, 5, 41], 14) });
  });

  it('logic on bools with broadcasting, Cast(to=BOOL) of floats (NaN is true, -0 false), through a Reshape view', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('a', ['N', 4, 33]), valueInfo('b', ['N', 1, 33])], outputs: ['and', 'or', 'xor', 'eq', 'not', 'cast', 'where'].map((n) => valueInfo(n)),
      initializers: [{ name: 'shape', dims: [2], dataType: DataType.INT64, int64Data: [0, -1] }],
      nodes: [
        node('Cast', ['a'], ['ab'], [TO_BOOL]),
        node('Greater', ['b', 'zero'], ['bb']),
        node('And', ['ab', 'bb'], ['t_and']), node('Cast', ['t_and'], ['and'], [TO_FLOAT]),
        node('Or', ['ab', 'bb'], ['t_or']), node('Cast', ['t_or'], ['or'], [TO_FLOAT]),
        node('Xor', ['ab', 'bb'], ['t_xor']), node('Cast', ['t_xor'], ['xor'], [TO_FLOAT]),
        node('Equal', ['ab', 'bb'], ['t_eq']), node('Cast', ['t_eq'], ['eq'], [TO_FLOAT]),
        node('Not', ['ab'], ['t_not']), node('Reshape', ['t_not', 'shape'], ['flat']), node('Cast', ['flat'], ['not'], [TO_FLOAT]),
        node('Cast', ['ab'], ['cast'], [TO_FLOAT]),
        node('Where', ['t_xor', 'a', 'b'], ['where']),
      ],
    };
    spec.initializers!.push(floatTensor('zero', [], [0]));
    await check(spec, { a: feed([2, 4, 33], 15), b: feed([2, 1, 33], 16) });
  });
});

describe('import and compile of bool values', () => {
  it('shape inference gives the broadcast shape and the graph keeps the ops', async () => {
    const bytes = model({
      opset: 16, inputs: [valueInfo('a', ['N', 3, 1]), valueInfo('b', ['N', 1, 4])], outputs: [valueInfo('y')],
      nodes: [node('LessOrEqual', ['a', 'b'], ['c']), node('Not', ['c'], ['d']), node('Where', ['d', 'a', 'b'], ['y'])],
    });
    const graph = await importModel(bytes);
    expect(graph.nodes.map((n) => n.op)).toEqual(['LessOrEqual', 'Not', 'Where']);
    expect(graph.outputs[0]!.shape).toEqual(['N', 3, 4]);
  });

  it('comparisons and logic on constants fold at import; a constant condition runs as a Where weight', async () => {
    const spec: ModelSpec = {
      opset: 16, inputs: [valueInfo('x', ['N', 3, 4])], outputs: [valueInfo('y'), valueInfo('z')],
      initializers: [
        floatTensor('p', [4], [1, Number.NaN, 3, -0]), floatTensor('q', [3, 1], [1, 0, 3]),
        { name: 'mask', dims: [3, 1], dataType: DataType.BOOL, int32Data: [1, 0, 1] },
      ],
      nodes: [
        node('GreaterOrEqual', ['p', 'q'], ['ge']), node('IsNaN', ['p'], ['nan']), node('Or', ['ge', 'nan'], ['either']),
        node('Not', ['either'], ['cond']), node('Where', ['cond', 'x', 'p'], ['y']),
        node('Where', ['mask', 'p', 'x'], ['z']),
      ],
    };
    const graph = await importModel(model(spec));
    expect(graph.nodes.map((n) => n.op)).toEqual(['Where', 'Where']);
    await check(spec, { x: feed([2, 3, 4], 18) });
  });

  it('the opset-7 versions (Less-7, Greater-7, Equal-7 of bools, Or-7, Not-1) run; the opset-1 ones (broadcast attribute) are refused', async () => {
    const spec: ModelSpec = {
      opset: 7, inputs: [valueInfo('a', ['N', 2, 9]), valueInfo('b', ['N', 2, 9])], outputs: [valueInfo('y')],
      nodes: [
        node('Less', ['a', 'b'], ['l']), node('Greater', ['a', 'b'], ['g']), node('Equal', ['l', 'g'], ['e']),
        node('Not', ['e'], ['ne']), node('Or', ['ne', 'l'], ['o']), node('Cast', ['o'], ['y'], [TO_FLOAT]),
      ],
    };
    await check(spec, { a: feed([2, 2, 9], 21), b: feed([2, 2, 9], 22) });
    const old = model({ ...spec, opset: 6, irVersion: 3 });
    await expect(InferenceSession.create(old)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringContaining('Kiln implements Less versions 7, 9, 13') });
  });

  it('bool graph inputs feed Where and the logic ops (fed as 0/1, made bool in the plan)', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('m', ['N', 3], DataType.BOOL), valueInfo('k', ['N', 3], DataType.BOOL), valueInfo('x', ['N', 3]), valueInfo('y', ['N', 3])],
      outputs: [valueInfo('w', ['N', 3]), valueInfo('both', ['N', 3], DataType.BOOL)],
      nodes: [node('Where', ['m', 'x', 'y'], ['w']), node('And', ['m', 'k'], ['both'])],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.inputTypes).toEqual(['bool', 'bool', 'float32', 'float32']);
    const out = await session.run<'float32' | 'bool'>({
      m: new Tensor('bool', [1, 0, 1, 0, 0, 1], [2, 3]), k: new Tensor('bool', [1, 1, 0, 0, 1, 1], [2, 3]),
      x: new Tensor('float32', [1, 2, 3, 4, 5, 6], [2, 3]), y: new Tensor('float32', [-1, -2, -3, -4, -5, -6], [2, 3]),
    });
    expect(Array.from(out.w!.data as Float32Array)).toEqual([1, -2, 3, -4, -5, 6]);
    expect([out.both!.type, Array.from(out.both!.data as Uint8Array)]).toEqual(['bool', [1, 0, 0, 0, 0, 1]]);
    await expect(session.run({ m: new Tensor('float32', [1, 0, 1], [1, 3]), k: new Tensor('bool', [1, 1, 0], [1, 3]), x: new Tensor('float32', [1, 2, 3], [1, 3]), y: new Tensor('float32', [1, 2, 3], [1, 3]) })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/feeds\['m'\]/) });
    session.release();
  });

  it('a bool graph output comes back as a bool tensor', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('a', ['N', 3])], outputs: [valueInfo('y', ['N', 3], DataType.BOOL)],
      nodes: [node('IsNaN', ['a'], ['y'])],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.outputTypes).toEqual(['bool']);
    const y = (await session.run<'bool'>({ a: new Tensor('float32', [1, Number.NaN, -0, Number.NaN, 0, 2], [2, 3]) })).y!;
    expect(y.type).toBe('bool');
    expect(Array.from(y.data)).toEqual([0, 1, 0, 1, 0, 0]);
    session.release();
  });

  it('a bool value where a float op or a logic op expects otherwise is refused, not run', async () => {
    const floatOnBool = model({
      opset: 13, inputs: [valueInfo('a', ['N', 3])], outputs: [valueInfo('y')],
      nodes: [node('IsNaN', ['a'], ['c']), node('Relu', ['c'], ['y'])],
    });
    await expect(InferenceSession.create(floatOnBool)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringContaining('is a bool value') });
    const logicOnFloat = model({
      opset: 13, inputs: [valueInfo('a', ['N', 3])], outputs: [valueInfo('y')],
      nodes: [node('IsNaN', ['a'], ['c']), node('And', ['c', 'a'], ['d']), node('Cast', ['d'], ['y'], [TO_FLOAT])],
    });
    await expect(InferenceSession.create(logicOnFloat)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringContaining('takes bool') });
    const castToInt = model({
      opset: 13, inputs: [valueInfo('a', ['N', 3])], outputs: [valueInfo('y')],
      nodes: [node('Cast', ['a'], ['c'], [attr.i('to', DataType.INT32)]), node('Cast', ['c'], ['y'], [TO_FLOAT])],
    });
    await expect(InferenceSession.create(castToInt)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringMatching(/Cast .*(to int32|ONNX type 6)/) });
  });
});

describe('the native plan re-checks bool values', () => {
  const badArg = (message: RegExp) => expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(message) });
  /** x [3] float, y [3] float; Less(x, y) -> c bool; Where(c, x, y) -> out float. */
  const base = (): PlanSpec => ({
    values: [[3], [3], [3], [3]],
    valueTypes: ['float32', 'float32', 'bool', 'float32'],
    inputs: [0, 1],
    outputs: [3],
    steps: [
      { op: 'Less', name: 'less', inputs: [0, 1], outputs: [2] },
      { op: 'Where', name: 'where', inputs: [2, 0, 1], outputs: [3] },
    ],
  });

  it('runs the well-formed spec', async () => {
    const plan = Plan.createSync(base());
    const out = new Float32Array(6);
    await plan.run([Float32Array.from([1, 5, Number.NaN, 0, 2, 2]), Float32Array.from([2, 4, 0, -0, 3, 1])], [out], 2, true);
    plan.dispose();
    // min(x, y) where x < y, else y; NaN < 0 is false.
    expect(Array.from(out)).toEqual([1, 4, 0, -0, 2, 1]);
  });

  const cases: [string, (s: PlanSpec) => void, RegExp][] = [
    ['a float32 comparison result', (s) => (s.valueTypes![2] = 'float32'), /a bool value for steps\[0\] \(less\)\.outputs\[0\] but received float32/],
    ['a uint8 (quantized) Where condition', (s) => (s.valueTypes![2] = 'uint8'), /a bool value for steps\[0\] \(less\)\.outputs\[0\] but received uint8/],
    ['a bool Where result', (s) => { s.valueTypes![3] = 'bool'; s.outputs = []; }, /a float32 value for steps\[1\] \(where\)\.outputs\[0\] but received bool/],
    ['a bool plan output', (s) => { s.valueTypes![3] = 'bool'; s.steps.pop(); s.steps.push({ op: 'Not', name: 'not', inputs: [2], outputs: [3] }); }, /float32 value.*for outputs\[0\] but received bool/],
    ['And of float32 values', (s) => (s.steps[0] = { op: 'And', name: 'and', inputs: [0, 1], outputs: [2] }), /a bool value for steps\[0\] \(and\)\.inputs\[0\] but received float32/],
    ['a bool value into a float op', (s) => (s.steps[1] = { op: 'Relu', name: 'relu', inputs: [2], outputs: [3] }), /a float32 value for steps\[1\] \(relu\)\.inputs\[0\] but received bool/],
    ['a bool value into DequantizeLinear', (s) => (s.steps[1] = { op: 'DequantizeLinear', name: 'dq', inputs: [2], outputs: [3], attrs: { scale: 1, zero_point: 0 } }), /a uint8 value for steps\[1\] \(dq\)\.inputs\[0\] but received bool/],
    ['operands that do not broadcast', (s) => (s.values[1] = [2]), /broadcast/],
    ['a Where output of the wrong shape', (s) => (s.values[3] = [1]), /shape/],
    ['a Cast without its target type', (s) => (s.steps[1] = { op: 'Cast', name: 'cast', inputs: [2], outputs: [3] }), /attrs\.to/],
    ['a Cast of a bool value to bool', (s) => (s.steps[1] = { op: 'Cast', name: 'cast', inputs: [2], outputs: [3], attrs: { to: 'bool' } }), /a float32 value for steps\[1\] \(cast\)\.inputs\[0\] but received bool/],
    ['IsNaN of a bool value', (s) => { s.valueTypes![3] = 'bool'; s.outputs = []; s.steps[1] = { op: 'IsNaN', name: 'isnan', inputs: [2], outputs: [3] }; }, /a float32 value for steps\[1\] \(isnan\)\.inputs\[0\] but received bool/],
    ['a Where of three constants', (s) => {
      const w = { data: new Float32Array(3), shape: [1, 3] };
      s.steps[1] = { op: 'Where', name: 'where', inputs: [], outputs: [3], weights: { C: w, X: w, Y: w } };
    }, /at most two constant operands/],
    ['an empty constant operand', (s) => (s.steps[0] = { op: 'Less', name: 'less', inputs: [0], outputs: [2], weights: { B: { data: new Float32Array(0), shape: [0] } } }), /steps\[0\] \(less\)\.weights\.B/],
    ['an IsInf flag out of range', (s) => (s.steps[0] = { op: 'IsInf', name: 'isinf', inputs: [0], outputs: [2], attrs: { detect_negative: 2 } }), /detect_negative/],
  ];
  for (const [label, mutate, message] of cases) {
    it(`refuses ${label}`, () => {
      const spec = base();
      mutate(spec);
      expect(() => native.createPlan(spec)).toThrow(badArg(message));
    });
  }
});
