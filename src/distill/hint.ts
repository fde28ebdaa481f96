/**
 * Feature (hint) distillation, FitNets-style (Romero et al. 2015): an intermediate activation of
 * the student, [N, Cs, H, W], goes through a learned 1x1 convolution (the adapter, Cs -> Ct
 * channels) and is pulled towards the teacher's activation [N, Ct, H, W] by a mean squared error.
 * The student is wrapped for training (`HintedStudent`) so the Trainer's optimizer updates the
 * adapter with the student's own parameters; the adapter is dropped afterwards. The extra gradient
 * enters the student through a `Sequential.tap` on the matched layer.
 */
import { ErrorCode, KilnError, KilnRangeError } from '../errors.js';
import type { GraphBuilder } from '../graph/ir.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Conv2d } from '../nn/layers/conv2d.js';
import { Sequential } from '../nn/layers/sequential.js';
import { Module } from '../nn/module.js';
import type { LayerConfig, Parameter } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { integer, number, options as checkOptions, rangeError, shapeError, string, typeError } from '../validate.js';
import { scheduledValue } from './schedule.js';
import type { Scheduled, ValueAt } from './schedule.js';

/** `DistillOptions.hint`: which activations to match, and how hard. */
export interface HintOptions {
  /**
   * Value name in the teacher's graph whose output [N, Ct, H, W] is the target, e.g. 'relu_1_out'
   * (a Module lowers as `toGraph` names it: SeedCNN's values are conv_out, relu_out, maxpool_out,
   * conv_1_out, relu_1_out, maxpool_1_out, ...; an ONNX teacher keeps its file's names).
   */
  teacher: string;
  /**
   * The student layer whose output [N, Cs, H, W] is matched: its index in the student Sequential
   * (SeedCNN: 0 conv, 1 relu, 2 maxpool, 3 conv, 4 relu, 5 maxpool), or a dotted path of indices
   * into nested Sequentials ('2.1').
   */
  student: number | string;
  /** Weight of the hint term added to the distillation loss, >= 0, constant or scheduled (default 1). */
  weight?: Scheduled;
  /**
   * The teacher's activations for the whole training set are computed once and kept when there is
   * no augmentation and they take at most this many bytes (default 1 GiB); otherwise the teacher
   * runs on every batch. (MNIST's 60,000 digits at 32x26x26 floats would take 5.2 GB.)
   */
  maxCacheBytes?: number;
}

/** The default `HintOptions.maxCacheBytes`: 1 GiB. */
export const HINT_CACHE_BYTES = 2 ** 30;

/** A checked hint: where the student's feature is, its shape, and the weight per iteration. */
export interface HintPlan {
  teacherValue: string;
  /** The Sequential holding the matched layer and the layer's index in it. */
  container: Sequential;
  index: number;
  /** How the user named the layer, for messages. */
  where: string;
  /** The student feature's per-image shape [Cs, H, W]. */
  featureShape: number[];
  weightAt: ValueAt;
  maxCacheBytes: number;
}

const HINT_KEYS = ['teacher', 'student', 'weight', 'maxCacheBytes'] as const;

const nonNegative = (name: string, v: unknown): number => number(name, v, 0, Infinity);

/**
 * Checks `options.hint` against the student (layer exists, its output is [N, C, H, W] for these
 * images); the teacher value is checked when the teacher is opened.
 */
export function planHint(value: unknown, student: Module, imageShape: readonly number[], iterationsPerEpoch: number): HintPlan {
  const opts = checkOptions<HintOptions>('options.hint', value);
  checkKeys('options.hint', opts, HINT_KEYS);
  const teacherValue = string('options.hint.teacher', opts.teacher);
  if (teacherValue === '') throw rangeError('options.hint.teacher', "a value name of the teacher's graph", teacherValue);
  const path = layerPath(opts.student);
  if (!(student instanceof Sequential)) throw typeError('student', 'a Sequential (options.hint.student names one of its layers)', student);
  let container: Sequential = student;
  let shape = [1, ...imageShape];
  path.forEach((i, depth) => {
    const where = path.slice(0, depth + 1).join('.');
    if (i >= container.layers.length) {
      throw rangeError('options.hint.student', `a layer index below ${container.layers.length} at '${path.slice(0, depth).join('.') || 'the student'}'`, opts.student);
    }
    for (let k = 0; k < i; k++) shape = container.layers[k].outputShape(shape);
    if (depth + 1 < path.length) {
      const inner = container.layers[i];
      if (!(inner instanceof Sequential)) throw rangeError('options.hint.student', `a path through Sequentials (layer '${where}' is a ${inner.config().type})`, opts.student);
      container = inner;
    }
  });
  const index = path[path.length - 1];
  shape = container.layers[index].outputShape(shape);
  if (shape.length !== 4) {
    throw shapeError('options.hint.student', 'a layer with [N, C, H, W] output', `[${shape.join(', ')}] from layer ${path.join('.')}`);
  }
  const weightAt = scheduledValue('options.hint.weight', opts.weight ?? 1, nonNegative, iterationsPerEpoch);
  const maxCacheBytes = opts.maxCacheBytes === undefined ? HINT_CACHE_BYTES : integer('options.hint.maxCacheBytes', opts.maxCacheBytes, 0, Number.MAX_SAFE_INTEGER);
  return { teacherValue, container, index, where: path.join('.'), featureShape: shape.slice(1), weightAt, maxCacheBytes };
}

function layerPath(value: unknown): number[] {
  if (typeof value === 'number') return [integer('options.hint.student', value, 0)];
  if (typeof value !== 'string') throw typeError('options.hint.student', "a layer index or a dotted index path such as '2.1'", value);
  if (!/^\d+(\.\d+)*$/.test(value)) throw rangeError('options.hint.student', "a layer index or a dotted index path such as '2.1'", value);
  return value.split('.').map(Number);
}

/** Refuses a teacher feature whose spatial size differs from the student's. */
export function checkFeatureShapes(plan: HintPlan, teacherShape: readonly number[]): void {
  const [, h, w] = plan.featureShape;
  if (teacherShape[1] !== h || teacherShape[2] !== w) {
    throw new KilnRangeError(
      `The teacher's '${plan.teacherValue}' is [N, ${teacherShape.join(', ')}] and the student's layer ${plan.where} [N, ${plan.featureShape.join(', ')}]: a hint needs the same height and width (the 1x1 adapter only maps channels)`,
      ErrorCode.SHAPE_MISMATCH,
    );
  }
}

/**
 * weight * mean((adapted - target)^2) over every element, and its gradient with respect to
 * `adapted`. The mean (not FitNets' half sum) keeps the term's size independent of the feature's.
 */
export function featureMse(adapted: Float32Array, target: Float32Array, weight: number): { loss: number; mse: number; grad: Float32Array } {
  if (adapted.length !== target.length) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Hint feature sizes differ: ${adapted.length} vs ${target.length}`);
  const count = adapted.length;
  const grad = new Float32Array(count);
  let sum = 0;
  const scale = (2 * weight) / count;
  for (let i = 0; i < count; i++) {
    const d = adapted[i] - target[i];
    sum += d * d;
    grad[i] = scale * d;
  }
  const mse = count ? sum / count : 0;
  return { loss: weight * mse, mse, grad };
}

/**
 * The student plus its adapter, as the Trainer sees it during hint distillation: forward and
 * backward are the student's (with a tap on the matched layer), the parameters the student's and
 * then the adapter's ('hint.weight', 'hint.bias'), so one optimizer trains both. `hintStep` runs
 * the adapter and the loss on the last forward's feature; its gradient joins the student's
 * backward at that layer.
 * @internal
 */
export class HintedStudent extends Module {
  readonly adapter: Conv2d;
  private feature: Tensor<'float32'> | undefined;
  private featureGrad: Tensor<'float32'> | undefined;
  private readonly untap: () => void;

  constructor(readonly student: Module, plan: HintPlan, teacherChannels: number, seed: number) {
    super();
    this.adapter = new Conv2d(plan.featureShape[0], teacherChannels, 1, { seed });
    for (const p of this.adapter.parameters()) p.name = `hint.${p.name}`;
    this.inputShape = student.inputShape;
    this.training = student.training;
    this.untap = plan.container.tap(plan.index, {
      forward: (output) => {
        this.feature = output;
        this.featureGrad = undefined;
      },
      backward: (grad) => {
        const extra = this.featureGrad;
        this.featureGrad = undefined;
        if (!extra) return grad;
        // The adapter's input-gradient buffer is ours until its next backward: sum into it.
        const sum = extra.data;
        const g = grad.data;
        for (let i = 0; i < sum.length; i++) sum[i] += g[i];
        return extra;
      },
    });
  }

  /**
   * Adapter forward, the weighted MSE against `target` (the teacher's feature for the batch) and
   * the adapter's backward: sets the adapter's gradients and keeps d(hint)/d(feature) for the
   * student's backward. Returns the weighted term and the plain MSE.
   */
  async hintStep(target: Float32Array, weight: number): Promise<{ loss: number; mse: number }> {
    const feature = this.feature;
    if (!feature) throw new KilnError(ErrorCode.INVALID_STATE, 'No student feature: hintStep() must follow a forward');
    const adapted = await this.adapter.forward(feature);
    const { loss, mse, grad } = featureMse(adapted.data, target, weight);
    this.featureGrad = await this.adapter.backward(new Tensor('float32', grad, adapted.dims), true);
    return { loss, mse };
  }

  /** Removes the tap: the student runs as before (call once training is over). */
  detach(): void {
    this.untap();
    this.feature = undefined;
    this.featureGrad = undefined;
  }

  override forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    return this.student.forward(input);
  }

  override backward(gradOutput: Tensor<'float32'>, needInputGrad?: boolean): Promise<Tensor<'float32'>> {
    return this.student.backward(gradOutput, needInputGrad);
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return this.student.outputShape(inputShape);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    return this.student.lower(builder, input, inputShape);
  }

  override config(): LayerConfig {
    return this.student.config();
  }

  override parameters(): Parameter[] {
    return [...this.student.parameters(), ...this.adapter.parameters()];
  }

  override buffers(): { name: string; value: Tensor<'float32'> }[] {
    return this.student.buffers();
  }

  override children(): Module[] {
    return [this.student, this.adapter];
  }

  override macs(inputShape: readonly number[]): number {
    return this.student.macs(inputShape);
  }
}
