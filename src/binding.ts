/**
 * The only file that loads the native addon. Everything else imports `native` from here.
 *
 * Conventions of the native functions (see native/addon/):
 * - arguments come in one object whose field names are used in error messages;
 * - outputs are typed arrays the caller allocated; kernels write them in place;
 * - the last argument `async`: false runs inline and returns undefined, true runs on one of the
 *   addon's own runner threads (native/addon/runner.h) and returns a Promise<void>. Callers pick by
 *   estimated cost (src/runtime/async-policy.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ErrorCode, KilnError } from './errors.js';
import { isMusl, type LoadAttempt, nativeLoadMessage } from './native-load.js';

export type MaybePromise = Promise<void> | undefined;

/**
 * The window fields both 2-D convolution and pooling geometries carry: output extent, kernel,
 * stride, pads (top, left, bottom, right) and dilation. Read once by the addon (read_window).
 */
export interface WindowGeometry {
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  dilationH: number;
  dilationW: number;
}

/** Shared geometry of a 2-D convolution (NCHW input, OIHW weight). */
export interface Conv2dGeometry extends WindowGeometry {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
}

/** Shared geometry of a 2-D pooling window (NCHW). */
export interface Pool2dGeometry extends WindowGeometry {
  batch: number;
  channels: number;
}

export interface NativeCpuInfo {
  vendor: string;
  brand: string;
  isa: string;
  bestIsa: string;
  supportedIsas: string[];
  features: Record<string, boolean>;
  threads: number;
  l2CacheBytes: number;
  isaOverrideError: string;
}

/** Opaque handle to a compiled native plan. */
export interface NativePlan {
  readonly __nativePlan: unique symbol;
}

/** Opaque handle to int8 weights packed once for the int8 GEMM (see packS8B). */
export interface NativePackedS8B {
  readonly __nativePackedS8B: unique symbol;
}

/** Opaque handle to fp32 weights packed sparse for spmmF32 (see packSparseF32). */
export interface NativePackedSparseF32 {
  readonly __nativePackedSparseF32: unique symbol;
}

/**
 * Block pattern of packed sparse weights: 'unstructured' (CSR, one value per non-zero), '1x4'
 * (4 consecutive k of one output; k must be a multiple of 4), '4x1' / '8x1' (one k shared by
 * 4 / 8 consecutive outputs). A block is stored when any of its values is non-zero.
 */
export type SparsePattern = 'unstructured' | '1x4' | '4x1' | '8x1';

/**
 * Operands shared by the int8 GEMM calls (ONNX QGemm semantics): A is uint8 M x K with zero
 * point `aZeroPoint`; B is int8 symmetric weights, K x N row-major (N x K with `transB`) or packed;
 * the exact int32 sum is sum_k (A - aZeroPoint) * B + bias[n].
 */
export interface S8GemmOperands {
  m: number; n: number; k: number;
  a: Uint8Array; lda: number; aZeroPoint: number;
  b: Int8Array | NativePackedS8B; ldb?: number; transB?: boolean;
  bias?: Int32Array | null;
}

export interface NativeAddon {
  // system.cc
  cpuInfo(): NativeCpuInfo;
  setIsa(isa: string): void;
  setNumThreads(threads: number): void;
  /** glibc's malloc_trim(0): free heap pages back to the OS; false where nothing was given back or the C library has no such call. */
  releaseFreeHeap(): boolean;

  // gemm.cc: C = alpha * op(A) * op(B) + beta * C (+ bias, ReLU). Row-major.
  sgemm(
    args: {
      transA: boolean; transB: boolean; m: number; n: number; k: number;
      alpha: number; a: Float32Array; lda: number; b: Float32Array; ldb: number;
      beta: number; c: Float32Array; ldc: number;
      bias?: Float32Array | null; biasMode?: 'row' | 'col' | 'none'; relu?: boolean;
    },
    async: boolean,
  ): MaybePromise;

  // conv.cc: output/grad buffers are overwritten (never accumulated).
  conv2dForward(
    args: Conv2dGeometry & { input: Float32Array; weight: Float32Array; bias?: Float32Array | null; output: Float32Array; relu?: boolean },
    async: boolean,
  ): MaybePromise;
  conv2dBackward(
    args: Conv2dGeometry & {
      input: Float32Array; weight: Float32Array; gradOutput: Float32Array;
      gradInput?: Float32Array | null; gradWeight?: Float32Array | null; gradBias?: Float32Array | null;
    },
    async: boolean,
  ): MaybePromise;
  /**
   * maxpool(conv(input) + bias) without the full-size convolution output (where the direct kernel
   * runs); indices as maxPool2dForward gives them (flat offsets in each conv output plane). The
   * pool has no padding: poolOutHeight/Width are the floor sizes over outHeight x outWidth.
   */
  conv2dMaxPoolForward(
    args: Conv2dGeometry & {
      input: Float32Array; weight: Float32Array; bias?: Float32Array | null; output: Float32Array; indices?: Int32Array | null;
      poolKernelH: number; poolKernelW: number; poolStrideH: number; poolStrideW: number;
      poolDilationH?: number; poolDilationW?: number; poolOutHeight: number; poolOutWidth: number;
    },
    async: boolean,
  ): MaybePromise;

  // pool.cc: indices hold the flat offset within each (n, c) input plane.
  maxPool2dForward(args: Pool2dGeometry & { input: Float32Array; output: Float32Array; indices?: Int32Array | null }, async: boolean): MaybePromise;
  maxPool2dBackward(args: Pool2dGeometry & { gradOutput: Float32Array; indices: Int32Array; gradInput: Float32Array }, async: boolean): MaybePromise;
  avgPool2dForward(args: Pool2dGeometry & { input: Float32Array; output: Float32Array; countIncludePad: boolean }, async: boolean): MaybePromise;
  avgPool2dBackward(args: Pool2dGeometry & { gradOutput: Float32Array; gradInput: Float32Array; countIncludePad: boolean }, async: boolean): MaybePromise;

  // elementwise.cc
  relu(args: { input: Float32Array; output: Float32Array; length: number }, async: boolean): MaybePromise;
  /** gradInput = gradOutput where output > 0, else 0. */
  reluBackward(args: { output: Float32Array; gradOutput: Float32Array; gradInput: Float32Array; length: number }, async: boolean): MaybePromise;
  /** Row-wise softmax (or log-softmax) over `cols`. */
  softmax(args: { input: Float32Array; output: Float32Array; rows: number; cols: number; log: boolean }, async: boolean): MaybePromise;
  /**
   * Mean cross-entropy of row-wise softmax(logits) against integer labels. Writes per-row losses,
   * and, when given, gradLogits = (softmax - onehot) * gradScale.
   */
  softmaxCrossEntropy(
    args: { logits: Float32Array; labels: Int32Array; rows: number; cols: number; losses: Float32Array; gradLogits?: Float32Array | null; gradScale: number },
    async: boolean,
  ): MaybePromise;
  /** In-place SGD: v = momentum*v + (1-dampening)*(g + wd*p); p -= lr * (nesterov ? g' + momentum*v : v). */
  sgdStep(
    args: { param: Float32Array; grad: Float32Array; velocity: Float32Array; length: number; lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean },
    async: boolean,
  ): MaybePromise;
  /** In-place Adam / AdamW (decoupled weight decay). `step` counts from 1. */
  adamStep(
    args: { param: Float32Array; grad: Float32Array; m: Float32Array; v: Float32Array; length: number; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean; step: number },
    async: boolean,
  ): MaybePromise;
  /**
   * BatchNorm over NCHW (`spatial` = H*W). Training: batch statistics, updates running stats with
   * `momentum` (PyTorch convention), saves mean and 1/sqrt(var+eps) for backward. Inference: running stats.
   */
  batchNorm2dForward(
    args: {
      input: Float32Array; output: Float32Array; gamma: Float32Array; beta: Float32Array;
      runningMean: Float32Array; runningVar: Float32Array; saveMean: Float32Array; saveInvStd: Float32Array;
      batch: number; channels: number; spatial: number; training: boolean; momentum: number; eps: number;
    },
    async: boolean,
  ): MaybePromise;
  batchNorm2dBackward(
    args: {
      input: Float32Array; gradOutput: Float32Array; gamma: Float32Array; saveMean: Float32Array; saveInvStd: Float32Array;
      gradInput: Float32Array; gradGamma: Float32Array; gradBeta: Float32Array; batch: number; channels: number; spatial: number;
    },
    async: boolean,
  ): MaybePromise;

  // plan.cc: compiled inference plans (see src/runtime/plan.ts for the spec format).
  // Spec errors are RangeError/TypeError with code ERR_KILN_INVALID_ARG; async resolves with the plan.
  createPlan(spec: unknown, async?: false): NativePlan;
  createPlan(spec: unknown, async: true): Promise<NativePlan>;
  runPlan(plan: NativePlan, args: { inputs: Float32Array[]; outputs: Float32Array[]; batch: number }, async: boolean): MaybePromise;
  planInfo(plan: NativePlan): { arenaBytes: number; arenaBytesPerImage: number; weightBytes: number; arenaBytesHeld: number; steps: string[] };
  /** Frees the plan's weights now; later calls with it throw ERR_KILN_DISPOSED. */
  disposePlan(plan: NativePlan): void;
  setPlanProfiling(plan: NativePlan, on: boolean): void;
  /** Single-thread FMA peak of the active ISA, GFLOP/s, measured on the calling thread for `milliseconds`. */
  measureF32Peak(milliseconds: number): number;
  /** Single-thread int8 multiply-add peak of the active int8 kernel family, GMAC/s, measured on the calling thread for `milliseconds`. */
  measureS8Peak(milliseconds: number): number;
  planProfile(plan: NativePlan, reset: boolean): { runs: number; images: number; stepNs: number[] };

  // s8-gemm.cc: int8 GEMM, bit-identical on every ISA. Outputs are overwritten, row-major with ldc.
  /** Packs B (K x N, or N x K with transB) once; valid for every ISA. */
  packS8B(args: { k: number; n: number; b: Int8Array; ldb: number; transB?: boolean }, async?: false): NativePackedS8B;
  packS8B(args: { k: number; n: number; b: Int8Array; ldb: number; transB?: boolean }, async: true): Promise<NativePackedS8B>;
  packedS8BInfo(packed: NativePackedS8B): { k: number; n: number; bytes: number };
  /** c = the exact int32 sum (wrapping modulo 2^32 beyond int32). */
  s8gemm(args: S8GemmOperands & { c: Int32Array; ldc: number }, async: boolean): MaybePromise;
  /** c = clamp(round_half_even(float(sum) * scale[n]), outMin - zp, outMax - zp) + zp; ReLU: outMin = zp. */
  s8gemmRequantize(
    args: S8GemmOperands & { c: Uint8Array; ldc: number; scale: Float32Array; outZeroPoint: number; outMin?: number; outMax?: number },
    async: boolean,
  ): MaybePromise;
  /** c = fma(float(sum), scale[n], outBias[n]) (one rounding). */
  s8gemmDequantize(
    args: S8GemmOperands & { c: Float32Array; ldc: number; scale: Float32Array; outBias?: Float32Array | null },
    async: boolean,
  ): MaybePromise;

  // sparse.cc: sparse fp32 weights times a dense matrix (pixels or batch in vector lanes).
  /**
   * Packs W (m x k row-major, m = output channels, k = reduction: Cin*KH*KW or in-features; every
   * value finite) into the blocked CSR of `pattern`; valid for every ISA.
   */
  packSparseF32(args: { m: number; k: number; weight: Float32Array; pattern: SparsePattern }, async?: false): NativePackedSparseF32;
  packSparseF32(args: { m: number; k: number; weight: Float32Array; pattern: SparsePattern }, async: true): Promise<NativePackedSparseF32>;
  /** Shape, pattern, stored blocks, non-zero weights and packed bytes of packed sparse weights. */
  packedSparseF32Info(packed: NativePackedSparseF32): {
    m: number; k: number; pattern: SparsePattern; blocks: number; nonzeros: number; bytes: number;
  };
  /**
   * y (m x n) = W (packed, m x k) * x (k x n) + bias[m], then ReLU when `relu`; x and y row-major
   * with exactly k * n and m * n elements. A convolution passes its im2col matrix (n = output
   * pixels, times the batch when images are laid side by side); a Linear layer passes its input
   * transposed (k = in-features x n = batch) and gets its output transposed (out-features x batch).
   * x should be finite: a stored zero times an infinite x gives NaN where a dropped block gives 0.
   */
  spmmF32(
    args: { packed: NativePackedSparseF32; n: number; x: Float32Array; y: Float32Array; bias?: Float32Array | null; relu?: boolean },
    async: boolean,
  ): MaybePromise;

  // s8-conv.cc: int8 convolution (ONNX QLinearConv on uint8 NHWC activations, int8 OIHW weights)
  // and the int8 layout kernels. Outputs are overwritten; every array holds exactly its geometry.
  /**
   * output (NHWC) = requantize(sum (input - xZeroPoint) * weight + bias) with the multiplier
   * fround(fround(xScale * wScale[o]) / yScale), clamped to [yMin, yMax] (ReLU: yMin = yZeroPoint);
   * a Float32Array output gets float(sum) * fround(xScale * wScale[o]) instead (no y* fields).
   */
  s8conv2d(
    args: Conv2dGeometry & {
      input: Uint8Array; weight: Int8Array; bias?: Int32Array | null; wScale: Float32Array;
      xScale: number; xZeroPoint: number; output: Uint8Array | Float32Array;
      yScale?: number; yZeroPoint?: number; yMin?: number; yMax?: number;
    },
    async: boolean,
  ): MaybePromise;
  /** ONNX QuantizeLinear (uint8, true division, ties to even, saturating; NaN -> zeroPoint), NCHW -> NHWC. */
  quantizeU8NchwToNhwc(
    args: { input: Float32Array; output: Uint8Array; batch: number; channels: number; plane: number; scale: number; zeroPoint: number },
    async: boolean,
  ): MaybePromise;
  /** ONNX DequantizeLinear: (q - zeroPoint) * scale, NHWC -> NCHW. */
  dequantizeU8NhwcToNchw(
    args: { input: Uint8Array; output: Float32Array; batch: number; channels: number; plane: number; scale: number; zeroPoint: number },
    async: boolean,
  ): MaybePromise;
  /** Max pooling on uint8 NHWC (batch x H x W x channels); padding never wins, an empty window gives 0. */
  maxPoolU8Nhwc(args: Pool2dGeometry & { input: Uint8Array; output: Uint8Array }, async: boolean): MaybePromise;

  // lent-memory.cc: a zero-filled ArrayBuffer over memory the addon owns and async jobs use in
  // place (src/memory.ts); a plain ArrayBuffer where the runtime refuses external buffers.
  lendArrayBuffer(bytes: number): ArrayBuffer;

  /** Present only when the addon was loaded with KILN_TEST_HOOKS=1 (see testHooks()). */
  testHooks?: NativeTestHooks;
}

/**
 * Entry points for the tests and benchmarks (native/addon/test-hooks.cc), kept off the production
 * surface: the addon registers them only when KILN_TEST_HOOKS=1 is set as it loads (vitest.config.ts
 * and bench/run.ts set it).
 */
export interface NativeTestHooks {
  /**
   * How long (us) the kernel pool's helpers and the runner threads poll for more work before they
   * sleep (0 restores the default, 1 ms), so that a test can tell threads sent to sleep
   * (SessionOptions.allowSpinning false) from threads whose window ran out.
   */
  setPollWindow(microseconds: number): void;
  /** Runner threads polling for a job now, and kernel pool helpers asleep now. */
  pollingThreads(): { pollingRunners: number; sleepingHelpers: number };
  /** The thread pool's parallel_for_slots: per task, the slot that ran it and its run count. */
  threadPoolSlotsProbe(tasks: number, maxThreads: number): { slots: Int32Array; runs: Int32Array };
  /** 'avxvnni' forces the VEX AVX-VNNI kernels; 'auto' restores the ISA's own. */
  setS8GemmKernel(kernel: 'auto' | 'avxvnni'): void;
  /** The int8 kernel family in use: scalar, avx2, avx512bw, avx512vnni or avxvnni. */
  s8GemmKernel(): string;
  /** How many sparse-or-dense timings ('auto') plan builds have run in this process (the rest were remembered). */
  sparseChoiceMeasurements(): number;
  /**
   * Runs whose large inputs an int8 plan read in place while the JS thread waited (`lent`), and
   * those whose inputs the JS thread copied first because no runner took them in time (`copied`).
   */
  inputLoans(): { lent: number; copied: number };
  /**
   * How long (us) the JS thread waits for a runner to take a run's large inputs, polling or not,
   * so that either side can be made to win; -1 restores the default (50 us for a polling runner).
   */
  forceHandoffPatience(microseconds: number): void;
}

function packageRoot(): string {
  // dist/src/binding.js and src/binding.ts (vitest) both sit two or one levels below the root.
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..') : join(here, '..');
}

function message(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/**
 * The .node files of prebuilds/<platform>-<arch>/ (what node-gyp-build falls back to), less those
 * tagged for the other C library (`name.glibc.node` is not tried on musl, nor `.musl.` on glibc).
 */
function prebuiltFiles(root: string): string[] {
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const otherLibc = isMusl() ? 'glibc' : 'musl';
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.node') && !f.split('.').includes(otherLibc))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/**
 * Loads the addon: KILN_ADDON_PATH alone when set (a development override: an addon built
 * elsewhere, e.g. `npx cmake-js compile -O /tmp/b`); else node-gyp-build's pick (a source build in
 * build/ first, then the prebuilt binary of this platform), then every other candidate, so a
 * broken source build still falls back to the prebuilt binary. Throws one KilnError
 * (ERR_KILN_NATIVE_LOAD) listing every attempt.
 */
function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const attempts: LoadAttempt[] = [];
  const tryLoad = (kind: string, path: string): NativeAddon | undefined => {
    try {
      return require(path) as NativeAddon;
    } catch (error) {
      attempts.push({ kind, path, error: message(error) });
      return undefined;
    }
  };
  const fail = (): never => {
    throw new KilnError(ErrorCode.NATIVE_LOAD, nativeLoadMessage(attempts, root), { cause: attempts });
  };

  const override = process.env.KILN_ADDON_PATH;
  if (override) return tryLoad('KILN_ADDON_PATH', resolve(override)) ?? fail();

  const sourceBuilds = ['Release', 'Debug'].map((c) => join(root, 'build', c, 'kiln.node')).filter((p) => existsSync(p));
  const prebuilds = prebuiltFiles(root);
  const kindOf = (path: string) => (prebuilds.includes(path) ? 'prebuilt binary' : 'source build');
  let first: string | undefined;
  try {
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    first = nodeGypBuild.resolve(root);
  } catch (error) {
    attempts.push({ kind: 'node-gyp-build', error: message(error) });
  }
  for (const path of [...new Set([first, ...sourceBuilds, ...prebuilds].filter((p): p is string => p !== undefined))]) {
    const addon = tryLoad(kindOf(path), path);
    if (addon) return addon;
  }
  return fail();
}

/** The loaded addon. */
export const native: NativeAddon = load();

/** The addon's test hooks; throws unless the process started with KILN_TEST_HOOKS=1. */
export function testHooks(): NativeTestHooks {
  if (!native.testHooks) {
    throw new KilnError(ErrorCode.INVALID_STATE, 'The native test hooks are off: set KILN_TEST_HOOKS=1 in the environment before Kiln loads');
  }
  return native.testHooks;
}
