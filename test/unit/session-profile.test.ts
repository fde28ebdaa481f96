/**
 * Per-step profiling (SessionOptions.enableProfiling / KILN_PROFILE=1, InferenceSession.profile):
 * what it counts, that it follows concurrent and inline runs, resets, and refuses what it cannot do.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { seedCNN } from '../../src/nn/models.js';
import { DataType } from '../../src/onnx/proto.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { uniformImages } from '../support/tensors.js';
import { model, node, valueInfo } from './onnx-model-builder.js';

const MNIST = [1, 28, 28];
const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 }).eval();
const rng = new Rng(7);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('InferenceSession.profile', () => {
  afterEach(() => {
    delete process.env.KILN_PROFILE;
  });

  it('counts every run and image, one entry per plan step, slowest first, with the kernel lines and rates', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST, enableProfiling: true, intraOpNumThreads: 1 });
    expect(codeOf(() => session.profile())).toBe(ErrorCode.INVALID_STATE); // nothing has run
    await session.run({ input: uniformImages(rng, 2, MNIST) });
    await Promise.all([session.run({ input: uniformImages(rng, 3, MNIST) }), session.run({ input: uniformImages(rng, 3, MNIST) })]);
    session.runSync({ input: uniformImages(rng, 2, MNIST) });
    const p = session.profile({ peakGflops: 100 });
    expect([p.runs, p.images]).toEqual([4, 10]);
    const lines = session.info().steps;
    expect(p.steps).toHaveLength(lines.length);
    expect(p.steps.map((s) => s.index).sort((a, b) => a - b)).toEqual(lines.map((_, i) => i));
    for (const s of p.steps) {
      expect(s.kernel).toBe(lines[s.index]);
      expect(s.ms).toBeGreaterThanOrEqual(0);
      expect(s.fractionOfPeak).toBeCloseTo(s.gflops / 100, 12);
    }
    for (let i = 1; i < p.steps.length; i++) expect(p.steps[i - 1]!.ms).toBeGreaterThanOrEqual(p.steps[i]!.ms);
    expect(p.steps.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1, 9);
    expect(p.totalMs).toBeCloseTo(p.steps.reduce((a, s) => a + s.ms, 0), 9);
    const convs = p.steps.filter((s) => s.op === 'Conv');
    expect(convs.length).toBeGreaterThanOrEqual(2);
    for (const c of convs) {
      expect(c.macsPerImage).toBeGreaterThan(0);
      expect(c.ms).toBeGreaterThan(0);
      expect(c.gflops).toBeCloseTo((2 * c.macsPerImage * 10) / (c.ms * 1e6), 9);
    }
    expect(convs.reduce((a, c) => a + c.macsPerImage, 0)).toBeLessThanOrEqual(session.info().macsPerImage);
    session.release();
  });

  it('resets on request, and a session without profiling refuses', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST, enableProfiling: true });
    await session.run({ input: uniformImages(rng, 1, MNIST) });
    expect(session.profile({ reset: true }).runs).toBe(1);
    const after = session.profile();
    expect([after.runs, after.images, after.totalMs]).toEqual([0, 0, 0]);
    expect(after.steps.every((s) => s.ms === 0 && s.gflops === 0 && s.fractionOfPeak === undefined)).toBe(true);
    expect(codeOf(() => session.profile({ peakGflops: -1 }))).toBe(ErrorCode.INVALID_ARG);
    expect(codeOf(() => session.profile({ peak: 1 } as never))).toBe(ErrorCode.INVALID_ARG);
    session.release();
    const plain = await InferenceSession.create(net, { inputShape: MNIST });
    await plain.run({ input: uniformImages(rng, 1, MNIST) });
    expect(codeOf(() => plain.profile())).toBe(ErrorCode.INVALID_STATE);
    plain.release();
    await expect(InferenceSession.create(net, { inputShape: MNIST, enableProfiling: 'yes' as never })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG });
  });

  it('compares int8 steps with the int8 peak and float steps with the fp32 peak', async () => {
    const { graph } = await quantize(net, uniformImages(rng, 8, MNIST), { method: 'minmax', batchSize: 8, reportImages: 0 });
    const session = await InferenceSession.create(graph, { enableProfiling: true, intraOpNumThreads: 1 });
    await session.run({ input: uniformImages(rng, 4, MNIST) });
    const p = session.profile({ peakGflops: 100, int8PeakGops: 400 });
    const int8 = p.steps.filter((s) => s.int8);
    expect(int8.map((s) => s.op).sort()).toEqual(['QLinearConv', 'QLinearConv', 'QLinearGemm', 'QLinearGemm']);
    for (const s of int8) expect(s.fractionOfPeak).toBeCloseTo(s.gflops / 400, 12);
    const float = p.steps.filter((s) => !s.int8);
    expect(float.map((s) => s.op)).toContain('QuantizeLinear');
    for (const s of float) expect(s.fractionOfPeak).toBeCloseTo(s.gflops / 100, 12);
    // Only the peak of a step's own kind gives it a fraction.
    const onlyF32 = session.profile({ peakGflops: 100 });
    expect(onlyF32.steps.filter((s) => s.int8).every((s) => s.fractionOfPeak === undefined)).toBe(true);
    expect(onlyF32.steps.filter((s) => !s.int8).every((s) => s.fractionOfPeak !== undefined)).toBe(true);
    expect(codeOf(() => session.profile({ int8PeakGops: Number.NaN }))).toBe(ErrorCode.INVALID_ARG);
    session.release();
    const fp32 = await InferenceSession.create(net, { inputShape: MNIST, enableProfiling: true });
    await fp32.run({ input: uniformImages(rng, 1, MNIST) });
    expect(fp32.profile().steps.some((s) => s.int8)).toBe(false);
    fp32.release();
  });

  it('KILN_PROFILE=1 turns it on for sessions that do not say', async () => {
    process.env.KILN_PROFILE = '1';
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    await session.run({ input: uniformImages(rng, 1, MNIST) });
    expect(session.profile().runs).toBe(1);
    session.release();
    const off = await InferenceSession.create(net, { inputShape: MNIST, enableProfiling: false });
    await off.run({ input: uniformImages(rng, 1, MNIST) });
    expect(codeOf(() => off.profile())).toBe(ErrorCode.INVALID_STATE);
    off.release();
  });

  it('profiles the plan inside sessions that wrap others: constant outputs, parameter inputs', async () => {
    // y = Relu(x) computed, s = Shape(x) a constant (x is static).
    const withConstant = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('x', [2, 4])],
      outputs: [valueInfo('y'), valueInfo('s', [2], DataType.INT64)],
      nodes: [node('Relu', ['x'], ['y'], [], 'relu'), node('Shape', ['x'], ['s'], [], 'shape')],
    }), { enableProfiling: true });
    const x = new Tensor('float32', [1, -2, 3, -4, 5, -6, 7, -8], [2, 4]);
    expect(codeOf(() => withConstant.profile())).toBe(ErrorCode.INVALID_STATE); // nothing has run
    await withConstant.run({ x });
    withConstant.runSync({ x });
    const p = withConstant.profile();
    expect(p.runs).toBe(2);
    expect(p.steps.map((st) => st.kernel)).toEqual(withConstant.info().steps);
    expect(p.steps.map((st) => st.op)).toContain('Relu');
    expect(withConstant.profile({ reset: true }).runs).toBe(2);
    expect(withConstant.profile().runs).toBe(0);
    expect(codeOf(() => withConstant.profile({ peakGflops: -1 }))).toBe(ErrorCode.INVALID_ARG);
    withConstant.release();

    // Every output a constant: no plan step to time.
    const allConstant = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('x', [2, 4])],
      outputs: [valueInfo('s', [2], DataType.INT64)],
      nodes: [node('Shape', ['x'], ['s'], [], 'shape')],
    }), { enableProfiling: true });
    await allConstant.run({ x });
    expect(codeOf(() => allConstant.profile())).toBe(ErrorCode.INVALID_STATE);
    allConstant.release();

    // y = Reshape(Relu(x), shape): one plan per shape value; the profile is the latest one's.
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', [2, 6]), valueInfo('shape', [2], DataType.INT64)],
      outputs: [valueInfo('y')],
      nodes: [node('Relu', ['x'], ['r'], [], 'relu'), node('Reshape', ['r', 'shape'], ['y'], [], 'reshape')],
    });
    const bound = await InferenceSession.create(bytes, { enableProfiling: true });
    const x12 = new Tensor('float32', Float32Array.from({ length: 12 }, (_, i) => i - 6), [2, 6]);
    const shape = (...v: number[]) => new Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]);
    expect(codeOf(() => bound.profile())).toBe(ErrorCode.INVALID_STATE); // nothing has run
    await bound.run({ x: x12, shape: shape(3, 4) });
    await bound.run({ x: x12, shape: shape(3, 4) });
    expect(bound.profile().runs).toBe(2);
    await bound.run({ x: x12, shape: shape(4, 3) });
    const latest = bound.profile();
    expect(latest.runs).toBe(1);
    expect(latest.steps.map((st) => st.kernel)).toEqual(bound.info().steps);
    bound.release();

    // Off unless asked, as for any session; KILN_PROFILE=1 reaches the inner sessions too.
    const off = await InferenceSession.create(bytes);
    await off.run({ x: x12, shape: shape(3, 4) });
    expect(codeOf(() => off.profile())).toBe(ErrorCode.INVALID_STATE);
    off.release();
    process.env.KILN_PROFILE = '1';
    const byEnv = await InferenceSession.create(bytes);
    await byEnv.run({ x: x12, shape: shape(3, 4) });
    expect(byEnv.profile().runs).toBe(1);
    byEnv.release();
  });
});
