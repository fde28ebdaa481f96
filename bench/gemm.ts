/** fp32 GEMM throughput as a fraction of the CPU's FMA peak measured in the same run. */
import { native, testHooks } from '../src/binding.js';
import { bestF32PeakGflops, bestS8PeakGmacs, setNumThreads } from '../src/system.js';
import type { Report } from './report.js';
import { measure } from '../src/util/timing.js';

/** Single-core fp32 FMA peak of the active ISA in GFLOP/s (best of five 100 ms readings). */
export function measureF32Peak(): number {
  return bestF32PeakGflops(5, 100);
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

/**
 * int8 GEMM (u8 x s8 -> requantized u8, B packed once) and the int8 convolution on SeedCNN's conv2
 * shape (13x13x32 -> 11x11x64, 3x3; its plan, weights packed, is built per call), as fractions of
 * the int8 peak measured in the same run. One int8 multiply-add = 2 ops.
 */
export async function benchS8Gemm(report: Report, cores: number): Promise<void> {
  // The peak is re-measured before every row and the best reading kept: on a shared machine one
  // early reading can come out low and put rows above 100%.
  let peak = bestS8PeakGmacs(25);
  const samples: { threads: number; shape: string; gmacs: number }[] = [];
  const kernel = testHooks().s8GemmKernel();
  const threadCounts = [1, Math.min(2, cores)].filter((t, i, a) => a.indexOf(t) === i);
  for (const threads of threadCounts) {
    setNumThreads(threads);
    for (const n of [64, 128, 256, 512, 1024]) {
      const a = Uint8Array.from({ length: n * n }, (_, i) => (i * 7919) % 251);
      const b = Int8Array.from({ length: n * n }, (_, i) => ((i * 104729) % 255) - 127);
      const packed = native.packS8B({ k: n, n, b, ldb: n });
      const c = new Uint8Array(n * n);
      const scale = new Float32Array(n).fill(1 / (64 * n));
      const args = { m: n, n, k: n, a, lda: n, aZeroPoint: 3, b: packed, c, ldc: n, scale, outZeroPoint: 128 };
      peak = Math.max(peak, bestS8PeakGmacs(5));
      const t = await measure(() => native.s8gemmRequantize(args, false), { minMs: n >= 512 ? 1500 : 500, warmup: 2 });
      samples.push({ threads, shape: `${n}x${n}x${n}`, gmacs: (n * n * n) / (t.medianMs * 1e6) });
    }
    for (const batch of [1, 8, 64]) {
      const geom = {
        batch, inChannels: 32, inHeight: 13, inWidth: 13, outChannels: 64, outHeight: 11, outWidth: 11,
        kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0,
        dilationH: 1, dilationW: 1, groups: 1,
      };
      const input = Uint8Array.from({ length: batch * 13 * 13 * 32 }, (_, i) => (i * 7919) % 251);
      const weight = Int8Array.from({ length: 64 * 32 * 9 }, (_, i) => ((i * 104729) % 255) - 127);
      const output = new Uint8Array(batch * 11 * 11 * 64);
      const args = {
        ...geom, input, weight, bias: null, wScale: new Float32Array(64).fill(0.01), xScale: 0.02, xZeroPoint: 5,
        output, yScale: 40, yZeroPoint: 0, yMin: 0, yMax: 255,
      };
      peak = Math.max(peak, bestS8PeakGmacs(5));
      const t = await measure(() => native.s8conv2d(args, false), { minMs: 500, warmup: 3 });
      samples.push({ threads, shape: `conv 13x13x32->11x11x64 3x3, batch ${batch}`, gmacs: (batch * 121 * 64 * 288) / (t.medianMs * 1e6) });
    }
  }
  setNumThreads(0);
  const rows = samples.map((r) => [r.threads, r.shape, 2 * r.gmacs, r.gmacs, r.gmacs / (peak * r.threads)]);
  report.add({
    title: `int8 GEMM and convolution (u8 x s8, requantized to u8; ${kernel} kernels)`,
    baseline: `single-core int8 peak of the ${kernel} kernels, best of readings taken before every row: ${peak.toFixed(1)} GMAC/s x threads`,
    columns: ['threads', 'shape', 'GOP/s', 'GMAC/s', 'fraction of peak'],
    rows,
    notes: ['The convolution rows build their S8Conv2dPlan (weights packed) inside every call, as native.s8conv2d does.'],
  });
}
