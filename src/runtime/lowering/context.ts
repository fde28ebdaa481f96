/**
 * What a lowering function sees of one graph node: its inputs as plan values (per-image shapes)
 * or constants, its attributes, and a way to emit plan steps. Shape rules live in the lowering
 * functions (one file per op family); the native plan checks them again.
 */
import { ErrorCode, KilnError } from '../../errors.js';
import type { AttrValue, GraphNode } from '../../graph/ir.js';
import { Tensor } from '../../tensor.js';
import type { PlanAttr, PlanOp, PlanStepSpec, PlanWeight } from '../plan.js';

/**
 * How a quantized value is stored: a uint8 plan value (int8 activations as uint8 with zero point
 * + 128). `perm` says the storage order is not the IR's (NCHW): the value is logically [c][p]
 * (c channels of p positions, flattened or not) but stored [p][c] (NHWC). The scale and zero
 * point are those of the producing op (in the dtype's own range).
 */
export interface QuantInfo {
  dtype: 'uint8' | 'int8';
  scale: number;
  zeroPoint: number;
  perm?: { c: number; p: number };
}

/** A plan value: its id and per-image shape (the batch is the implicit leading dimension). */
export interface ValueRef {
  id: number;
  shape: number[];
  /** Set for the uint8 values of an int8 region. */
  quant?: QuantInfo;
  /** Set for bool values (comparisons, masks): one byte 0/1 per element, never quantized data. */
  bool?: true;
}

/** This node cannot run on the plan; the reason ends up in ERR_KILN_UNSUPPORTED_OP. */
export class Unsupported extends Error {}

/** The state shared by every node's lowering: value table, steps, constants. */
export interface LoweringEnv {
  values: number[][];
  steps: PlanStepSpec[];
  macs: number;
  /** The part of `macs` done by int8 kernels (about four times the float throughput). */
  int8Macs?: number;
  /** Graph value name → plan value, for values computed per image. */
  bound: Map<string, ValueRef>;
  initializers: Map<string, Tensor>;
  /** The graph input's fixed batch size, when its leading dimension is a number. */
  fixedBatch: number | undefined;
  /** Ids of the uint8 plan values (every other value is float32). */
  uint8Values?: Set<number>;
  /** Multiply-accumulates per image of each step, by step index (profiles report GFLOP/s from them). */
  stepMacs?: number[];
  /** Indices of the steps whose multiply-accumulates run on int8 kernels (profiles compare them with the int8 peak). */
  int8Steps?: Set<number>;
  /** Ids of the bool plan values. */
  boolValues?: Set<number>;
  /** Conv steps may run as Winograd F(2x2, 3x3) or F(4x4, 3x3) (CompileOptions.winograd). */
  winograd?: boolean;
  /**
   * Quantized values read only as QLinearGemm's input: a QuantizeLinear of a [C, H, W] value named
   * here keeps the IR's own order instead of NHWC, since a Gemm over rows would transpose it back.
   */
  gemmOnlyValues?: ReadonlySet<string>;
  /** Conv steps may run on the sparse kernels (CompileOptions.sparseKernels; absent: 'never'). */
  sparseKernels?: 'auto' | 'always' | 'never';
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

export class NodeLowering {
  constructor(
    readonly node: GraphNode,
    private readonly env: LoweringEnv,
  ) {}

  get fixedBatch(): number | undefined {
    return this.env.fixedBatch;
  }

  /** Conv steps may run as Winograd F(2x2, 3x3) or F(4x4, 3x3). */
  get winograd(): boolean {
    return this.env.winograd === true;
  }

  /** CompileOptions.sparseKernels ('never' when absent). */
  get sparseKernels(): 'auto' | 'always' | 'never' {
    return this.env.sparseKernels ?? 'never';
  }

  /** Input i is present (not omitted with ''). */
  has(i: number): boolean {
    return i < this.node.inputs.length && this.node.inputs[i] !== '';
  }

  isConstant(i: number): boolean {
    return this.has(i) && this.env.initializers.has(this.node.inputs[i]);
  }

  /** Input i as a per-image float32 value; constants, quantized and bool values are refused. */
  value(i: number): ValueRef {
    const ref = this.viewable(i);
    if (ref.bool) throw new Unsupported(`input ${i} ('${this.node.inputs[i]}') is a bool value; ${this.node.op} takes float32 (Cast it to FLOAT first)`);
    return ref;
  }

  /** Input i as a per-image float32 or bool value (what views and bool ops take); quantized values are refused. */
  viewable(i: number): ValueRef {
    const ref = this.anyValue(i);
    if (ref.quant) {
      throw new Unsupported(`input ${i} ('${this.node.inputs[i]}') is a quantized (${ref.quant.dtype}) value; a float op needs a DequantizeLinear before it`);
    }
    return ref;
  }

  /** Input i as a per-image bool value. */
  boolValue(i: number): ValueRef {
    const ref = this.viewable(i);
    if (!ref.bool) throw new Unsupported(`input ${i} ('${this.node.inputs[i]}') is a float32 value where ${this.node.op} takes bool`);
    return ref;
  }

  /** Whether output `i` is read only as the input of QLinearGemm nodes (see LoweringEnv.gemmOnlyValues). */
  outputReadOnlyByGemm(i: number): boolean {
    return this.env.gemmOnlyValues?.has(this.node.outputs[i] ?? '') === true;
  }

  /** Input i is a per-image value of an int8 region. */
  isQuantized(i: number): boolean {
    return this.has(i) && this.env.bound.get(this.node.inputs[i])?.quant !== undefined;
  }

  /** Input i as a per-image value, float32 or quantized. */
  anyValue(i: number): ValueRef {
    if (!this.has(i)) throw this.shapeError(`input ${i} is missing`);
    const name = this.node.inputs[i];
    const ref = this.env.bound.get(name);
    if (ref) return ref;
    if (this.env.initializers.has(name)) throw new Unsupported(`input ${i} ('${name}') is a constant where a computed value is expected (fold constants first)`);
    throw this.shapeError(`input ${i} ('${name}') is not produced by any earlier node`);
  }

  /** Input i as a constant tensor; computed values are refused. */
  constant(i: number, what = `input ${i}`): Tensor {
    const name = this.node.inputs[i];
    const t = this.has(i) ? this.env.initializers.get(name) : undefined;
    if (!t) throw new Unsupported(`${what} ('${name ?? ''}') must be a constant (an initializer)`);
    return t;
  }

  /** A float32 constant as a plan weight. */
  weight(i: number, what = `input ${i}`): PlanWeight & { data: Float32Array } {
    const t = this.constant(i, what);
    if (t.type !== 'float32') throw new Unsupported(`${what} has dtype ${t.type}; only float32 weights are supported`);
    return { data: t.data as Float32Array, shape: t.dims.slice() };
  }

  /** An integer constant (shapes, axes, pads) as numbers. */
  ints(i: number, what = `input ${i}`): number[] {
    const t = this.constant(i, what);
    if (t.type === 'float32') throw this.shapeError(`${what} must hold integers, not float32`);
    return Array.from(t.data as ArrayLike<number>);
  }

  /** A scalar constant (Clip bounds, Pad value). */
  scalar(i: number, what = `input ${i}`): number {
    const t = this.constant(i, what);
    if (t.size !== 1) throw this.shapeError(`${what} must be a scalar, received shape ${shapeText(t.dims)}`);
    return Number((t.data as ArrayLike<number>)[0]);
  }

  private attr(name: string): AttrValue | undefined {
    return this.node.attrs[name];
  }

  hasAttr(name: string): boolean {
    return this.attr(name) !== undefined;
  }

  int(name: string, fallback?: number): number {
    const v = this.attr(name);
    if (v === undefined) {
      if (fallback === undefined) throw this.shapeError(`attribute '${name}' is required`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.shapeError(`attribute '${name}' must be an integer, received ${JSON.stringify(v)}`);
    return v;
  }

  float(name: string, fallback: number): number {
    const v = this.attr(name);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.shapeError(`attribute '${name}' must be a finite number, received ${JSON.stringify(v)}`);
    return v;
  }

  intList(name: string, fallback?: number[]): number[] {
    const v = this.attr(name);
    if (v === undefined) {
      if (fallback === undefined) throw this.shapeError(`attribute '${name}' is required`);
      return fallback;
    }
    if (v instanceof Tensor) return Array.from(v.data as ArrayLike<number>);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
      throw this.shapeError(`attribute '${name}' must be a list of integers, received ${JSON.stringify(v)}`);
    }
    return (v as number[]).slice();
  }

  str(name: string, fallback: string): string {
    const v = this.attr(name);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') throw this.shapeError(`attribute '${name}' must be a string, received ${JSON.stringify(v)}`);
    return v;
  }

  /** An ONNX axis (batch = 0) normalised against `rank` (batch included). */
  axis(value: number, rank: number, what = 'axis'): number {
    if (!Number.isInteger(value) || value < -rank || value >= rank) throw this.shapeError(`${what} ${value} is out of range for rank ${rank}`);
    return value < 0 ? value + rank : value;
  }

  /** Appends a step; returns its output value with the given per-image shape. */
  emit(
    op: PlanOp,
    inputs: ValueRef[],
    shape: number[],
    options: { attrs?: Record<string, PlanAttr>; weights?: Record<string, PlanWeight>; macs?: number; quant?: QuantInfo; int8?: boolean; bool?: boolean } = {},
  ): ValueRef {
    for (const d of shape) {
      if (d === 0) throw new Unsupported(`an empty output ${shapeText(shape)}`);
      if (!Number.isInteger(d) || d < 1) throw this.shapeError(`the output shape ${shapeText(shape)} has an empty or invalid dimension`);
    }
    const id = this.env.values.length;
    this.env.values.push(shape.slice());
    const step: PlanStepSpec = { op, name: this.node.name, inputs: inputs.map((r) => r.id), outputs: [id] };
    if (options.attrs && Object.keys(options.attrs).length) step.attrs = options.attrs;
    if (options.weights && Object.keys(options.weights).length) step.weights = options.weights;
    this.env.steps.push(step);
    (this.env.stepMacs ??= [])[this.env.steps.length - 1] = options.macs ?? numel(shape);
    this.env.macs += options.macs ?? numel(shape);
    if (options.int8) {
      this.env.int8Macs = (this.env.int8Macs ?? 0) + (options.macs ?? numel(shape));
      (this.env.int8Steps ??= new Set()).add(this.env.steps.length - 1);
    }
    if (options.bool) {
      (this.env.boolValues ??= new Set()).add(id);
      return { id, shape: shape.slice(), bool: true };
    }
    if (!options.quant) return { id, shape: shape.slice() };
    (this.env.uint8Values ??= new Set()).add(id);
    return { id, shape: shape.slice(), quant: normalizeQuant(options.quant) };
  }

  /** A zero-copy view of `input` under another per-image shape of the same size. */
  view(input: ValueRef, shape: number[], op: PlanOp = 'Reshape'): ValueRef {
    if (numel(shape) !== numel(input.shape)) {
      throw this.shapeError(`cannot view per-image shape ${shapeText(input.shape)} as ${shapeText(shape)}`);
    }
    if (shapeText(shape) === shapeText(input.shape) && op === 'Reshape') return input;
    return this.emit(op, [input], shape, { macs: 0, ...(input.quant ? { quant: input.quant } : {}), ...(input.bool ? { bool: true } : {}) });
  }

  shapeError(message: string): KilnError {
    return new KilnError(ErrorCode.SHAPE_MISMATCH, `Node '${this.node.name}' (${this.node.op}): ${message}`);
  }
}

/** Turns one node into plan steps; returns the plan value of each node output it defines. */
export type LowerFn = (n: NodeLowering) => ValueRef[];

/** A perm over one channel or one position is the identity: drop it. */
function normalizeQuant(q: QuantInfo): QuantInfo {
  if (q.perm && (q.perm.c === 1 || q.perm.p === 1)) {
    const { perm: _, ...rest } = q;
    return rest;
  }
  return { ...q };
}
