/**
 * Parameter inputs (graph inputs a plan needs as constants: Reshape's shape, Conv's W, Clip's
 * bounds...): which inputs they are, importModel's `bindInputs`, and InferenceSession's per-value
 * plan cache; plus graph outputs that are constants after folding, returned in their declared
 * ONNX dtype.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { importModel } from '../../src/onnx/import.js';
import { parameterInputs } from '../../src/onnx/parameter-inputs.js';
import { DataType } from '../../src/onnx/proto.js';
import { BoundSession, onnxSourceInfo } from '../../src/runtime/bound-session.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { attr, floatTensor, model, node, valueInfo } from './onnx-model-builder.js';

const n = (op: string, inputs: string[], outputs: string[], domain = '') => ({ op, domain, inputs, outputs });

describe('parameterInputs', () => {
  it('takes inputs read only in parameter slots, directly or through foldable shape arithmetic', () => {
    const nodes = [
      n('Cast', ['shape64'], ['shape32']),
      n('Concat', ['shape32', 'extra'], ['target']),
      n('Reshape', ['x', 'target'], ['r']),
      n('Conv', ['r', 'w'], ['c']),
      n('Clip', ['c', 'lo', ''], ['y']),
    ];
    expect(parameterInputs(nodes, ['x', 'shape64', 'extra', 'w', 'lo'], ['y'])).toEqual(['shape64', 'extra', 'w', 'lo']);
  });

  it('keeps data inputs: read in a data slot anywhere, read by Shape only, a graph output, or unread', () => {
    const nodes = [
      n('Conv', ['x', 'w'], ['c']),
      n('Add', ['c', 'w2'], ['s']), // w2 is also a Conv weight below, but Add reads it as data
      n('Conv', ['s', 'w2'], ['y']),
      n('Shape', ['z'], ['zs']),
      n('Reshape', ['y', 'zs'], ['out']),
      n('Unsqueeze', ['out', 'axes'], ['o2']),
    ];
    expect(parameterInputs(nodes, ['x', 'w', 'w2', 'z', 'axes', 'unread'], ['o2', 'axes'])).toEqual(['w']);
  });

  it('takes a PRelu slope only when its declared shape is static (else it is a per-image value)', () => {
    const nodes = [n('PRelu', ['x', 's'], ['y'])];
    expect(parameterInputs(nodes, ['x', 's'], ['y'], new Map([['s', [5]]]))).toEqual(['s']);
    expect(parameterInputs(nodes, ['x', 's'], ['y'], new Map([['s', ['N', 3, 1]]]))).toEqual([]);
  });

  it('knows the quantization slots: scales and zero points, and QLinearMatMul b as a weight', () => {
    const nodes = [n('QuantizeLinear', ['x', 's', 'zp'], ['q']), n('QLinearMatMul', ['q', 's', 'zp', 'b', 'bs', 'bz', 'ys', 'yz'], ['y'])];
    expect(parameterInputs(nodes, ['x', 's', 'zp', 'b', 'bs', 'bz', 'ys', 'yz'], ['y'])).toEqual(['s', 'zp', 'b', 'bs', 'bz', 'ys', 'yz']);
    expect(parameterInputs([n('QLinearAdd', ['a', 'as', 'az', 'b', 'bs', 'bz', 'ys', 'yz'], ['y'], 'com.microsoft')], ['a', 'as', 'b', 'yz'], ['y'])).toEqual(['as', 'yz']);
  });
});

/** y = Reshape(x, shape) with the shape fed as an int64 input. */
function reshapeModel(): Uint8Array {
  return model({
    opset: 13,
    inputs: [valueInfo('x', [2, 6]), valueInfo('shape', [2], DataType.INT64)],
    outputs: [valueInfo('y')],
    nodes: [node('Reshape', ['x', 'shape'], ['y'], [], 'reshape')],
  });
}

/** y = Clip(Unsqueeze(x, axes), lo, hi): three parameter inputs. */
function clipModel(): Uint8Array {
  return model({
    opset: 13,
    inputs: [valueInfo('x', ['N', 4]), valueInfo('axes', [1], DataType.INT64), valueInfo('lo', [], DataType.FLOAT), valueInfo('hi', [], DataType.DOUBLE)],
    outputs: [valueInfo('y')],
    nodes: [node('Unsqueeze', ['x', 'axes'], ['u'], [], 'unsqueeze'), node('Clip', ['u', 'lo', 'hi'], ['y'], [], 'clip')],
  });
}

const x12 = () => new Tensor('float32', Float32Array.from({ length: 12 }, (_, i) => i), [2, 6]);
const shape = (...v: number[]) => new Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]);

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<{ code?: string; message: string; name: string }> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    return e as { code?: string; message: string; name: string };
  }
  throw new Error('expected a rejection');
}

describe('importModel bindInputs', () => {
  it('imports a bound input as a constant: the Reshape takes its shape as an attribute', async () => {
    const g = await importModel(reshapeModel(), { bindInputs: { shape: shape(3, 4) } });
    expect(g.inputs.map((i) => i.name)).toEqual(['x']);
    expect(g.nodes.map((v) => [v.op, v.attrs.shape])).toEqual([['Reshape', [3, 4]]]);
    // The storage type a constant of that input would have is accepted too.
    const g2 = await importModel(reshapeModel(), { bindInputs: { shape: new Tensor('int32', Int32Array.of(4, 3), [2]) } });
    expect(g2.nodes[0]!.attrs.shape).toEqual([4, 3]);
  });

  it('refuses values the input does not declare, by name', async () => {
    const wrongType = await rejection(importModel(reshapeModel(), { bindInputs: { shape: new Tensor('float32', [3, 4], [2]) } }));
    expect(wrongType.name).toBe('TypeError');
    expect(wrongType.code).toBe(ErrorCode.INVALID_ARG);
    expect(wrongType.message).toMatch(/Tensor of type 'int64' or 'int32' \(the model declares INT64\) for options\.bindInputs\['shape'\] but received "a float32 Tensor"/);
    const wrongDims = await rejection(importModel(reshapeModel(), { bindInputs: { shape: shape(12) } }));
    expect(wrongDims.name).toBe('RangeError');
    expect(wrongDims.code).toBe(ErrorCode.SHAPE_MISMATCH);
    expect(wrongDims.message).toMatch(/dims \[2\] for options\.bindInputs\['shape'\] but received \[1\]/);
    const tooBig = await rejection(importModel(reshapeModel(), { bindInputs: { shape: shape(3, 2 ** 33) } }));
    expect(tooBig.name).toBe('RangeError');
    expect(tooBig.code).toBe(ErrorCode.INVALID_ARG);
    expect(tooBig.message).toMatch(/options\.bindInputs\['shape'\]\[1\]/);
    const unknown = await rejection(importModel(reshapeModel(), { bindInputs: { nope: shape(3, 4) } }));
    expect(unknown.message).toMatch(/the name of a graph input \('x', 'shape'\)/);
  });
});

describe('InferenceSession with parameter inputs', () => {
  it('lists every input, runs with the fed parameters, and follows new values', async () => {
    const session = await InferenceSession.create(reshapeModel());
    try {
      expect(session.inputNames).toEqual(['x', 'shape']);
      expect(() => session.info()).toThrow(/has not run yet/);
      const a = await session.run({ x: x12(), shape: shape(3, 4) });
      expect(a.y!.dims).toEqual([3, 4]);
      expect(Array.from(a.y!.data)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      const b = await session.run({ x: x12(), shape: shape(-1, 2) });
      expect(b.y!.dims).toEqual([6, 2]);
      expect(session.info().steps.length).toBeGreaterThan(0);
      // runSync works once a value was built, and only then.
      expect(session.runSync({ x: x12(), shape: shape(3, 4) }).y!.dims).toEqual([3, 4]);
      const notBuilt = await rejection(() => session.runSync({ x: x12(), shape: shape(4, 3) }));
      expect(notBuilt.code).toBe(ErrorCode.INVALID_STATE);
    } finally {
      session.release();
    }
    expect((await rejection(session.run({ x: x12(), shape: shape(3, 4) }))).code).toBe(ErrorCode.DISPOSED);
  });

  it('checks a parameter feed against the declaration: dtype, dims, presence, extra names', async () => {
    const session = await InferenceSession.create(clipModel());
    try {
      const x = new Tensor('float32', [-2, -1, 1, 2], [1, 4]);
      const ok = await session.run({ x, axes: shape(1), lo: new Tensor('float32', [-1], []), hi: new Tensor('float64', Float64Array.of(1.5), []) });
      expect(ok.y!.dims).toEqual([1, 1, 4]);
      expect(Array.from(ok.y!.data)).toEqual([-1, -1, 1, 1.5]);
      const badType = await rejection(session.run({ x, axes: new Tensor('float32', [1], [1]), lo: new Tensor('float32', [-1], []), hi: new Tensor('float32', [1], []) }));
      expect(badType.name).toBe('TypeError');
      expect(badType.code).toBe(ErrorCode.INVALID_ARG);
      expect(badType.message).toMatch(/feeds\['axes'\]/);
      const badDims = await rejection(session.run({ x, axes: shape(1, 2), lo: new Tensor('float32', [-1], []), hi: new Tensor('float32', [1], []) }));
      expect(badDims.name).toBe('RangeError');
      expect(badDims.code).toBe(ErrorCode.SHAPE_MISMATCH);
      expect(badDims.message).toMatch(/feeds\['axes'\]/);
      const missing = await rejection(session.run({ x, axes: shape(1), lo: new Tensor('float32', [-1], []) }));
      expect(missing.message).toMatch(/feeds\['hi'\]/);
      const extra = await rejection(session.run({ x, axes: shape(1), lo: new Tensor('float32', [-1], []), hi: new Tensor('float32', [1], []), z: x }));
      expect(extra.message).toMatch(/extra input 'z'/);
      // A bad data feed is the inner session's to report, with its usual code.
      const badData = await rejection(session.run({ x: new Tensor('float32', [1, 2, 3], [1, 3]), axes: shape(1), lo: new Tensor('float32', [-1], []), hi: new Tensor('float32', [1], []) }));
      expect(badData.code).toBe(ErrorCode.SHAPE_MISMATCH);
      expect(badData.message).toMatch(/feeds\['x'\]/);
      // A batch of 0 is refused by the inner session, naming the feed (an empty non-batch
      // dimension reaches only a Reduce that reads it: test/unit/onnx-reference-ops.test.ts).
      const empty = await rejection(session.run({ x: new Tensor('float32', new Float32Array(0), [0, 4]), axes: shape(1), lo: new Tensor('float32', [-1], []), hi: new Tensor('float32', [1], []) }));
      expect(empty.code).toBe(ErrorCode.SHAPE_MISMATCH);
      expect(empty.message).toMatch(/feeds\['x'\].*\[0, 4\]/);
    } finally {
      session.release();
    }
  });

  it('reports at create an operator no binding can make runnable', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', [2, 6]), valueInfo('shape', [2], DataType.INT64)],
      outputs: [valueInfo('y')],
      nodes: [node('Reshape', ['x', 'shape'], ['r'], [], 'reshape'), node('Hardmax', ['r'], ['y'], [], 'hm')],
    });
    const err = await rejection(InferenceSession.create(bytes));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toMatch(/Hardmax 'hm' \(not implemented\) \[domain ai\.onnx, version 13\]/);
  });
});

describe('BoundSession cache', () => {
  /** A BoundSession over reshapeModel whose builds are counted (and may be held back). */
  function counted(limit: number) {
    const bytes = reshapeModel();
    const info = onnxSourceInfo(bytes)!;
    const builds: string[] = [];
    const built: InferenceSession[] = [];
    let gate: Promise<void> = Promise.resolve();
    const bound = new BoundSession(info, async (values) => {
      builds.push(Array.from(values.shape!.data as BigInt64Array).join('x'));
      await gate;
      const g = await importModel(bytes, { bindInputs: values });
      const s = await InferenceSession.create(g);
      built.push(s);
      return s;
    }, limit);
    return { bound, builds, built, hold: (p: Promise<void>) => (gate = p) };
  }

  it('reuses the plan of values seen before and builds one per new value', async () => {
    const { bound, builds } = counted(8);
    await bound.run({ x: x12(), shape: shape(3, 4) });
    await bound.run({ x: x12(), shape: shape(3, 4) });
    await bound.run({ x: x12(), shape: shape(4, 3) });
    await bound.run({ x: x12(), shape: shape(3, 4) });
    expect(builds).toEqual(['3x4', '4x3']);
    expect(bound.cachedPlans).toBe(2);
    bound.release();
  });

  it('evicts the least recently used idle plan beyond the limit, releasing it', async () => {
    const { bound, builds, built } = counted(2);
    await bound.run({ x: x12(), shape: shape(3, 4) });
    await bound.run({ x: x12(), shape: shape(4, 3) });
    await bound.run({ x: x12(), shape: shape(3, 4) }); // 4x3 is now the least recently used
    await bound.run({ x: x12(), shape: shape(2, 6) });
    expect(bound.cachedPlans).toBe(2);
    expect(() => built[1]!.info()).toThrow(/released/); // the 4x3 session
    await bound.run({ x: x12(), shape: shape(3, 4) });
    await bound.run({ x: x12(), shape: shape(4, 3) });
    expect(builds).toEqual(['3x4', '4x3', '2x6', '4x3']);
    bound.release();
    expect(() => built[0]!.info()).toThrow(/released/);
  });

  it('shares one build between concurrent first runs with the same values; copies the values at run', async () => {
    const { bound, builds, hold } = counted(8);
    let open!: () => void;
    hold(new Promise<void>((r) => (open = r)));
    const s = shape(3, 4);
    const runs = [bound.run({ x: x12(), shape: s }), bound.run({ x: x12(), shape: shape(3, 4) })];
    s.data[0] = 6n; // the caller reuses its buffer while the build waits
    s.data[1] = 2n;
    expect(bound.pendingRuns).toBe(2);
    expect(() => bound.release()).toThrow(/in flight/);
    open();
    const outs = await Promise.all(runs);
    expect(outs.map((o) => o.y!.dims)).toEqual([[3, 4], [3, 4]]);
    expect(builds).toEqual(['3x4']);
    expect(bound.pendingRuns).toBe(0);
    bound.release();
  });

  it('keys large values by their hash: a change in any byte rebuilds', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 4, 4]), valueInfo('w', [8, 3, 3, 3])],
      outputs: [valueInfo('y')],
      nodes: [node('Conv', ['x', 'w'], ['y'], [attr.ints('kernel_shape', [3, 3])], 'conv')],
    });
    const session = await InferenceSession.create(bytes);
    try {
      const x = new Tensor('float32', Float32Array.from({ length: 48 }, (_, i) => (i % 5) - 2), [1, 3, 4, 4]);
      const w = new Tensor('float32', new Float32Array(216), [8, 3, 3, 3]);
      const zero = await session.run({ x, w });
      expect(Array.from(zero.y!.data).every((v) => v === 0)).toBe(true);
      w.data[215] = 1; // output channel 7 then copies input channel 2 at its bottom-right tap
      const one = await session.run({ x, w });
      expect(one.y!.dims).toEqual([1, 8, 2, 2]);
      expect(Array.from(one.y!.data.slice(28))).toEqual([x.data[42], x.data[43], x.data[46], x.data[47]]);
    } finally {
      session.release();
    }
  });
});

describe('folding for bound models', () => {
  it('folds Size of a static shape, and CastLike becomes a Cast to the target type (Identity on float run-time values)', async () => {
    const g = await importModel(model({
      opset: 15,
      inputs: [valueInfo('x', ['N', 3, 4])],
      outputs: [valueInfo('y')],
      nodes: [
        node('Shape', ['x'], ['s']),
        node('Size', ['s'], ['rank']), // the rank: [3] is static although the batch is not
        node('CastLike', ['rank', 'x'], ['rankf']),
        node('Mul', ['x', 'rankf'], ['m']),
        node('CastLike', ['m', 'x'], ['y']),
      ],
    }));
    expect(g.nodes.map((v) => v.op)).toEqual(['Mul', 'Identity']);
    const k = g.initializers.get(g.nodes[0]!.inputs[1]!)!;
    expect([k.type, Array.from(k.data)]).toEqual(['float32', [3]]);
    const session = await InferenceSession.create(g);
    const out = await session.run({ x: new Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]) });
    expect(out.y!.data[5]).toBe(15);
    session.release();
  });
});

describe('ops over the leading axis of a static input (bound parameters make these common)', () => {
  it('Slice, Split, Gather, Tile and Expand on axis 0 run as one unit-batch image', async () => {
    const i64 = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: DataType.INT64, int64Data: v });
    const session = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('x', [4, 3])],
      outputs: ['sl', 'p0', 'p1', 'g', 't', 'e'].map((o) => valueInfo(o)),
      nodes: [
        node('Slice', ['x', 'st', 'en'], ['sl']),
        node('Split', ['x', 'parts'], ['p0', 'p1'], [attr.i('axis', 0)]),
        node('Gather', ['x', 'idx'], ['g'], [attr.i('axis', 0)]),
        node('Tile', ['x', 'reps'], ['t']),
        node('Expand', ['x', 'eshape'], ['e']),
      ],
      initializers: [i64('st', [1]), i64('en', [3]), i64('parts', [1, 3]), i64('idx', [3, 0]), i64('reps', [2, 1]), i64('eshape', [2, 4, 3])],
    }));
    try {
      const x = Float32Array.from({ length: 12 }, (_, i) => i);
      const out = await session.run({ x: new Tensor('float32', x, [4, 3]) });
      const rows = (...r: number[]) => r.flatMap((k) => [3 * k, 3 * k + 1, 3 * k + 2]);
      expect([out.sl!.dims, Array.from(out.sl!.data)]).toEqual([[2, 3], rows(1, 2)]);
      expect([out.p0!.dims, Array.from(out.p0!.data), out.p1!.dims, Array.from(out.p1!.data)]).toEqual([[1, 3], rows(0), [3, 3], rows(1, 2, 3)]);
      expect([out.g!.dims, Array.from(out.g!.data)]).toEqual([[2, 3], rows(3, 0)]);
      expect([out.t!.dims, Array.from(out.t!.data)]).toEqual([[8, 3], rows(0, 1, 2, 3, 0, 1, 2, 3)]);
      expect([out.e!.dims, Array.from(out.e!.data)]).toEqual([[2, 4, 3], [...x, ...x]]);
    } finally {
      session.release();
    }
  });
});

describe('constant graph outputs', () => {
  async function outputsOf(spec: Parameters<typeof model>[0], feeds: Record<string, Tensor<DType>>) {
    const session = await InferenceSession.create(model(spec));
    try {
      return await session.run(feeds as never);
    } finally {
      session.release();
    }
  }

  it('Shape and Size of a static input come back as int64', async () => {
    const out = await outputsOf(
      {
        opset: 13,
        inputs: [valueInfo('x', [2, 3, 4])],
        outputs: [valueInfo('s', [3], DataType.INT64), valueInfo('n', [], DataType.INT64), valueInfo('y', [2, 3, 4])],
        nodes: [node('Shape', ['x'], ['s']), node('Size', ['x'], ['n']), node('Relu', ['x'], ['y'])],
      },
      { x: new Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => i - 12), [2, 3, 4]) },
    );
    expect(out.s!.type).toBe('int64');
    expect(Array.from(out.s!.data as unknown as BigInt64Array)).toEqual([2n, 3n, 4n]);
    expect(out.n!.type).toBe('int64');
    expect(out.n!.dims).toEqual([]);
    expect(Array.from(out.n!.data as unknown as BigInt64Array)).toEqual([24n]);
    expect(out.y!.data[0]).toBe(0);
    expect(out.y!.data[23]).toBe(11);
  });

  it('Constant and ConstantOfShape of a bound shape keep the declared dtype (float, int32, bool, double, float16)', async () => {
    const cases: [number, DType, number[], unknown[]][] = [
      [DataType.FLOAT, 'float32', [1.5], [1.5, 1.5]],
      [DataType.INT32, 'int32', [7], [7, 7]],
      [DataType.BOOL, 'bool', [1], [1, 1]],
      [DataType.DOUBLE, 'float64', [0.25], [0.25, 0.25]],
      [DataType.INT64, 'int64', [-3], [-3n, -3n]],
    ];
    for (const [elemType, dtype, value, expected] of cases) {
      const valueTensor = elemType === DataType.FLOAT || elemType === DataType.DOUBLE
        ? { ...floatTensor('v', [1], value), dataType: elemType, ...(elemType === DataType.DOUBLE ? { floatData: [], doubleData: value } : {}) }
        : { name: 'v', dims: [1], dataType: elemType, ...(elemType === DataType.INT64 ? { int64Data: value } : { int32Data: value }) };
      const out = await outputsOf(
        {
          opset: 13,
          inputs: [valueInfo('shape', [1], DataType.INT64)],
          outputs: [valueInfo('y', [2], elemType), valueInfo('c', [1], elemType)],
          nodes: [node('ConstantOfShape', ['shape'], ['y'], [attr.t('value', valueTensor)]), node('Constant', [], ['c'], [attr.t('value', valueTensor)])],
        },
        { shape: new Tensor('int64', [2n], [1]) },
      );
      expect(out.y!.type, dtype).toBe(dtype);
      expect(Array.from(out.y!.data as ArrayLike<unknown>), dtype).toEqual(expected);
      expect(out.c!.type).toBe(dtype);
      expect(out.c!.dims).toEqual([1]);
    }
  });

  it('Dropout: its mask over a static input is all true (a bool constant); training with a fed ratio of 0 is the identity', async () => {
    const session = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('x', [2, 3]), valueInfo('ratio', [], DataType.FLOAT), valueInfo('training', [], DataType.BOOL)],
      outputs: [valueInfo('y', [2, 3]), valueInfo('mask', [2, 3], DataType.BOOL)],
      nodes: [node('Dropout', ['x', 'ratio', 'training'], ['y', 'mask'])],
    }));
    try {
      const x = new Tensor('float32', [1, -2, 3, -4, 5, -6], [2, 3]);
      const feeds = (ratio: number, training: number) => ({ x, ratio: new Tensor('float32', [ratio], []), training: new Tensor('bool', [training], []) });
      for (const [ratio, training] of [[0, 1], [0.5, 0]]) {
        const out = await session.run(feeds(ratio!, training!));
        expect(Array.from(out.y!.data)).toEqual(Array.from(x.data));
        expect(out.mask!.type).toBe('bool');
        expect(Array.from(out.mask!.data)).toEqual([1, 1, 1, 1, 1, 1]);
      }
      const random = await rejection(session.run(feeds(0.5, 1)));
      expect(random.code).toBe(ErrorCode.UNSUPPORTED_OP);
      expect(random.message).toMatch(/training_mode=true/);
    } finally {
      session.release();
    }
  });

  it('a float16 constant output is returned as half bits; each run returns a fresh copy', async () => {
    const session = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('x', [1, 2])],
      outputs: [valueInfo('c', [2], DataType.FLOAT16)],
      nodes: [node('Constant', [], ['c'], [attr.t('value', { name: 'v', dims: [2], dataType: DataType.FLOAT16, int32Data: [0x3c00, 0xc000] })])],
    }));
    try {
      const x = new Tensor('float32', [1, 2], [1, 2]);
      const a = await session.run({ x });
      expect(a.c!.type).toBe('float16');
      expect(Array.from(a.c!.data)).toEqual([0x3c00, 0xc000]);
      a.c!.data[0] = 0;
      expect(Array.from(session.runSync({ x }).c!.data)).toEqual([0x3c00, 0xc000]);
      expect(session.info().steps).toEqual(['constant output c']);
    } finally {
      session.release();
    }
  });
});
