/**
 * Gradient checks of every layer and the loss: the analytic backward (native, float32) against
 * central finite differences of a float64 reference forward written here with naive loops.
 * The scalar checked is L = sum(G * f(x)) for a random upstream gradient G, so dL/dx = backward(G).
 * Runs on every ISA this CPU has.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { AvgPool2d } from '../../src/nn/layers/avg-pool2d.js';
import { BatchNorm2d } from '../../src/nn/layers/batch-norm2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Dropout } from '../../src/nn/layers/dropout.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { CrossEntropyLoss } from '../../src/nn/losses.js';
import type { Module } from '../../src/nn/module.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

type F64 = Float64Array;
/** Reference forward: input and parameter values (float64) -> output (float64). */
type Reference = (x: F64, params: F64[]) => F64;

// ---------- float64 reference layers (naive loops) ----------

interface ConvRef {
  n: number; c: number; h: number; w: number; cout: number; kh: number; kw: number;
  sh: number; sw: number; pt: number; pl: number; pb: number; pr: number; dh: number; dw: number; groups: number;
}

function outSize(size: number, k: number, s: number, p0: number, p1: number, d: number): number {
  return Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;
}

function convRef(g: ConvRef): Reference {
  return (x, [weight, bias]) => {
    const ho = outSize(g.h, g.kh, g.sh, g.pt, g.pb, g.dh);
    const wo = outSize(g.w, g.kw, g.sw, g.pl, g.pr, g.dw);
    const cinG = g.c / g.groups;
    const coutG = g.cout / g.groups;
    const y = new Float64Array(g.n * g.cout * ho * wo);
    for (let n = 0; n < g.n; n++)
      for (let oc = 0; oc < g.cout; oc++)
        for (let oy = 0; oy < ho; oy++)
          for (let ox = 0; ox < wo; ox++) {
            let s = bias ? bias[oc] : 0;
            const group = Math.floor(oc / coutG);
            for (let ic = 0; ic < cinG; ic++)
              for (let ky = 0; ky < g.kh; ky++)
                for (let kx = 0; kx < g.kw; kx++) {
                  const iy = oy * g.sh - g.pt + ky * g.dh;
                  const ix = ox * g.sw - g.pl + kx * g.dw;
                  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                  const c = group * cinG + ic;
                  s += x[((n * g.c + c) * g.h + iy) * g.w + ix] * weight[((oc * cinG + ic) * g.kh + ky) * g.kw + kx];
                }
            y[((n * g.cout + oc) * ho + oy) * wo + ox] = s;
          }
    return y;
  };
}

function linearRef(n: number, inF: number, outF: number): Reference {
  return (x, [weight, bias]) => {
    const y = new Float64Array(n * outF);
    for (let i = 0; i < n; i++)
      for (let o = 0; o < outF; o++) {
        let s = bias ? bias[o] : 0;
        for (let k = 0; k < inF; k++) s += x[i * inF + k] * weight[o * inF + k];
        y[i * outF + o] = s;
      }
    return y;
  };
}

const reluRef: Reference = (x) => x.map((v) => (v > 0 ? v : 0));

interface PoolRef {
  n: number; c: number; h: number; w: number; kh: number; kw: number; sh: number; sw: number;
  pt: number; pl: number; pb: number; pr: number; dh: number; dw: number;
}

function poolRef(g: PoolRef, kind: 'max' | 'avg', countIncludePad = true): Reference {
  return (x) => {
    const ho = outSize(g.h, g.kh, g.sh, g.pt, g.pb, g.dh);
    const wo = outSize(g.w, g.kw, g.sw, g.pl, g.pr, g.dw);
    const y = new Float64Array(g.n * g.c * ho * wo);
    for (let p = 0; p < g.n * g.c; p++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let best = -Infinity;
          let sum = 0;
          let inside = 0;
          let padded = 0;
          for (let ky = 0; ky < g.kh; ky++)
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = oy * g.sh - g.pt + ky * g.dh;
              const ix = ox * g.sw - g.pl + kx * g.dw;
              // ONNX count_include_pad: positions inside the padded extent count, beyond it not.
              if (iy >= -g.pt && iy < g.h + g.pb && ix >= -g.pl && ix < g.w + g.pr) padded++;
              if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
              const v = x[(p * g.h + iy) * g.w + ix];
              best = Math.max(best, v);
              sum += v;
              inside++;
            }
          y[(p * ho + oy) * wo + ox] = kind === 'max' ? best : sum / (countIncludePad ? padded : inside);
        }
    return y;
  };
}

function batchNormRef(n: number, c: number, spatial: number, eps: number): Reference {
  return (x, [gamma, beta]) => {
    const y = new Float64Array(x.length);
    const count = n * spatial;
    for (let ch = 0; ch < c; ch++) {
      let mean = 0;
      for (let i = 0; i < n; i++) for (let s = 0; s < spatial; s++) mean += x[(i * c + ch) * spatial + s];
      mean /= count;
      let variance = 0;
      for (let i = 0; i < n; i++) for (let s = 0; s < spatial; s++) variance += (x[(i * c + ch) * spatial + s] - mean) ** 2;
      variance /= count;
      const inv = 1 / Math.sqrt(variance + eps);
      for (let i = 0; i < n; i++)
        for (let s = 0; s < spatial; s++) {
          const k = (i * c + ch) * spatial + s;
          y[k] = (x[k] - mean) * inv * gamma[ch] + beta[ch];
        }
    }
    return y;
  };
}

/** Mean softmax cross-entropy with label smoothing `s`, as a 1-element output. */
function crossEntropyRef(rows: number, cols: number, labels: Int32Array, s: number): Reference {
  return (z) => {
    let total = 0;
    for (let i = 0; i < rows; i++) {
      let max = -Infinity;
      for (let j = 0; j < cols; j++) max = Math.max(max, z[i * cols + j]);
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += Math.exp(z[i * cols + j] - max);
      const lse = max + Math.log(sum);
      for (let j = 0; j < cols; j++) {
        const target = (j === labels[i] ? 1 - s : 0) + s / cols;
        total += target * (lse - z[i * cols + j]);
      }
    }
    return Float64Array.of(total / rows);
  };
}

// ---------- the check ----------

interface Comparison {
  /** Worst |analytic - numeric| / max(|numeric|, floor) over all elements. */
  worst: number;
  where: string;
}

const RTOL = 1e-3;
/**
 * Floor of the denominator: 1% of the largest numeric gradient of the tensor, and at least 0.1% of
 * the largest of the whole case (`caseScale`), since a gradient that is zero in exact arithmetic
 * (a conv bias before batch-norm) is float32 rounding noise analytically.
 */
const FLOOR = 1e-2;
const CASE_FLOOR = 1e-3;

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

function compare(name: string, analytic: ArrayLike<number>, numeric: F64, caseScale = 0): Comparison {
  const floor = Math.max(FLOOR * maxAbs(numeric), CASE_FLOOR * caseScale, 1e-6);
  let worst = 0;
  let where = '';
  for (let i = 0; i < numeric.length; i++) {
    const err = Math.abs(analytic[i] - numeric[i]) / Math.max(Math.abs(numeric[i]), floor);
    // NaN (an unwritten or broken gradient) must count as a failure.
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      where = `${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric[i]}`;
    }
  }
  return { worst, where };
}

/** Central differences of L(v) = sum(G * f(...)) with respect to every element of `v`. */
function numericGradient(v: F64, loss: () => number, h: number): F64 {
  const grad = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + h;
    const plus = loss();
    v[i] = keep - h;
    const minus = loss();
    v[i] = keep;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

function dot(a: F64, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

interface Case {
  layer: Module;
  inputDims: number[];
  reference: Reference;
  /** Input values (default: uniform in [-1, 1]). */
  input?: (rng: Rng, size: number) => Float32Array;
  /** Called after the forward (e.g. to read the dropout mask); returns the reference to use. */
  afterForward?: () => Reference;
  /** Step of the finite differences (default 1e-5). */
  h?: number;
}

interface GradReport {
  comparisons: { name: string; analytic: Float32Array; numeric: F64 }[];
  forwardError: number;
}

/** Runs forward/backward natively and the finite differences on the reference. */
async function gradients(c: Case, seed: number): Promise<GradReport> {
  const rng = new Rng(seed);
  const size = c.inputDims.reduce((a, b) => a * b, 1);
  const x32 = c.input ? c.input(rng, size) : Float32Array.from({ length: size }, () => rng.uniform(-1, 1));
  c.layer.train(true);
  const y = await c.layer.forward(new Tensor('float32', x32, c.inputDims));
  const reference = c.afterForward ? c.afterForward() : c.reference;
  const g32 = Float32Array.from({ length: y.size }, () => rng.uniform(-1, 1));
  const params = c.layer.parameters();
  // NaN-filled gradients show any element the backward does not write.
  for (const p of params) p.grad.fill(NaN);
  const dx = await c.layer.backward(new Tensor('float32', g32, y.dims), true);

  const x = Float64Array.from(x32);
  const p64 = params.map((p) => Float64Array.from(p.value.data));
  const g = Float64Array.from(g32);
  const loss = (): number => dot(reference(x, p64), g);
  const y64 = reference(x, p64);
  let forwardError = 0;
  for (let i = 0; i < y64.length; i++) forwardError = Math.max(forwardError, Math.abs(y.data[i] - y64[i]) / Math.max(1, Math.abs(y64[i])));
  if (y64.length !== y.size) forwardError = Infinity;
  const h = c.h ?? 1e-5;
  const comparisons = [{ name: 'input', analytic: Float32Array.from(dx.data), numeric: numericGradient(x, loss, h) }];
  params.forEach((p, i) => comparisons.push({ name: p.name, analytic: p.grad.slice(), numeric: numericGradient(p64[i], loss, h) }));
  return { comparisons, forwardError };
}

async function expectGradientsMatch(c: Case, seed = 1): Promise<void> {
  const report = await gradients(c, seed);
  expect(report.forwardError).toBeLessThan(1e-4);
  const caseScale = Math.max(...report.comparisons.map((r) => maxAbs(r.numeric)));
  for (const { name, analytic, numeric } of report.comparisons) {
    const { worst, where } = compare(name, analytic, numeric, caseScale);
    expect(worst, where).toBeLessThan(RTOL);
  }
}

// ---------- inputs that keep finite differences away from kinks ----------

/** Values in [-1, 1] at least 0.05 away from 0 (ReLU's kink). */
function awayFromZero(rng: Rng, size: number): Float32Array {
  return Float32Array.from({ length: size }, () => {
    const v = rng.uniform(0.05, 1);
    return rng.next() < 0.5 ? -v : v;
  });
}

/** Distinct values spaced >= 1e-3 apart in random order, so max pooling has no near-ties. */
function distinct(rng: Rng, size: number): Float32Array {
  const values = Float32Array.from({ length: size }, (_, i) => (i - size / 2) * 0.01 + rng.uniform(0, 0.005));
  return rng.shuffle(values);
}

// ---------- cases ----------

function convCase(n: number, c: number, h: number, w: number, cout: number, k: [number, number], o: {
  stride?: [number, number]; pads?: [number, number, number, number]; dilation?: [number, number]; groups?: number; bias?: boolean; same?: boolean;
}): Case {
  const [sh, sw] = o.stride ?? [1, 1];
  const [dh, dw] = o.dilation ?? [1, 1];
  const [pt, pl, pb, pr] = o.pads ?? [0, 0, 0, 0];
  const groups = o.groups ?? 1;
  const layer = new Conv2d(c, cout, k, {
    stride: [sh, sw], dilation: [dh, dw], groups, bias: o.bias ?? true, seed: 3,
    padding: o.same ? 'same' : [pt, pl, pb, pr],
  });
  // Non-zero biases so the bias path is exercised in the forward comparison too.
  if (layer.bias) layer.bias.value.data.forEach((_, i, a) => (a[i] = 0.1 * (i % 3) - 0.1));
  return { layer, inputDims: [n, c, h, w], reference: convRef({ n, c, h, w, cout, kh: k[0], kw: k[1], sh, sw, pt, pl, pb, pr, dh, dw, groups }) };
}

function poolCase(kind: 'max' | 'avg', n: number, c: number, h: number, w: number, k: [number, number], o: {
  stride?: [number, number]; pads?: [number, number, number, number]; dilation?: [number, number]; countIncludePad?: boolean;
}): Case {
  const [sh, sw] = o.stride ?? k;
  const [dh, dw] = o.dilation ?? [1, 1];
  const [pt, pl, pb, pr] = o.pads ?? [0, 0, 0, 0];
  const layer = kind === 'max'
    ? new MaxPool2d(k, { stride: [sh, sw], padding: [pt, pl, pb, pr], dilation: [dh, dw] })
    : new AvgPool2d(k, { stride: [sh, sw], padding: [pt, pl, pb, pr], countIncludePad: o.countIncludePad ?? true });
  return {
    layer,
    inputDims: [n, c, h, w],
    reference: poolRef({ n, c, h, w, kh: k[0], kw: k[1], sh, sw, pt, pl, pb, pr, dh, dw }, kind, o.countIncludePad ?? true),
    input: kind === 'max' ? distinct : undefined,
  };
}

const CASES: Record<string, () => Case> = {
  'Conv2d 3x3 pad 1, odd plane 7x5': () => convCase(2, 3, 7, 5, 4, [3, 3], { pads: [1, 1, 1, 1] }),
  'Conv2d 3x2 stride [2,1], asymmetric pads, dilation [1,2], groups 2': () =>
    convCase(1, 4, 9, 8, 6, [3, 2], { stride: [2, 1], pads: [1, 0, 2, 1], dilation: [1, 2], groups: 2 }),
  "Conv2d depthwise 5 channels, dilation 2, padding 'same'": () =>
    convCase(3, 5, 7, 6, 5, [3, 3], { groups: 5, dilation: [2, 2], pads: [2, 2, 2, 2], same: true }),
  'Conv2d 1x1 without bias, 3x1 plane': () => convCase(2, 7, 3, 1, 3, [1, 1], { bias: false }),
  'Conv2d stride 3 over a prime plane 11x13': () => convCase(1, 2, 11, 13, 3, [2, 3], { stride: [3, 3], pads: [0, 1, 0, 1] }),
  'Linear 13 -> 7, batch 1': () => {
    const layer = new Linear(13, 7, { seed: 2 });
    layer.bias!.value.data.fill(0.25);
    return { layer, inputDims: [1, 13], reference: linearRef(1, 13, 7) };
  },
  'Linear 3 -> 1 without bias, batch 5': () => ({ layer: new Linear(3, 1, { bias: false, seed: 2 }), inputDims: [5, 3], reference: linearRef(5, 3, 1) }),
  'ReLU on [3, 2, 5, 7]': () => ({ layer: new ReLU(), inputDims: [3, 2, 5, 7], reference: reluRef, input: awayFromZero }),
  'MaxPool2d 2x2 over odd 5x7': () => poolCase('max', 2, 3, 5, 7, [2, 2], {}),
  'MaxPool2d 3x3 stride 2 pad 1': () => poolCase('max', 1, 2, 7, 6, [3, 3], { stride: [2, 2], pads: [1, 1, 1, 1] }),
  'MaxPool2d 2x3 dilation 2 stride 1, asymmetric pads': () => poolCase('max', 2, 1, 8, 9, [2, 3], { stride: [1, 1], dilation: [2, 2], pads: [1, 0, 0, 2] }),
  'AvgPool2d 3x3 stride 2 pad 1, countIncludePad': () => poolCase('avg', 2, 3, 7, 5, [3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true }),
  'AvgPool2d 3x3 stride 2 pad 1, padding not counted': () => poolCase('avg', 1, 2, 6, 7, [3, 3], { stride: [2, 2], pads: [1, 1, 1, 1], countIncludePad: false }),
  'AvgPool2d 2x2 over odd 5x3': () => poolCase('avg', 3, 1, 5, 3, [2, 2], {}),
  'Flatten [2, 3, 4, 5]': () => ({ layer: new Flatten(), inputDims: [2, 3, 4, 5], reference: (x) => x.slice() }),
  'BatchNorm2d training mode, [3, 4, 5, 3]': () => {
    const layer = new BatchNorm2d(4);
    layer.weight.value.data.set([1.5, 0.5, -1, 2]);
    layer.bias.value.data.set([0.1, -0.2, 0.3, 0]);
    return { layer, inputDims: [3, 4, 5, 3], reference: batchNormRef(3, 4, 15, 1e-5) };
  },
  'BatchNorm2d training mode, 1x1 planes, batch 5': () => ({ layer: new BatchNorm2d(3, { eps: 1e-3 }), inputDims: [5, 3, 1, 1], reference: batchNormRef(5, 3, 1, 1e-3) }),
  'Dropout p 0.3 with the mask of the forward': () => {
    const layer = new Dropout(0.3, { seed: 5 });
    return {
      layer,
      inputDims: [3, 17],
      reference: () => new Float64Array(0),
      afterForward: () => {
        const mask = Float64Array.from(layer.lastMask!);
        return (x) => x.map((v, i) => v * mask[i]);
      },
    };
  },
  'Sequential Conv-BN-ReLU-MaxPool-Flatten-Linear': () => {
    const conv = convCase(2, 2, 6, 5, 3, [3, 3], { pads: [1, 1, 1, 1] });
    const bn = new BatchNorm2d(3);
    const linear = new Linear(3 * 3 * 2, 4, { seed: 9 });
    const layer = new Sequential(conv.layer, bn, new ReLU(), new MaxPool2d(2), new Flatten(), linear);
    const bnRef = batchNormRef(2, 3, 30, 1e-5);
    const poolR = poolRef({ n: 2, c: 3, h: 6, w: 5, kh: 2, kw: 2, sh: 2, sw: 2, pt: 0, pl: 0, pb: 0, pr: 0, dh: 1, dw: 1 }, 'max');
    const linR = linearRef(2, 18, 4);
    return {
      layer,
      inputDims: [2, 2, 6, 5],
      reference: (x, [cw, cb, gamma, beta, lw, lb]) => linR(poolR(reluRef(bnRef(conv.reference(x, [cw, cb]), [gamma, beta]), []), []), [lw, lb]),
      h: 1e-6,
    };
  },
};

const isas = native.cpuInfo().supportedIsas;
const startIsa = native.cpuInfo().isa;
afterAll(() => native.setIsa(startIsa));

describe.each(isas)('gradients on ISA %s', (isa) => {
  it.each(Object.keys(CASES))('%s', async (name) => {
    native.setIsa(isa);
    await expectGradientsMatch(CASES[name]());
  });

  it.each([0, 0.1])('cross-entropy from logits, label smoothing %s', async (smoothing) => {
    native.setIsa(isa);
    const rng = new Rng(4);
    const [rows, cols] = [5, 7];
    const z32 = Float32Array.from({ length: rows * cols }, () => rng.uniform(-3, 3));
    const labels = Int32Array.from({ length: rows }, () => rng.int(cols));
    const { loss, grad } = await new CrossEntropyLoss({ labelSmoothing: smoothing }).compute(new Tensor('float32', z32, [rows, cols]), labels);
    const z = Float64Array.from(z32);
    const ref = crossEntropyRef(rows, cols, labels, smoothing);
    expect(Math.abs(loss - ref(z, [])[0])).toBeLessThan(1e-5);
    const numeric = numericGradient(z, () => ref(z, [])[0], 1e-5);
    const { worst, where } = compare('logits', grad!.data, numeric);
    expect(worst, where).toBeLessThan(RTOL);
  });
});

describe('the gradient check itself', () => {
  it('fails when one element of an analytic gradient is perturbed by 2% of the largest', async () => {
    const report = await gradients(CASES['Conv2d 3x3 pad 1, odd plane 7x5'](), 1);
    for (const { name, analytic, numeric } of report.comparisons) {
      expect(compare(name, analytic, numeric).worst).toBeLessThan(RTOL);
      const scale = maxAbs(numeric);
      const broken = analytic.slice();
      broken[Math.floor(broken.length / 2)] += 0.02 * scale;
      expect(compare(name, broken, numeric).worst).toBeGreaterThan(RTOL);
    }
  });

  it('fails when the reference differs (dilation 2 where the layer has 1)', async () => {
    const c = CASES['Conv2d 3x3 pad 1, odd plane 7x5']();
    const wrong = convRef({ n: 2, c: 3, h: 7, w: 5, cout: 4, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 2, dw: 1, groups: 1 });
    const report = await gradients({ ...c, reference: wrong }, 1);
    expect(report.forwardError).toBeGreaterThan(1e-4);
    const worst = Math.max(...report.comparisons.map((r) => compare(r.name, r.analytic, r.numeric).worst));
    expect(worst).toBeGreaterThan(RTOL);
  });

  it('treats NaN in an analytic gradient as a failure', () => {
    expect(compare('x', [1, NaN], Float64Array.of(1, 1)).worst).toBe(Infinity);
  });
});
