/**
 * `kiln bench model`: latency and throughput of Kiln on one file, per batch size and thread count;
 * with --vs-ort, onnxruntime-node on the same inputs in interleaved blocks, and the speed-up.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { benchmarkAgainstOrt, benchmarkInput } from '../onnx/index.js';
import type { OrtBenchmarkRow } from '../onnx/benchmark.js';
import { InferenceSession, type SessionProfile } from '../runtime/session.js';
import { castTensor } from '../runtime/edge-types.js';
import { measureCorePeaks } from '../system.js';
import { measure, type Timing } from '../util/timing.js';
import { ortModel, readRunnableSource, runtimeModel, type ModelSource } from './model-source.js';
import { Output } from './output.js';
import { capThreads } from './threads.js';

export interface BenchCommandOptions {
  vsOrt?: boolean;
  /** Time every plan step and print where each cell's time went. */
  profile?: boolean;
  /** Steps listed per cell with --profile. */
  top?: number;
  batches: number[];
  threadCounts: number[];
  minMs: number;
  json?: boolean;
}

/** One cell of Kiln alone. */
export interface KilnBenchRow {
  threads: number;
  batch: number;
  kiln: Timing;
  kilnImagesPerSecond: number;
  /** With --profile: the cell's steps, slowest first. */
  profile?: SessionProfile;
}

async function sessionFor(source: ModelSource, threads: number, enableProfiling: boolean): Promise<InferenceSession> {
  if (source.kind === 'kiln') return InferenceSession.create(source.module, { inputShape: source.inputShape, intraOpNumThreads: threads, enableProfiling });
  return InferenceSession.create(runtimeModel(source), { intraOpNumThreads: threads, enableProfiling });
}

/** Where a cell's time went: the slowest steps, their kernels and their fraction of the peak. */
function profileLines(r: KilnBenchRow, top: number): string[] {
  const p = r.profile!;
  const lines = [`threads ${r.threads}, batch ${r.batch}: ${p.runs} runs, ${(p.totalMs / p.runs).toFixed(3)} ms of steps per run`];
  lines.push(`  ${'share'.padStart(6)} ${'ms/run'.padStart(8)} ${'GOP/s'.padStart(8)} ${'of peak'.padStart(8)}  step`);
  for (const s of p.steps.slice(0, top)) {
    const peak = s.fractionOfPeak === undefined || s.macsPerImage === 0 ? '' : `${(100 * s.fractionOfPeak).toFixed(0)}%`;
    lines.push(`  ${(100 * s.share).toFixed(1).padStart(5)}% ${(s.ms / p.runs).toFixed(3).padStart(8)} ${s.gflops.toFixed(1).padStart(8)} ${peak.padStart(8)}  ${s.kernel}`);
  }
  return lines;
}

function imageShape(session: InferenceSession, modelPath: string): number[] {
  return session.inputShapes[0].slice(1).map((d) => {
    if (typeof d !== 'number') throw new TypeError(`Expected a fixed image shape for the input of ${modelPath} but it has the symbolic size '${d}'`);
    return d;
  });
}

export async function benchCommand(modelPath: string, opts: BenchCommandOptions): Promise<void> {
  if (opts.profile && opts.vsOrt) throw new TypeError('Expected --profile or --vs-ort but received both: --profile times Kiln alone, step by step');
  const out = new Output(opts);
  const threadCounts = [...new Set(opts.threadCounts.map((t) => capThreads('--thread-counts', t)))];
  const source = await readRunnableSource(modelPath);
  if (source.kind === 'onnx-parameters') {
    // Their values shape the plan (a Clip's bounds, a Resize's scales): no value bench could pick stands for yours.
    throw new KilnError(
      ErrorCode.UNSUPPORTED_OP,
      `Expected a model whose only inputs are images but ${modelPath} also feeds ${source.parameters.map((p) => `'${p}'`).join(', ')} as graph inputs where Kiln plans constants: ` +
        'kiln bench cannot choose their values; time it with InferenceSession.create and run() with your values (each set of values is planned once)',
    );
  }
  const cells = threadCounts.length * opts.batches.length;
  const bar = out.progress(cells, 'bench |{bar}| {value}/{total} cells (threads {threads}, batch {batch})', { threads: threadCounts[0], batch: opts.batches[0] });
  try {
    if (opts.vsOrt) {
      // An int8 graph goes to both runtimes as its QDQ export (Kiln imports it back into int8 ops).
      const model = ortModel(source);
      const rows: OrtBenchmarkRow[] = [];
      for (const threads of threadCounts) {
        for (const batch of opts.batches) {
          bar.update(rows.length, { threads, batch });
          rows.push(...(await benchmarkAgainstOrt(model, { batches: [batch], threads: [threads], minMs: opts.minMs })));
        }
      }
      bar.stop();
      out.result({ model: modelPath, rows }, () =>
        [
          `${'threads'.padStart(7)} ${'batch'.padStart(6)} ${'Kiln ms'.padStart(10)} ${'ORT ms'.padStart(10)} ${'Kiln img/s'.padStart(11)} ${'ORT img/s'.padStart(11)} ${'speed-up'.padStart(9)}`,
          ...rows.map(
            (r) =>
              `${String(r.threads).padStart(7)} ${String(r.batch).padStart(6)} ${r.kiln.medianMs.toFixed(3).padStart(10)} ${r.ort.medianMs.toFixed(3).padStart(10)} ` +
              `${Math.round(r.kilnImagesPerSecond).toString().padStart(11)} ${Math.round(r.ortImagesPerSecond).toString().padStart(11)} ${r.speedup.toFixed(2).padStart(8)}x`,
          ),
          'speed-up = ORT median time / Kiln median time (same inputs, interleaved blocks of back-to-back runs, matched threads)',
        ].join('\n'),
      );
      return;
    }

    const rows: KilnBenchRow[] = [];
    // The single-core fp32 and int8 peaks, measured once, scale each cell's fractions (x its threads).
    const peaks = opts.profile ? measureCorePeaks() : undefined;
    for (const threads of threadCounts) {
      const session = await sessionFor(source, threads, opts.profile === true);
      try {
        const shape = imageShape(session, modelPath);
        const name = session.inputNames[0];
        for (const batch of opts.batches) {
          bar.update(rows.length, { threads, batch });
          const x = castTensor(benchmarkInput(batch, shape, 7 + batch), session.inputTypes[0]!);
          if (opts.profile) {
            // A run to plan this batch size, then a clean slate: earlier cells are not this cell's.
            await session.run({ [name]: x });
            session.profile({ reset: true });
          }
          const kiln = await measure(() => session.run({ [name]: x }), { minMs: opts.minMs });
          const profile = peaks ? session.profile({ reset: true, peakGflops: peaks.f32Gflops * threads, int8PeakGops: peaks.int8Gops * threads }) : undefined;
          rows.push({ threads, batch, kiln, kilnImagesPerSecond: (batch * 1000) / kiln.medianMs, ...(profile ? { profile } : {}) });
        }
      } finally {
        session.release();
      }
    }
    bar.stop();
    out.result({ model: modelPath, rows }, () =>
      [
        `${'threads'.padStart(7)} ${'batch'.padStart(6)} ${'Kiln ms'.padStart(10)} ${'p99 ms'.padStart(10)} ${'Kiln img/s'.padStart(11)}`,
        ...rows.map(
          (r) =>
            `${String(r.threads).padStart(7)} ${String(r.batch).padStart(6)} ${r.kiln.medianMs.toFixed(3).padStart(10)} ${r.kiln.p99Ms.toFixed(3).padStart(10)} ` +
            `${Math.round(r.kilnImagesPerSecond).toString().padStart(11)}`,
        ),
        'median and p99 milliseconds per run; add --vs-ort to time onnxruntime-node on the same inputs',
        ...(opts.profile
          ? [
              '',
              `profile (--profile; peak = measured single-core peak x threads: fp32 FMA ${peaks!.f32Gflops.toFixed(1)} GFLOP/s, int8 ${peaks!.int8Gops.toFixed(1)} GOP/s for the int8 steps; ` +
                `steps' own time, excluding the session around them; Winograd steps count the direct convolution's multiply-adds):`,
              ...rows.flatMap((r) => profileLines(r, opts.top ?? 10)),
            ]
          : []),
      ].join('\n'),
    );
  } finally {
    bar.stop();
  }
}
