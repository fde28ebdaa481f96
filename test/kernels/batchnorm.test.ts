import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectClose, expectIdentical, expectInvalidArg, forEachIsa, randomArray, sentinel } from './kernel-helpers.js';

interface Shape {
  batch: number;
  channels: number;
  spatial: number;
}

const SHAPES: Shape[] = [
  { batch: 2, channels: 1, spatial: 1 },
  { batch: 1, channels: 3, spatial: 7 },
  { batch: 5, channels: 4, spatial: 9 },
  { batch: 16, channels: 32, spatial: 169 },
  { batch: 3, channels: 13, spatial: 31 },
];

/** Per-channel mean and biased variance in float64. */
function stats(s: Shape, x: Float32Array) {
  const n = s.batch * s.spatial;
  const mean = new Float64Array(s.channels);
  const variance = new Float64Array(s.channels);
  for (let c = 0; c < s.channels; c++) {
    let sum = 0;
    for (let b = 0; b < s.batch; b++) for (let j = 0; j < s.spatial; j++) sum += x[(b * s.channels + c) * s.spatial + j];
    mean[c] = sum / n;
    let sq = 0;
    for (let b = 0; b < s.batch; b++) for (let j = 0; j < s.spatial; j++) sq += (x[(b * s.channels + c) * s.spatial + j] - mean[c]) ** 2;
    variance[c] = sq / n;
  }
  return { mean, variance };
}

function makeArgs(s: Shape, seed: number) {
  const rng = new Rng(seed);
  const total = s.batch * s.channels * s.spatial;
  // An offset mean per channel, so a one-pass variance would lose digits.
  const input = randomArray(rng, total, -1, 1).map((v, i) => v * 2 + 100 * ((Math.floor(i / s.spatial) % s.channels) % 7));
  return {
    input,
    gamma: randomArray(rng, s.channels, 0.5, 1.5),
    beta: randomArray(rng, s.channels),
    runningMean: randomArray(rng, s.channels),
    runningVar: randomArray(rng, s.channels, 0.5, 2),
    gradOutput: randomArray(rng, total),
  };
}

const MOMENTUM = 0.1;
const EPS = 1e-5;

describe('batchNorm2dForward', () => {
  it.each(SHAPES)('training %o: output, running and saved statistics on every ISA', (s) => {
    const a = makeArgs(s, s.batch * 100 + s.channels);
    const { mean, variance } = stats(s, a.input);
    const n = s.batch * s.spatial;
    const total = a.input.length;
    const ref = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const c = Math.floor(i / s.spatial) % s.channels;
      ref[i] = ((a.input[i] - mean[c]) / Math.sqrt(variance[c] + EPS)) * a.gamma[c] + a.beta[c];
    }
    const refRunMean = Array.from(mean, (m, c) => (1 - MOMENTUM) * a.runningMean[c] + MOMENTUM * m);
    const refRunVar = Array.from(variance, (v, c) => (1 - MOMENTUM) * a.runningVar[c] + MOMENTUM * ((v * n) / (n - 1)));
    forEachIsa((isa) => {
      const output = sentinel(total);
      const runningMean = a.runningMean.slice();
      const runningVar = a.runningVar.slice();
      const saveMean = sentinel(s.channels);
      const saveInvStd = sentinel(s.channels);
      native.batchNorm2dForward(
        { ...s, input: a.input, output, gamma: a.gamma, beta: a.beta, runningMean, runningVar, saveMean, saveInvStd, training: true, momentum: MOMENTUM, eps: EPS },
        false,
      );
      expectClose(output, ref, `output [${isa}]`, { rel: 2e-5, abs: 2e-5 });
      expectClose(saveMean, mean, `saveMean [${isa}]`, { rel: 1e-6 });
      expectClose(saveInvStd, Array.from(variance, (v) => 1 / Math.sqrt(v + EPS)), `saveInvStd [${isa}]`, { rel: 1e-6 });
      expectClose(runningMean, refRunMean, `runningMean [${isa}]`, { rel: 1e-6 });
      expectClose(runningVar, refRunVar, `runningVar [${isa}]`, { rel: 1e-6 });
    });
  });

  it.each(SHAPES)('inference %o normalises with the running statistics and leaves them alone', (s) => {
    const a = makeArgs(s, s.spatial);
    const total = a.input.length;
    const ref = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const c = Math.floor(i / s.spatial) % s.channels;
      ref[i] = ((a.input[i] - a.runningMean[c]) / Math.sqrt(a.runningVar[c] + EPS)) * a.gamma[c] + a.beta[c];
    }
    forEachIsa((isa) => {
      const output = sentinel(total);
      const runningMean = a.runningMean.slice();
      const runningVar = a.runningVar.slice();
      native.batchNorm2dForward(
        {
          ...s, input: a.input, output, gamma: a.gamma, beta: a.beta, runningMean, runningVar,
          saveMean: sentinel(s.channels), saveInvStd: sentinel(s.channels), training: false, momentum: MOMENTUM, eps: EPS,
        },
        false,
      );
      expectClose(output, ref, `output [${isa}]`, { rel: 1e-5, abs: 1e-4 });
      expectIdentical(runningMean, a.runningMean, 'runningMean unchanged');
      expectIdentical(runningVar, a.runningVar, 'runningVar unchanged');
    });
  });

  it('refuses training with one value per channel, bad eps/momentum and wrong lengths', () => {
    const s = { batch: 1, channels: 2, spatial: 1 };
    const c = () => new Float32Array(2);
    const base = { ...s, input: c(), output: c(), gamma: c(), beta: c(), runningMean: c(), runningVar: c(), saveMean: c(), saveInvStd: c(), training: true, momentum: 0.1, eps: 1e-5 };
    expectInvalidArg(() => native.batchNorm2dForward(base, false), 'RangeError', /batch/);
    native.batchNorm2dForward({ ...base, training: false }, false);
    expectInvalidArg(() => native.batchNorm2dForward({ ...base, training: false, eps: 0 }, false), 'RangeError', /eps/);
    expectInvalidArg(() => native.batchNorm2dForward({ ...base, training: false, momentum: 2 }, false), 'RangeError', /momentum/);
    expectInvalidArg(() => native.batchNorm2dForward({ ...base, training: false, gamma: new Float32Array(3) }, false), 'RangeError', /gamma/);
    expectInvalidArg(() => native.batchNorm2dForward({ ...base, training: 'yes' as never }, false), 'TypeError', /training/);
    expectInvalidArg(() => native.batchNorm2dForward({ ...base, training: false, saveMean: base.runningMean }, false), 'RangeError', /overlap/);
  });
});

describe('batchNorm2dBackward', () => {
  it.each(SHAPES)('%o matches the analytic float64 gradient on every ISA', (s) => {
    const a = makeArgs(s, s.channels * 7 + 1);
    const { mean, variance } = stats(s, a.input);
    const n = s.batch * s.spatial;
    const total = a.input.length;
    const invStd = Array.from(variance, (v) => 1 / Math.sqrt(v + EPS));
    const saveMean = Float32Array.from(mean);
    const saveInvStd = Float32Array.from(invStd);
    // With the saved float32 statistics, as the kernel sees them.
    const gb = new Float64Array(s.channels);
    const gg = new Float64Array(s.channels);
    const xhat = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const c = Math.floor(i / s.spatial) % s.channels;
      xhat[i] = (a.input[i] - saveMean[c]) * saveInvStd[c];
      gb[c] += a.gradOutput[i];
      gg[c] += a.gradOutput[i] * xhat[i];
    }
    const gi = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      const c = Math.floor(i / s.spatial) % s.channels;
      gi[i] = ((a.gamma[c] * saveInvStd[c]) / n) * (n * a.gradOutput[i] - gb[c] - xhat[i] * gg[c]);
    }
    forEachIsa((isa) => {
      const gradInput = sentinel(total);
      const gradGamma = sentinel(s.channels);
      const gradBeta = sentinel(s.channels);
      native.batchNorm2dBackward(
        { ...s, input: a.input, gradOutput: a.gradOutput, gamma: a.gamma, saveMean, saveInvStd, gradInput, gradGamma, gradBeta },
        false,
      );
      expectClose(gradBeta, gb, `gradBeta [${isa}]`, { rel: 1e-6, abs: 1e-6 });
      expectClose(gradGamma, gg, `gradGamma [${isa}]`, { rel: 1e-5, abs: 1e-5 });
      expectClose(gradInput, gi, `gradInput [${isa}]`, { rel: 1e-5, abs: 1e-5 });
    });
  });

  it('may write gradInput over gradOutput, and runs on a worker', async () => {
    const s = SHAPES[3];
    const a = makeArgs(s, 5);
    const saveMean = sentinel(s.channels);
    const saveInvStd = sentinel(s.channels);
    native.batchNorm2dForward(
      {
        ...s, input: a.input, output: sentinel(a.input.length), gamma: a.gamma, beta: a.beta, runningMean: a.runningMean,
        runningVar: a.runningVar, saveMean, saveInvStd, training: true, momentum: MOMENTUM, eps: EPS,
      },
      false,
    );
    const common = { ...s, input: a.input, gamma: a.gamma, saveMean, saveInvStd };
    const expected = sentinel(a.input.length);
    native.batchNorm2dBackward({ ...common, gradOutput: a.gradOutput, gradInput: expected, gradGamma: sentinel(s.channels), gradBeta: sentinel(s.channels) }, false);
    const g = a.gradOutput.slice();
    await native.batchNorm2dBackward({ ...common, gradOutput: g, gradInput: g, gradGamma: sentinel(s.channels), gradBeta: sentinel(s.channels) }, true);
    expectIdentical(g, expected, 'in place, async');
    expectInvalidArg(
      () => native.batchNorm2dBackward({ ...common, gradOutput: a.gradOutput, gradInput: a.input, gradGamma: sentinel(s.channels), gradBeta: sentinel(s.channels) }, false),
      'RangeError',
      /overlap/,
    );
  });
});
