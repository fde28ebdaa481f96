/**
 * The native plan as a whole: storage planning (views, in-place steps, buffers shared by
 * liveness, outputs read by later steps), concurrent runs, and every way a spec or a run can be
 * malformed (each a TypeError/RangeError/KilnError with a code; the process survives).
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Plan, type PlanSpec } from '../../src/runtime/plan.js';
import { Rng } from '../../src/util/rng.js';
import * as ref from '../kernels/plan-reference.js';

const rng = new Rng(7);
function random(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

// x[2,6,6] → Conv 3x3 pad 1 (4 ch) = a → Relu = r (also an output) → Conv 1x1 = b → Add(r, b) = c
// → MaxPool 2x2 = d → Flatten = e → Gemm 36->5 = f → Softmax = g (output).
const W1 = random(4 * 2 * 9);
const B1 = random(4);
const W2 = random(4 * 4);
const G = random(36 * 5);
function networkSpec(): PlanSpec {
  return {
    values: [[2, 6, 6], [4, 6, 6], [4, 6, 6], [4, 6, 6], [4, 6, 6], [4, 3, 3], [36], [5], [5]],
    inputs: [0],
    outputs: [8, 2],
    steps: [
      { op: 'Conv', name: 'conv1', inputs: [0], outputs: [1], attrs: { kernel: [3, 3], pads: [1, 1, 1, 1] }, weights: { W: { data: W1, shape: [4, 2, 3, 3] }, B: { data: B1, shape: [4] } } },
      { op: 'Relu', name: 'relu', inputs: [1], outputs: [2] },
      { op: 'Conv', name: 'conv2', inputs: [2], outputs: [3], attrs: { kernel: [1, 1] }, weights: { W: { data: W2, shape: [4, 4, 1, 1] } } },
      { op: 'Add', name: 'add', inputs: [2, 3], outputs: [4] },
      { op: 'MaxPool', name: 'pool', inputs: [4], outputs: [5], attrs: { kernel: [2, 2], strides: [2, 2] } },
      { op: 'Flatten', name: 'flatten', inputs: [5], outputs: [6] },
      { op: 'Gemm', name: 'fc', inputs: [6], outputs: [7], weights: { B: { data: G, shape: [36, 5] } } },
      { op: 'Softmax', name: 'softmax', inputs: [7], outputs: [8], attrs: { axis: 1 } },
    ],
  };
}

function networkReference(x: Float32Array, batch: number): { probs: Float64Array; relu: Float64Array } {
  const p = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
  const a = ref.conv2d(ref.arr([batch, 2, 6, 6], x), ref.arr([4, 2, 3, 3], W1), ref.arr([4], B1), p).out;
  const r = ref.arr(a.shape, a.data.map((v) => Math.max(0, v)));
  const b = ref.conv2d(r, ref.arr([4, 4, 1, 1], W2), undefined, { ...p, pads: [0, 0, 0, 0] }).out;
  const c = ref.binary(r, b, (u, v) => u + v);
  const d = ref.pool2d(c, { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil: false, max: true, includePad: false });
  const f = ref.matmul(ref.arr([batch, 36], d.data), ref.arr([36, 5], G)).out;
  return { probs: ref.softmax(f, 1, false).data, relu: r.data };
}

function expectNear(got: Float32Array, want: Float64Array, tol: number): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThanOrEqual(tol);
}

describe('Plan storage and execution', () => {
  it('runs a branching network with views, in-place steps and an output read by later steps', () => {
    const plan = Plan.createSync(networkSpec());
    const info = plan.info();
    expect(info.steps).toContain('Flatten flatten: view');
    expect(info.steps.some((s) => s.startsWith('Softmax softmax') && s.endsWith('(in place)'))).toBe(true);
    // relu's output is a plan output: it must not be overwritten in place by a later step.
    expect(info.steps.some((s) => s.startsWith('Add add') && s.endsWith('(in place)'))).toBe(false);
    // Buffers are shared: the arena holds less than every internal value side by side.
    const internal = [1, 3, 4, 5, 7].map((v) => ref.size(networkSpec().values[v]) * 4);
    expect(info.arenaBytesPerImage).toBeLessThan(internal.reduce((a, b) => a + b, 0));
    for (const batch of [1, 3]) {
      const x = random(batch * 72);
      const probs = new Float32Array(batch * 5).fill(Number.NaN);
      const relu = new Float32Array(batch * 144).fill(Number.NaN);
      plan.run([x], [probs, relu], batch, false);
      const want = networkReference(x, batch);
      expectNear(probs, want.probs, 1e-5);
      expectNear(relu, want.relu, 1e-5);
    }
    plan.dispose();
  });

  it('runs a batch in passes of imagesPerPass images with the bits of the whole batch, sync and async', async () => {
    const whole = Plan.createSync(networkSpec());
    const batch = 7;
    const x = random(batch * 72);
    const want = [new Float32Array(batch * 5), new Float32Array(batch * 144)];
    whole.run([x], want, batch, false);
    for (const imagesPerPass of [1, 3, 7]) {
      const plan = Plan.createSync({ ...networkSpec(), imagesPerPass });
      for (const async of [false, true]) {
        const got = [new Float32Array(batch * 5).fill(Number.NaN), new Float32Array(batch * 144).fill(Number.NaN)];
        await plan.run([x], got, batch, async);
        expect(Array.from(got[0]), `passes of ${imagesPerPass}, async ${async}`).toEqual(Array.from(want[0]));
        expect(Array.from(got[1]), `passes of ${imagesPerPass}, async ${async}`).toEqual(Array.from(want[1]));
      }
      plan.dispose();
    }
    whole.dispose();
    expect(() => Plan.createSync({ ...networkSpec(), imagesPerPass: -1 })).toThrow(RangeError);
  });

  it('gives every run in flight its own arena (concurrent async runs on one plan)', async () => {
    const plan = Plan.createSync(networkSpec());
    const batches = [1, 5, 2, 7, 3, 4, 6, 2];
    const xs = batches.map((b) => random(b * 72));
    const outs = batches.map((b) => [new Float32Array(b * 5).fill(Number.NaN), new Float32Array(b * 144).fill(Number.NaN)]);
    await Promise.all(batches.map((b, i) => plan.run([xs[i]], outs[i], b, true)));
    batches.forEach((b, i) => {
      const want = networkReference(xs[i], b);
      expectNear(outs[i][0], want.probs, 1e-5);
      expectNear(outs[i][1], want.relu, 1e-5);
    });
    plan.dispose();
  });

  it('reports the scratch arenas it keeps: one per run in flight at once, grown only by a bigger batch', async () => {
    const plan = Plan.createSync(networkSpec());
    const run = (b: number, async: boolean) => plan.run([random(b * 72)], [new Float32Array(b * 5), new Float32Array(b * 144)], b, async);
    expect(plan.info().arenaBytesHeld).toBe(0);
    run(1, false);
    const one = plan.info().arenaBytesHeld;
    expect(one).toBe(plan.info().arenaBytes);
    run(8, false);
    const eight = plan.info().arenaBytesHeld;
    expect(eight).toBeGreaterThanOrEqual(8 * plan.info().arenaBytesPerImage);
    // Smaller and equal batches reuse the one arena: nothing more is held.
    for (const b of [1, 3, 8, 2]) run(b, false);
    expect(plan.info().arenaBytesHeld).toBe(eight);
    // Concurrent runs each lease an arena (as many as overlapped in time), none bigger than batch 8's.
    await Promise.all([1, 1, 8, 1, 1, 8].map((b) => run(b, true)));
    const held = plan.info().arenaBytesHeld;
    expect(held).toBeGreaterThanOrEqual(eight);
    expect(held).toBeLessThanOrEqual(6 * eight);
    // Later batch-8 runs, one at a time, take an idle arena that fits instead of growing one of the
    // small arenas the batch-1 runs left (when the runs above overlapped, the pool holds both sizes).
    for (let i = 0; i < 4; i++) run(8, false);
    expect(plan.info().arenaBytesHeld).toBe(held);
    plan.dispose();
  });

  it('keeps a plan alive for runs in flight when it is disposed', async () => {
    const plan = native.createPlan(networkSpec());
    const x = random(16 * 72);
    const outs = [new Float32Array(16 * 5).fill(Number.NaN), new Float32Array(16 * 144).fill(Number.NaN)];
    const pending = native.runPlan(plan, { inputs: [x], outputs: outs, batch: 16 }, true);
    native.disposePlan(plan);
    await pending;
    expectNear(outs[0], networkReference(x, 16).probs, 1e-5);
  });

  it('copies where a view would tie two caller buffers together', () => {
    // Output 0 is a view of the input, output 1 a view of output 0.
    const plan = Plan.createSync({
      values: [[2, 3], [6], [3, 2]],
      inputs: [0],
      outputs: [1, 2],
      steps: [
        { op: 'Reshape', name: 'r1', inputs: [0], outputs: [1] },
        { op: 'Reshape', name: 'r2', inputs: [1], outputs: [2] },
      ],
    });
    expect(plan.info().steps).toEqual(['Reshape r1: view (copied)', 'Reshape r2: view (copied)']);
    const x = random(12);
    const a = new Float32Array(12).fill(Number.NaN);
    const b = new Float32Array(12).fill(Number.NaN);
    plan.run([x], [a, b], 2, false);
    expect(Array.from(a)).toEqual(Array.from(x));
    expect(Array.from(b)).toEqual(Array.from(x));
  });

  it('reduces an empty plan input (an empty set) to the reduction\'s identity, without reading it', () => {
    for (const [op, want] of [['ReduceSum', 0], ['ReduceProd', 1], ['ReduceMax', -Infinity], ['ReduceMin', Infinity], ['ReduceLogSum', -Infinity], ['ReduceL2', 0]] as const) {
      const plan = Plan.createSync({
        values: [[0, 4], [1, 4]],
        inputs: [0],
        outputs: [1],
        steps: [{ op, name: 'r', inputs: [0], outputs: [1], attrs: { axes: [1], keepdims: 1 } }],
      });
      const y = new Float32Array(3 * 4).fill(Number.NaN);
      plan.run([new Float32Array(0)], [y], 3, false);
      expect(Array.from(y), op).toEqual(new Array<number>(12).fill(want));
      plan.dispose();
    }
  });

  it('builds asynchronously and frees its weights on dispose', async () => {
    const plan = await Plan.create(networkSpec(), true);
    expect(plan.info().weightBytes).toBeGreaterThan(0);
    plan.dispose();
    expect(plan.disposed).toBe(true);
    expect(() => plan.info()).toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
  });
});

const badArg = (name: 'TypeError' | 'RangeError', message?: RegExp) =>
  expect.objectContaining({ name, code: 'ERR_KILN_INVALID_ARG', ...(message ? { message: expect.stringMatching(message) } : {}) });

describe('createPlan validation', () => {
  const base = (): PlanSpec => ({
    values: [[3], [3]],
    inputs: [0],
    outputs: [1],
    steps: [{ op: 'Relu', name: 'relu', inputs: [0], outputs: [1] }],
  });
  const cases: [string, (s: PlanSpec) => unknown, ReturnType<typeof badArg>][] = [
    ['unknown op', (s) => ((s.steps[0] as { op: string }).op = 'Frobnicate'), badArg('RangeError', /one of Conv/)],
    ['value id out of range', (s) => (s.steps[0].inputs = [5]), badArg('RangeError', /inputs\[0\]/)],
    ['negative value id', (s) => (s.outputs = [-1]), badArg('RangeError')],
    ['fractional value id', (s) => (s.inputs = [0.5]), badArg('TypeError')],
    ['value read before it is written', (s) => (s.steps[0].inputs = [1]), badArg('RangeError', /written by a plan input or an earlier step/)],
    ['value written twice', (s) => (s.steps[0].outputs = [0]), badArg('RangeError', /one writer/)],
    ['output never written', (s) => { s.values.push([3]); s.outputs = [2]; }, badArg('RangeError', /written by a step/)],
    ['output that is an input', (s) => (s.outputs = [0]), badArg('RangeError', /not a plan input/)],
    ['duplicate outputs', (s) => (s.outputs = [1, 1]), badArg('RangeError', /distinct/)],
    ['empty input read by a step other than a Reduce', (s) => (s.values[0] = [0]), badArg('RangeError', /only a Reduce reads an empty one/)],
    ['empty value that is not a plan input', (s) => (s.values[1] = [0]), badArg('RangeError', /only a plan input may be empty/)],
    ['huge per-image size', (s) => (s.values[0] = [2 ** 31 - 1, 2 ** 31 - 1]), badArg('RangeError')],
    ['wrong output shape', (s) => (s.values[1] = [4]), badArg('RangeError', /per-image shape \[3\]/)],
    ['values not an array', (s) => ((s as { values: unknown }).values = 3), badArg('TypeError')],
    ['attrs of the wrong type', (s) => ((s.steps[0] as { attrs: unknown }).attrs = { a: { b: 1 } }), badArg('TypeError')],
    ['weights without data', (s) => ((s.steps[0] as { weights: unknown }).weights = { W: { shape: [1] } }), badArg('TypeError')],
    ['too many inputs', (s) => (s.steps[0].inputs = [0, 0]), badArg('RangeError', /1 input/)],
  ];
  for (const [label, mutate, error] of cases) {
    it(`refuses ${label}`, () => {
      const spec = base();
      mutate(spec);
      expect(() => native.createPlan(spec)).toThrow(error);
    });
  }

  it('checks every op\'s attributes and weights against the shapes', () => {
    const conv = (attrs: Record<string, unknown>, w: { data: Float32Array; shape: number[] }, out = [2, 3, 3]) => ({
      values: [[3, 5, 5], out],
      inputs: [0],
      outputs: [1],
      steps: [{ op: 'Conv', name: 'c', inputs: [0], outputs: [1], attrs, weights: { W: w } }],
    });
    const w = { data: new Float32Array(2 * 3 * 9), shape: [2, 3, 3, 3] };
    expect(() => native.createPlan(conv({ kernel: [3, 3] }, w))).not.toThrow();
    expect(() => native.createPlan(conv({ kernel: [3, 3], group: 2 }, w))).toThrow(badArg('RangeError', /group/));
    expect(() => native.createPlan(conv({ kernel: [3, 3], strides: [0, 1] }, w))).toThrow(badArg('RangeError', /strides/));
    expect(() => native.createPlan(conv({ kernel: [3, 3], strides: [Number.NaN, 1] }, w))).toThrow(badArg('RangeError', /strides/));
    expect(() => native.createPlan(conv({ kernel: [3, 3], pads: [1, 1] }, w))).toThrow(badArg('RangeError', /pads/));
    expect(() => native.createPlan(conv({ kernel: [3, 3] }, { data: new Float32Array(5), shape: [2, 3, 3, 3] }))).toThrow(badArg('RangeError', /54 elements/));
    expect(() => native.createPlan(conv({ kernel: [3, 3] }, { data: new Float32Array(2 * 9), shape: [2, 1, 3, 3] }))).toThrow(badArg('RangeError', /weights.W/));
    expect(() => native.createPlan(conv({ kernel: [3, 3] }, w, [2, 4, 4]))).toThrow(badArg('RangeError', /outputs\[0\]/));
    expect(() => native.createPlan(conv({ kernel: [9, 9] }, { data: new Float32Array(2 * 3 * 81), shape: [2, 3, 9, 9] }))).toThrow(badArg('RangeError'));
    expect(() => native.createPlan(conv({ kernel: [3, 3], activation: 'Swish' }, w))).toThrow(badArg('RangeError', /activation/));
    expect(() => native.createPlan(conv({ kernel: [3, 3], winograd: 1, winograd_tile: 3 }, w))).toThrow(badArg('RangeError', /winograd_tile/));
    expect(() => native.createPlan(conv({ kernel: [3, 3], winograd: 2 }, w))).toThrow(badArg('RangeError', /winograd/));
    // A residual (attr residual 1): a second input of the output's shape, and no fused pool.
    const residual = (rshape: number[], attrs: Record<string, unknown> = {}, out = [2, 3, 3]) => ({
      values: [[3, 5, 5], out, rshape],
      inputs: [0, 2],
      outputs: [1],
      steps: [{ op: 'Conv', name: 'c', inputs: [0, 2], outputs: [1], attrs: { kernel: [3, 3], residual: 1, ...attrs }, weights: { W: w } }],
    });
    expect(() => native.createPlan(residual([2, 3, 3]))).not.toThrow();
    expect(() => native.createPlan(residual([2, 3, 3], { residual: 0 }))).toThrow(badArg('RangeError', /1 input/));
    expect(() => native.createPlan(residual([2, 3, 4]))).toThrow(badArg('RangeError', /per-image shape \[2, 3, 3\].*inputs\[1\]/));
    expect(() => native.createPlan(residual([2, 3, 3], { residual: 2 }))).toThrow(badArg('RangeError', /residual/));
    expect(() => native.createPlan(residual([2, 3, 3], { pool: 'MaxPool', pool_kernel: [2, 2], pool_strides: [1, 1] }, [2, 2, 2]))).toThrow(
      badArg('RangeError', /residual/),
    );
    expect(() => native.createPlan(conv({ kernel: [3, 3], residual: 1 }, w))).toThrow(badArg('RangeError', /2 input value/));
    const gemm = { values: [[4], [3]], inputs: [0], outputs: [1], steps: [{ op: 'Gemm', name: 'g', inputs: [0], outputs: [1], attrs: { transA: 1 }, weights: { B: { data: new Float32Array(12), shape: [4, 3] } } }] };
    expect(() => native.createPlan(gemm)).toThrow(badArg('RangeError', /transA/));
    const add = { values: [[3, 4], [3, 4]], inputs: [0], outputs: [1], steps: [{ op: 'Add', name: 'a', inputs: [0], outputs: [1], weights: { B: { data: new Float32Array(8), shape: [2, 1, 4] } } }] };
    expect(() => native.createPlan(add)).toThrow(badArg('RangeError', /broadcasts over the batch/));
    const perm = { values: [[3, 4], [4, 3]], inputs: [0], outputs: [1], steps: [{ op: 'Transpose', name: 't', inputs: [0], outputs: [1], attrs: { perm: [1, 0, 2] } }] };
    expect(() => native.createPlan(perm)).toThrow(badArg('RangeError', /batch axis/));
    const reflect = { values: [[3], [9]], inputs: [0], outputs: [1], steps: [{ op: 'Pad', name: 'p', inputs: [0], outputs: [1], attrs: { mode: 'reflect', pads: [0, 3, 0, 3] } }] };
    expect(() => native.createPlan(reflect)).toThrow(badArg('RangeError', /reflect/));
  });

  it('reports async build errors as rejected promises with the same codes', async () => {
    const spec = { values: [[3], [4]], inputs: [0], outputs: [1], steps: [{ op: 'Relu', name: 'r', inputs: [0], outputs: [1] }] };
    await expect(native.createPlan(spec, true)).rejects.toThrow(badArg('RangeError', /per-image shape \[3\]/));
  });
});

describe('createPlan fuzz', () => {
  it('answers 2,000 mutated specs with a plan or a coded error, never a crash', () => {
    const r = new Rng(2024);
    const junk = [undefined, null, -1, 0, 1, 2.5, Number.NaN, Infinity, 2 ** 53, 'x', [], [1, 'a'], {}, [[]], new Float64Array(3), new Float32Array(0), true];
    const pick = <T>(a: T[]): T => a[r.int(a.length)];
    let built = 0;
    for (let i = 0; i < 2000; i++) {
      const spec = networkSpec() as unknown as Record<string, unknown>;
      for (let e = 0; e < 1 + r.int(3); e++) {
        // Any object inside the spec may be edited (the spec, a step, its attrs or weights).
        const objects: Record<string, unknown>[] = [spec];
        const steps = Array.isArray(spec.steps) ? (spec.steps as unknown[]) : [];
        for (const st of steps) {
          if (st === null || typeof st !== 'object' || ArrayBuffer.isView(st)) continue;
          objects.push(st as Record<string, unknown>);
          for (const k of ['attrs', 'weights']) {
            const o = (st as Record<string, unknown>)[k];
            if (o !== null && typeof o === 'object' && !Array.isArray(o) && !ArrayBuffer.isView(o)) objects.push(o as Record<string, unknown>);
          }
        }
        const target = pick(objects);
        const keys = Object.keys(target);
        const key = keys.length && r.int(4) ? keys[r.int(keys.length)] : pick(['values', 'op', 'kernel', 'pads', 'weights', 'extra']);
        const current = target[key];
        if (Array.isArray(current) && current.length && r.int(2)) {
          const copy = current.slice();
          copy[r.int(copy.length)] = r.int(2) ? pick(junk) : r.int(12) - 2;
          target[key] = copy;
        } else {
          target[key] = pick(junk);
        }
      }
      try {
        native.createPlan(spec);
        built++;
      } catch (e) {
        expect((e as { code?: string }).code, String(e)).toMatch(/^ERR_KILN_(INVALID_ARG|NATIVE)$/);
      }
    }
    expect(built).toBeGreaterThan(0);
  });
});

describe('runPlan validation', () => {
  const plan = native.createPlan({ values: [[3], [3]], inputs: [0], outputs: [1], steps: [{ op: 'Relu', name: 'r', inputs: [0], outputs: [1] }] });
  const x = new Float32Array(6);
  const y = new Float32Array(6);
  it('checks lengths, types, batch and overlaps', () => {
    expect(() => native.runPlan(plan, { inputs: [x], outputs: [y], batch: 3 }, false)).toThrow(badArg('RangeError', /9 elements/));
    expect(() => native.runPlan(plan, { inputs: [x], outputs: [new Float32Array(5)], batch: 2 }, false)).toThrow(badArg('RangeError', /outputs\[0\]/));
    expect(() => native.runPlan(plan, { inputs: [new Float64Array(6) as never], outputs: [y], batch: 2 }, false)).toThrow(badArg('TypeError', /Float32Array/));
    expect(() => native.runPlan(plan, { inputs: [], outputs: [y], batch: 2 }, false)).toThrow(badArg('RangeError', /1 arrays/));
    expect(() => native.runPlan(plan, { inputs: [x], outputs: [y], batch: 0 }, false)).toThrow(badArg('RangeError', /batch/));
    expect(() => native.runPlan(plan, { inputs: [x], outputs: [y], batch: 1.5 }, false)).toThrow(badArg('TypeError', /batch/));
    expect(() => native.runPlan(plan, { inputs: [x], outputs: [x], batch: 2 }, false)).toThrow(badArg('RangeError', /overlaps/));
    const buf = new Float32Array(10);
    expect(() => native.runPlan(plan, { inputs: [buf.subarray(0, 6)], outputs: [buf.subarray(4, 10)], batch: 2 }, false)).toThrow(badArg('RangeError', /overlaps/));
    expect(() => native.runPlan({} as never, { inputs: [x], outputs: [y], batch: 2 }, false)).toThrow(badArg('TypeError', /createPlan/));
    expect(() => native.runPlan(plan, null as never, false)).toThrow(badArg('TypeError'));
  });

  it('refuses a disposed plan', () => {
    const p = native.createPlan({ values: [[3], [3]], inputs: [0], outputs: [1], steps: [{ op: 'Relu', name: 'r', inputs: [0], outputs: [1] }] });
    native.disposePlan(p);
    expect(() => native.runPlan(p, { inputs: [x], outputs: [y], batch: 2 }, false)).toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
    expect(() => native.planInfo(p)).toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
  });

  it('runs NaN and infinities through as data', () => {
    const inp = Float32Array.from([Number.NaN, -Infinity, Infinity, -1, 0, 2]);
    native.runPlan(plan, { inputs: [inp], outputs: [y], batch: 2 }, false);
    expect(Number.isNaN(y[0])).toBe(true);
    expect(Array.from(y.subarray(1))).toEqual([0, Infinity, 0, 0, 2]);
  });
});
