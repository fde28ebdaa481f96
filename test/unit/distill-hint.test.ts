/**
 * Feature (hint) distillation: Sequential.tap (the tapped output is the declared layer's, results
 * unchanged, an injected gradient reaches the weights), the hint loss and adapter against finite
 * differences, refusals before training (each with its code), teacher-feature caching and its
 * memory cap, teachers given as files, and that the hint term falls as the student trains.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it, vi } from 'vitest';

import type { Dataset } from '../../src/data/dataset.js';
import { synthetic } from '../../src/data/synthetic.js';
import { distill } from '../../src/distill/distill.js';
import { featureMse, HintedStudent, planHint } from '../../src/distill/hint.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { exportModel } from '../../src/onnx/export.js';
import { save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { train } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { datasetSlice } from '../support/datasets.js';

const all = synthetic({ count: 320, imageShape: [1, 8, 8], numClasses: 4, seed: 1, signal: 0.4 });
const data = datasetSlice(all, 0, 240, 'train');
const heldOut = datasetSlice(all, 240, 320, 'held-out');

/** conv 3x3 -> relu -> maxpool 2 -> flatten -> linear: values conv_out [N, w, 6, 6], relu_out, maxpool_out [N, w, 3, 3]. */
function net(width: number, seed = 1): Sequential {
  const m = new Sequential(new Conv2d(1, width, 3, { seed }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(width * 3 * 3, 4, { seed: seed + 1 }));
  m.inputShape = [1, 8, 8];
  return m;
}

const weights = (m: Sequential): number[] => m.parameters().flatMap((p) => Array.from(p.value.data));

function random(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}

let teacher: Sequential;
beforeAll(async () => {
  teacher = net(8);
  await train(teacher, data, { epochs: 6, batchSize: 32, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 }, seed: 1 });
});

describe('Sequential.tap', () => {
  const input = new Tensor('float32', random(3 * 64, 5), [3, 1, 8, 8]);

  it('sees each layer its declared output (no conv+pool fusion, no relu/pool swap) and leaves the result alone', async () => {
    for (const index of [0, 1, 2]) {
      const m = net(4);
      const plain = (await m.forward(input)).data.slice();
      // Declared order, layer by layer (a fresh copy of the same weights).
      const ref = net(4);
      let x = input;
      for (let i = 0; i <= index; i++) x = await ref.layers[i].forward(x);
      let seen: Float32Array | undefined;
      const untap = m.tap(index, { forward: (o) => void (seen = o.data.slice()), backward: (g) => g });
      expect(Array.from((await m.forward(input)).data)).toEqual(Array.from(plain));
      expect(Array.from(seen!)).toEqual(Array.from(x.data));
      untap();
      seen = undefined;
      await m.forward(input);
      expect(seen).toBeUndefined();
    }
  });

  it('an identity tap changes no gradient; an injected gradient equals the backward of the layers before it', async () => {
    const g = new Tensor('float32', random(3 * 4, 6), [3, 4]);
    const plainGrads = async (m: Sequential): Promise<number[]> => {
      await m.forward(input);
      await m.backward(g);
      return m.parameters().flatMap((p) => Array.from(p.grad));
    };
    const m = net(4);
    const want = await plainGrads(m);
    const untap = m.tap(1, { forward: () => {}, backward: (x) => x });
    expect(await plainGrads(m)).toEqual(want);
    untap();

    // Inject G1 at the ReLU: the conv's gradient must be that of G1 plus what came from above.
    const extra = random(3 * 4 * 6 * 6, 7);
    const injected = net(4);
    let above: Float32Array | undefined;
    injected.tap(1, {
      forward: () => {},
      backward: (x) => {
        above = x.data.slice();
        return new Tensor('float32', x.data.map((v, i) => v + extra[i]), x.dims);
      },
    });
    await injected.forward(input);
    await injected.backward(g);
    const ref = net(4);
    const h1 = await ref.layers[1].forward(await ref.layers[0].forward(input));
    void h1;
    const sum = new Tensor('float32', above!.map((v, i) => v + extra[i]), [3, 4, 6, 6]);
    await ref.layers[0].backward(await ref.layers[1].backward(sum));
    expect(Array.from(injected.layers[0].parameters()[0].grad)).toEqual(Array.from(ref.layers[0].parameters()[0].grad));
  });

  it('refuses a bad index, a second tap on a layer and a malformed tap', () => {
    const m = net(2);
    const ok = { forward: () => {}, backward: (g: Tensor<'float32'>) => g };
    expect(() => m.tap(5, ok)).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
    m.tap(1, ok);
    expect(() => m.tap(1, ok)).toThrow(/already tapped/);
    expect(() => m.tap(0, { forward: 1 } as never)).toThrow(TypeError);
  });
});

describe('hint loss and adapter against finite differences', () => {
  it('featureMse: value and gradient', () => {
    const a = random(60, 1);
    const t = random(60, 2);
    const { loss, mse, grad } = featureMse(a, t, 0.7);
    let sum = 0;
    for (let i = 0; i < 60; i++) sum += (a[i] - t[i]) ** 2;
    expect(mse).toBeCloseTo(sum / 60, 6);
    expect(loss).toBeCloseTo((0.7 * sum) / 60, 6);
    const f = (x: Float64Array): number => (0.7 * x.reduce((s, v, i) => s + (v - t[i]) ** 2, 0)) / 60;
    const eps = 1e-4;
    for (const i of [0, 17, 59]) {
      const up = Float64Array.from(a);
      const down = Float64Array.from(a);
      up[i] += eps;
      down[i] -= eps;
      expect(grad[i]).toBeCloseTo((f(up) - f(down)) / (2 * eps), 5);
    }
  });

  it('student + adapter: d(sum(G * logits) + w * mse(adapter(feature), target)) by central differences', async () => {
    // Tap on the ReLU (index 1): its output is computed as such only because of the tap.
    const student = net(3, 11);
    const plan = planHint({ teacher: 'unused', student: 1, weight: 0.5 }, student, [1, 8, 8], 1);
    const hinted = new HintedStudent(student, plan, 5, 3);
    const input = new Tensor('float32', random(2 * 64, 12), [2, 1, 8, 8]);
    const G = random(2 * 4, 13);
    const target = random(2 * 5 * 6 * 6, 14, 0.5);
    const objective = async (): Promise<number> => {
      const logits = await hinted.forward(input);
      const { loss } = await hinted.hintStep(target, 0.5);
      let s = loss;
      for (let i = 0; i < G.length; i++) s += G[i] * logits.data[i];
      return s;
    };
    await objective();
    await hinted.backward(new Tensor('float32', G, [2, 4]));
    const params = hinted.parameters();
    expect(params.map((p) => p.name)).toEqual(['0.weight', '0.bias', '4.weight', '4.bias', 'hint.weight', 'hint.bias']);
    const analytic = params.map((p) => p.grad.slice());
    const eps = 1e-2;
    for (const [pi, picks] of [[0, [0, 7, 20]], [1, [0, 2]], [4, [0, 8, 14]], [5, [1, 4]]] as const) {
      const v = params[pi].value.data;
      for (const i of picks) {
        const keep = v[i];
        v[i] = keep + eps;
        const up = await objective();
        v[i] = keep - eps;
        const down = await objective();
        v[i] = keep;
        const numeric = (up - down) / (2 * eps);
        expect(Math.abs(analytic[pi][i] - numeric)).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
      }
    }
    hinted.detach();
  });
});

describe('distill with a hint: refused before any training', () => {
  const hint = (h: object) => ({ epochs: 1, hint: h } as never);
  const cases: [string, () => Promise<unknown>, string, RegExp, (new (...a: never[]) => Error)?][] = [
    ['an unknown teacher value', () => distill(teacher, net(2), data, hint({ teacher: 'conv_9_out', student: 0 })), 'ERR_KILN_INVALID_ARG', /conv_out.*options\.hint\.teacher/, RangeError],
    ['a teacher value that is not [N, C, H, W]', () => distill(teacher, net(2), data, hint({ teacher: 'flatten_out', student: 0 })), 'ERR_KILN_SHAPE_MISMATCH', /flatten_out/, RangeError],
    ['an unknown student layer', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 9 })), 'ERR_KILN_INVALID_ARG', /options\.hint\.student/, RangeError],
    ['a path into a layer that is no Sequential', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: '0.1' })), 'ERR_KILN_INVALID_ARG', /Conv2d/, RangeError],
    ['a student layer without [N, C, H, W] output', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 3 })), 'ERR_KILN_SHAPE_MISMATCH', /layer 3/, RangeError],
    ['different spatial sizes', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 2 })), 'ERR_KILN_SHAPE_MISMATCH', /\[N, 8, 6, 6\].*\[N, 2, 3, 3\].*height and width/, RangeError],
    ['a negative weight', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 0, weight: -1 })), 'ERR_KILN_INVALID_ARG', /options\.hint\.weight/, RangeError],
    ['a negative scheduled weight', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 0, weight: { type: 'linear', from: 1, to: -1 } })), 'ERR_KILN_INVALID_ARG', /options\.hint\.weight\.to/, RangeError],
    ['a weight that is no number', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 0, weight: '1' })), 'ERR_KILN_INVALID_ARG', /options\.hint\.weight/, TypeError],
    ['a teacher value that is no string', () => distill(teacher, net(2), data, hint({ teacher: 3, student: 0 })), 'ERR_KILN_INVALID_ARG', /options\.hint\.teacher/, TypeError],
    ['a student layer that is neither index nor path', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: { i: 0 } })), 'ERR_KILN_INVALID_ARG', /options\.hint\.student/, TypeError],
    ['an unknown hint key', () => distill(teacher, net(2), data, hint({ teacher: 'conv_out', student: 0, wieght: 1 })), 'ERR_KILN_INVALID_ARG', /wieght/],
  ];
  for (const [what, run, code, message, kind] of cases) {
    it(`refuses ${what} (${code}) and leaves the student untouched`, async () => {
      const student = net(2);
      const before = weights(student);
      const err = await run().then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code, message: expect.stringMatching(message) });
      if (kind) expect(err).toBeInstanceOf(kind);
      expect(weights(student)).toEqual(before);
    });
  }

  it('refuses an open session that does not output the value, before running it', async () => {
    const session = await InferenceSession.create(teacher);
    const run = vi.spyOn(session, 'run');
    await expect(distill(session, net(2), data, hint({ teacher: 'relu_out', student: 1 }))).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/open teacher session's outputs/) });
    expect(run).not.toHaveBeenCalled();
    session.release();
  });
});

describe('distill with a hint: teacher features', () => {
  it('are computed once when they fit the cap, per batch when not; the student ends without its tap', async () => {
    const student = net(2, 3);
    const cached = await distill(teacher, student, data, { epochs: 3, hint: { teacher: 'relu_out', student: 1 }, train: { batchSize: 64 } });
    // Probe + one run over the 240 images, features included.
    expect(cached).toMatchObject({ cachedTeacherLogits: true, cachedTeacherFeatures: true, teacherRuns: 2 });
    expect(cached.hintLoss).toHaveLength(3);
    // 240 images x 8 x 6 x 6 floats = 276,480 bytes: a cap just below forces a run per batch.
    const perBatch = await distill(teacher, net(2, 3), data, { epochs: 3, hint: { teacher: 'relu_out', student: 1, maxCacheBytes: 240 * 8 * 36 * 4 - 1 }, train: { batchSize: 64 } });
    expect(perBatch).toMatchObject({ cachedTeacherLogits: false, cachedTeacherFeatures: false, teacherRuns: 1 + 3 * 4 });
    // Same objective either way: the same weights.
    expect(weights(perBatch.student as Sequential)).toEqual(weights(student));
    // The tap is gone: the student can be hinted again and trains as a plain model.
    expect(student.parameters()).toHaveLength(4);
    await distill(teacher, student, data, { epochs: 1, hint: { teacher: 'relu_out', student: 1 } });
  });

  it('the hint term pulls the features towards the teacher ones, with a .kiln and an ONNX teacher alike', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kiln-hint-')), 'teacher.kiln');
    await save(teacher, path);
    const opts = (weight: number | { type: 'cosine'; from: number; to: number }) => ({
      epochs: 4,
      validation: heldOut,
      hint: { teacher: 'relu_out', student: 1, weight },
      train: { batchSize: 32, optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9 } },
    });
    const pulled = await distill(path, net(2, 7), data, opts({ type: 'cosine', from: 12, to: 8 }));
    expect(pulled.hintLoss![3]).toBeLessThan(pulled.hintLoss![0]);
    // Weight 0: the same MSE is measured but nothing minimises it; the features drift away.
    const free = await distill(path, net(2, 7), data, opts(0));
    expect(pulled.hintLoss![3]).toBeLessThan(0.5 * free.hintLoss![3]);
    const fromOnnx = await distill(exportModel(teacher, { inputShape: [1, 8, 8] }), net(2, 7), data, opts({ type: 'cosine', from: 12, to: 8 }));
    expect(fromOnnx.hintLoss![0]).toBeCloseTo(pulled.hintLoss![0], 4);
  });
});
