/**
 * The native plan's spec (what `compile.ts` produces and `native.createPlan` reads) and a thin
 * wrapper around the native handle.
 *
 * Spec conventions (checked again in C++, native/src/runtime/):
 * - every value has a PER-IMAGE shape (`values[id]`); the batch is a run-time parameter and the
 *   outermost dimension of every value;
 * - axis-like attributes (`axis`, `perm`, Pad `pads`) use ONNX numbering, the batch being axis 0;
 * - constants are step weights `{data, shape}` (full shapes); a Binary/MatMul constant operand is
 *   the weight `A` or `B`, and the step's `inputs` list only the operands that are values;
 * - views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) alias their input's storage;
 * - `valueTypes` (optional, float32 when absent) marks the uint8 values of an int8 region: the
 *   int8 steps (QuantizeLinear ... DequantizeLinear) read and write them, image values in NHWC
 *   order; int8 activations are stored as uint8 with zero point + 128. Plan inputs and outputs
 *   are float32. int8 weights are Int8Array, int32 biases Int32Array. 'bool' values (comparisons,
 *   IsNaN/IsInf, Not/And/Or/Xor, Cast to bool) hold one byte 0/1 per element; Where and Cast to
 *   float read them; views keep them bool.
 */
import { native } from '../binding.js';
import type { NativePlan } from '../binding.js';
import { ErrorCode, KilnError } from '../errors.js';

export type PlanAttr = number | string | boolean | number[];

export interface PlanWeight {
  data: Float32Array | Int8Array | Int32Array;
  shape: number[];
}

/** Element type of a plan value. */
export type PlanValueType = 'float32' | 'uint8' | 'bool';

export interface PlanStepSpec {
  /** A plan op: 'Conv', 'Gemm', 'Relu', ... (see PLAN_OPS). */
  op: PlanOp;
  /** The graph node's name (for messages and `info().steps`). */
  name: string;
  inputs: number[];
  outputs: number[];
  attrs?: Record<string, PlanAttr>;
  weights?: Record<string, PlanWeight>;
}

export interface PlanSpec {
  values: number[][];
  /** Per value; all float32 when absent. */
  valueTypes?: PlanValueType[];
  inputs: number[];
  outputs: number[];
  steps: PlanStepSpec[];
  /** Threads a run may use (0 = the whole pool). */
  maxThreads?: number;
  /**
   * Images that go through the steps at once (0 or absent: the plan's choice, which runs a batch
   * whose values outgrow the caches a few images per thread at a time). Same results either way.
   */
  imagesPerPass?: number;
  /** The graph's multiply-adds per image (absent: unknown), which that choice reads. */
  macsPerImage?: number;
  /** false: the kernel pool and the runner thread stop polling for more work when a run ends (default true). */
  allowSpinning?: boolean;
}

/** Ops the native plan executes. */
export const PLAN_OPS = [
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul',
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Silu', 'HardSigmoid', 'HardSwish', 'Tanh', 'Copy',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LRN', 'BatchNormalization',
  'LayerNormalization', 'GroupNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Sum', 'Concat', 'Transpose', 'Softmax', 'LogSoftmax', 'Pad',
  'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Floor', 'Ceil', 'Erf', 'Softplus', 'Softsign',
  'Round',
  'Elu', 'Selu', 'Celu', 'Mish', 'Gelu', 'ThresholdedRelu', 'PRelu', 'Max', 'Min', 'Pow',
  'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp',
  'ReduceLogSum',
  'ArgMax', 'ArgMin',
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity',
  'QuantizeLinear', 'DequantizeLinear', 'TransposeU8', 'TransposeNdU8', 'ChannelShuffleU8', 'QLinearConv', 'QLinearGemm', 'DynamicQGemm',
  'QLinearAdd', 'MaxPoolU8',
  'Resize', 'Slice', 'Gather', 'Expand', 'Tile', 'ResizeU8', 'SliceU8', 'ConcatU8', 'LookupU8', 'QLinearMul', 'BatchNormU8', 'GlobalAvgPoolU8', 'AvgPoolU8',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf', 'Cast', 'Where',
] as const;
export type PlanOp = (typeof PLAN_OPS)[number];

export interface PlanInfo {
  /** Arena bytes of a batch-1 run (values + the largest step scratch). */
  arenaBytes: number;
  /** Arena bytes per image for the values (the arena grows linearly with the batch). */
  arenaBytesPerImage: number;
  /** Bytes of prepacked weights. */
  weightBytes: number;
  /**
   * Bytes of scratch arenas the plan keeps for later runs (so a steady stream of runs allocates
   * nothing): one arena per run that was ever in flight at the same time, each as large as the
   * largest batch it ran. Memory that stays after a burst of big batches shows here, not as a leak.
   */
  arenaBytesHeld: number;
  /** One line per step: "Conv conv1: 3x3 s1x1 1->32 relu", views and in-place steps marked. */
  steps: string[];
}

/** A compiled native plan. `dispose()` frees its weights now instead of at garbage collection. */
export class Plan {
  private handle: NativePlan | undefined;

  private constructor(handle: NativePlan) {
    this.handle = handle;
  }

  /** Builds a plan; `async` packs the weights off the event loop (large models). */
  static async create(spec: PlanSpec, async = true): Promise<Plan> {
    const handle = async ? await native.createPlan(spec, true) : native.createPlan(spec);
    return new Plan(handle);
  }

  static createSync(spec: PlanSpec): Plan {
    return new Plan(native.createPlan(spec));
  }

  private live(): NativePlan {
    if (!this.handle) throw new KilnError(ErrorCode.DISPOSED, 'The plan was disposed');
    return this.handle;
  }

  /** Runs inline (`async` false) or on one of the addon's runner threads (returns a Promise). */
  run(inputs: Float32Array[], outputs: Float32Array[], batch: number, async: boolean): Promise<void> | undefined {
    return native.runPlan(this.live(), { inputs, outputs, batch }, async) ?? undefined;
  }

  info(): PlanInfo {
    return native.planInfo(this.live()) as PlanInfo;
  }

  /** Turns per-step timing of later runs on or off (off: runs read no clock). */
  setProfiling(on: boolean): void {
    native.setPlanProfiling(this.live(), on);
  }

  /** Nanoseconds per step (info().steps order), runs and images timed since the last reset. */
  profile(reset = false): { runs: number; images: number; stepNs: number[] } {
    return native.planProfile(this.live(), reset);
  }

  get disposed(): boolean {
    return this.handle === undefined;
  }

  dispose(): void {
    if (this.handle) native.disposePlan(this.handle);
    this.handle = undefined;
  }
}
