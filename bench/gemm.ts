/** fp32 GEMM throughput as a fraction of the CPU's FMA peak measured in the same run. */
import { native } from '../src/binding.js';
import { setNumThreads } from '../src/system.js';
import type { Report } from './report.js';
import { measure } from '../src/util/timing.js';

/** Single-core fp32 FMA peak of the active ISA in GFLOP/s (best of a few tries). */
export function measureF32Peak(): number {
  let best = 0;
  for (let i = 0; i < 5; i++) best = Math.max(best, native.measurePeak({ kind: 'f32', milliseconds: 100 }));
  return best;
}

export async function benchGemm(report: Report, peakGflops: number, cores: number): Promise<void> {
  const rows: (string | number)[][] = [];
  for (const threads of [1, Math.min(2, cores)].filter((t, i, a) => a.indexOf(t) === i)) {
    setNumThreads(threads);
    for (const n of [64, 128, 256, 512, 1024]) {
      const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 13) / 13 - 0.5);
      const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 17) / 17 - 0.5);
      const c = new Float32Array(n * n);
      const args = { transA: false, transB: false, m: n, n, k: n, alpha: 1, a, lda: n, b, ldb: n, beta: 0, c, ldc: n };
      const t = await measure(() => native.sgemm(args, false), { minMs: n >= 512 ? 1500 : 500, warmup: 2 });
      const gflops = (2 * n * n * n) / (t.medianMs * 1e6);
      rows.push([threads, `${n}x${n}x${n}`, gflops, gflops / (peakGflops * threads)]);
    }
  }
  setNumThreads(0);
  report.add({
    title: 'fp32 GEMM (C = A*B, row-major)',
    baseline: `measured single-core FMA peak ${peakGflops.toFixed(1)} GFLOP/s x threads`,
    columns: ['threads', 'size', 'GFLOP/s', 'fraction of peak'],
    rows,
  });
}
