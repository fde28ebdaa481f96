/**
 * bench/models-profile.ts: how a profile's steps are grouped into kinds (the "why" of issue 15's
 * misses), checked on the kernel lines real plans print and on a real int8 session's profile.
 */
import { describe, expect, it } from 'vitest';

import { kindTotals, stepKind } from '../../bench/models-profile.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';
import { uniformImages } from '../support/tensors.js';

describe('stepKind', () => {
  it('names a convolution by kernel, stride and grouping, other ops by name', () => {
    const kind = (op: string, kernel: string): string => stepKind({ op, kernel });
    expect(kind('Conv', 'Conv a/Conv: 1x1 s1x1 16->96 clip(0,6)')).toBe('Conv 1x1');
    expect(kind('Conv', 'Conv b: 3x3 s2x2 576->576 g576 clip(0,6) (depthwise channel blocks)')).toBe('Conv 3x3/2 depthwise');
    expect(kind('Conv', 'Conv c: 3x3 s2x2 48->48 g6 relu')).toBe('Conv 3x3/2 grouped');
    expect(kind('Conv', 'Conv d: 7x7 s2x1 3->64')).toBe('Conv 7x7/2x1');
    expect(kind('QLinearConv', 'QLinearConv e: u8 NHWC 5x5 s1x1 120->120 g120 relu -> u8')).toBe('QLinearConv 5x5 depthwise');
    expect(kind('QLinearConv', 'QLinearConv f: u8 NHWC 3x3 s1x1 32->64 relu -> u8 + max pool 2x2 s2x2 (no im2col)')).toBe('QLinearConv 3x3');
    expect(kind('Gemm', 'Gemm g: 4096->128 relu')).toBe('Gemm');
    expect(kind('MaxPool', 'MaxPool h: 3x3 s2x2')).toBe('MaxPool');
  });

  it('sums a real int8 profile by kind, largest first, keeping every step\'s time and work', async () => {
    const rng = new Rng(3);
    const shape = [1, 28, 28];
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, padding: 1, seed: 2 }).eval();
    const { graph } = await quantize(net, uniformImages(rng, 8, shape), { method: 'minmax', batchSize: 8, reportImages: 0 });
    const session = await InferenceSession.create(graph, { enableProfiling: true, intraOpNumThreads: 1 });
    for (let i = 0; i < 3; i++) await session.run({ input: uniformImages(rng, 2, shape) });
    const p = session.profile();
    session.release();
    const kinds = kindTotals(p);
    expect(kinds.map((k) => k.kind).sort()).toEqual([...new Set(p.steps.map((s) => stepKind(s)))].sort());
    expect(kinds.find((k) => k.kind === 'QLinearConv 3x3')).toMatchObject({ int8: true });
    expect(kinds.find((k) => k.kind === 'QuantizeLinear')).toMatchObject({ int8: false });
    for (let i = 1; i < kinds.length; i++) expect(kinds[i - 1]!.ms).toBeGreaterThanOrEqual(kinds[i]!.ms);
    expect(kinds.reduce((a, k) => a + k.ms, 0)).toBeCloseTo(p.totalMs, 9);
    expect(kinds.reduce((a, k) => a + k.ops, 0)).toBe(p.steps.reduce((a, s) => a + 2 * s.macsPerImage * p.images, 0));
  });
});
