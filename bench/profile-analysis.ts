/**
 * What a profile says about a model's speed (issue 15: "name every model that misses, by how much,
 * and why, from the profile"), shared by sections `models` and `profile` of `npm run bench`:
 *
 * - step kinds: a profile's steps grouped by op and convolution shape, with their time and work;
 * - the work of one image (multiply-adds of float and int8 steps) and the time it takes at this
 *   CPU's measured single-core peak, the "speed of light" of a run;
 * - a missed ratio target explained by it: the fraction of that peak each runtime reached in the
 *   same cell, the fraction the target asks of Kiln, and the kinds of step that lose most time
 *   against the peak.
 *
 * Work counts the direct convolution's multiply-adds (as InferenceSession.profile does), so a
 * Winograd convolution, which does fewer, can pass 100% of the peak; nothing else can.
 */
import type { Graph } from '../src/graph/ir.js';
import type { Sequential } from '../src/nn/layers/sequential.js';
import { InferenceSession, type ProfileStep, type SessionProfile } from '../src/runtime/session.js';
import type { CorePeaks } from '../src/system.js';
import { measure } from '../src/util/timing.js';
import type { Model } from './real-models-speed.js';

/**
 * The kind of a step, from its op and its kernel line: "Conv 3x3/2 depthwise", "QLinearConv 1x1",
 * "Gemm", ... (kernel lines: `info().steps`, e.g. "Conv name: 3x3 s2x2 576->576 g576 clip(0,6)").
 */
export function stepKind(step: Pick<ProfileStep, 'op' | 'kernel'>): string {
  const conv = /: (?:u8 NHWC )?(\d+)x(\d+) s(\d+)x(\d+) (\d+)->(\d+)(?: g(\d+))?/.exec(step.kernel);
  if (!conv || !/Conv$/.test(step.op)) return step.op;
  const [, kh, kw, sh, sw, cin, , groups] = conv;
  const stride = sh === '1' && sw === '1' ? '' : sh === sw ? `/${sh}` : `/${sh}x${sw}`;
  const g = Number(groups ?? 1);
  const grouping = g <= 1 ? '' : g === Number(cin) ? ' depthwise' : ' grouped';
  return `${step.op} ${kh}x${kw}${stride}${grouping}`;
}

export interface KindTotal {
  kind: string;
  /** Time of the kind's steps over the profiled runs. */
  ms: number;
  /** Operations (2 per multiply-add) over the profiled images. */
  ops: number;
  int8: boolean;
}

/** The profile's steps summed by kind, largest first. */
export function kindTotals(profile: SessionProfile): KindTotal[] {
  const kinds = new Map<string, KindTotal>();
  for (const s of profile.steps) {
    const kind = stepKind(s);
    const k = kinds.get(kind) ?? { kind, ms: 0, ops: 0, int8: s.int8 };
    k.ms += s.ms;
    k.ops += 2 * s.macsPerImage * profile.images;
    kinds.set(kind, k);
  }
  return [...kinds.values()].sort((a, b) => b.ms - a.ms);
}

/** A kind's rate over the peak of its own kind (what InferenceSession.profile does per step). */
export function kindFraction(k: KindTotal, peaks: CorePeaks): number | undefined {
  return k.ms > 0 ? k.ops / (k.ms * 1e6) / (k.int8 ? peaks.int8Gops : peaks.f32Gflops) : undefined;
}

/** Operations (2 per multiply-add) of one image, on float steps and on int8 ones. */
export interface ImageWork {
  f32Ops: number;
  int8Ops: number;
}

/** One image's work in a profile (its steps' multiply-adds, which do not depend on timing). */
export function imageWork(profile: SessionProfile): ImageWork {
  const work: ImageWork = { f32Ops: 0, int8Ops: 0 };
  for (const s of profile.steps) {
    if (s.int8) work.int8Ops += 2 * s.macsPerImage;
    else work.f32Ops += 2 * s.macsPerImage;
  }
  return work;
}

/** Milliseconds a run of `batch` images of `work` takes at the measured single-core peaks. */
export function peakMs(work: ImageWork, peaks: CorePeaks, batch: number): number {
  return (batch * (work.f32Ops / peaks.f32Gflops + work.int8Ops / peaks.int8Gops)) / 1e6;
}

/** The kinds that lose most time against the peak (time minus the time at the peak), largest first. */
export function largestLosses(profile: SessionProfile, peaks: CorePeaks, count: number): { kind: string; share: number; fraction: number | undefined }[] {
  const total = profile.totalMs;
  return kindTotals(profile)
    .map((k) => {
      const fraction = kindFraction(k, peaks);
      return { kind: k.kind, share: total > 0 ? k.ms / total : 0, fraction, lost: k.ms * (1 - Math.min(1, fraction ?? 0)) };
    })
    .sort((a, b) => b.lost - a.lost)
    .slice(0, count)
    .map(({ kind, share, fraction }) => ({ kind, share, fraction }));
}

const pct = (x: number): string => `${Math.round(100 * x)}%`;

/**
 * Why a ratio target was missed, from the cell's times and the work at the peak: "ORT int8 at 66%
 * of the peak, Kiln int8 at 71%; 1.5x needs 99%". `kilnPeakMs` is the time of Kiln's run at the
 * peak, `baselinePeakMs` that of the run the target divides (the same work when both runtimes run
 * one path; Kiln fp32's float work when int8 is asked to be 2x fp32).
 */
export function ceilingText(options: {
  target: number;
  kilnMs: number;
  kilnPeakMs: number;
  baselineMs: number;
  baselinePeakMs: number;
  kiln: string;
  baseline: string;
  /** Kiln's steps alone per run (the profile's), where known: the rest of a run is the session around them. */
  kilnStepsMs?: number;
}): string {
  const { target, kilnMs, kilnPeakMs, baselineMs, baselinePeakMs, kiln, baseline, kilnStepsMs } = options;
  const needed = (target * kilnPeakMs) / baselineMs;
  const reach = needed > 1 ? ' (more than the peak: out of reach at the direct convolution\'s multiply-adds)' : '';
  const steps = kilnStepsMs !== undefined && kilnStepsMs > 0 ? ` (its steps alone ${pct(kilnPeakMs / kilnStepsMs)})` : '';
  return `${baseline} at ${pct(baselinePeakMs / baselineMs)} of the peak, ${kiln} at ${pct(kilnPeakMs / kilnMs)}${steps}; ${target}x needs ${pct(needed)}${reach}`;
}

/** "most time below the peak: QLinearConv 1x1 (43% of the time, 61% of the peak), ..." */
export function lossText(profile: SessionProfile, peaks: CorePeaks, count = 2): string {
  const losses = largestLosses(profile, peaks, count);
  if (losses.length === 0) return '';
  const kinds = losses.map((l) => `${l.kind} (${pct(l.share)} of the time${l.fraction === undefined || l.fraction === 0 ? '' : `, ${pct(l.fraction)} of the peak`})`);
  return `most time below the peak: ${kinds.join(', ')}`;
}

/** How {@link modelProfile} runs: the batch, and `measure`'s least time and runs (its defaults: 10 runs after 3 warm-up). */
export interface ProfileRuns {
  minMs: number;
  batch?: number;
  warmup?: number;
  minRuns?: number;
}

/** A 1-thread profile of `source` over at least `runs.minMs` of runs (one run before them untimed). */
export async function modelProfile(source: Sequential | Graph, model: Model, runs: ProfileRuns, peaks: CorePeaks): Promise<SessionProfile> {
  const { minMs, batch = 1, warmup, minRuns } = runs;
  const session = await InferenceSession.create(source, {
    intraOpNumThreads: 1,
    enableProfiling: true,
    ...(model.kind === 'seedcnn' ? { inputShape: model.shape } : {}),
  });
  try {
    const x = model.input(batch);
    const name = session.inputNames[0]!;
    await session.run({ [name]: x });
    session.profile({ reset: true });
    await measure(() => session.run({ [name]: x }), { minMs, ...(warmup === undefined ? {} : { warmup }), ...(minRuns === undefined ? {} : { minRuns }) });
    return session.profile({ peakGflops: peaks.f32Gflops, int8PeakGops: peaks.int8Gops });
  } finally {
    session.release();
  }
}
