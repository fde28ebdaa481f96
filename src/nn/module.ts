/**
 * The Module tree: what you train. Each layer has an explicit async `forward` and `backward`
 * calling native kernels; there is no autograd tape (a CNN does not need one).
 */
import type { GraphBuilder } from '../graph/ir.js';
import type { Tensor } from '../tensor.js';

/** A trainable tensor and its gradient (same length, overwritten by each backward). */
export interface Parameter {
  /** Dotted path within the model, e.g. '0.weight'. */
  name: string;
  value: Tensor<'float32'>;
  grad: Float32Array;
  /** Whether weight decay applies (false for biases and norm parameters). */
  decay: boolean;
}

/** Serializable description of a layer (type + constructor options), used by the model file. */
export interface LayerConfig {
  type: string;
  [option: string]: unknown;
}

export abstract class Module {
  /** Training mode (dropout active, batch-norm batch statistics). */
  training = true;

  /**
   * Shape of one input image [C, H, W] the model was built for, when known (set by `models.*`
   * and by `load()`). `InferenceSession.create(module)`, `save()` and export use it by default.
   */
  inputShape?: readonly number[];

  /**
   * When true, `forward` and `backward` may return tensors backed by buffers this layer reuses on
   * its next call of the same shape (no allocation per batch). Off by default so every returned
   * tensor is the caller's to keep; the Trainer and `evaluate` switch it on while they run, as
   * they never hold an output past the next call. See `setBufferReuse`.
   */
  reuseBuffers = false;

  /** Computes the output and keeps what backward needs. */
  abstract forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>>;

  /**
   * Given d(loss)/d(output) of the last forward, writes parameter gradients (overwriting) and
   * returns d(loss)/d(input). `needInputGrad` false lets the first layer skip that work; the
   * returned tensor is then unspecified (not an input gradient) and must be ignored.
   */
  abstract backward(gradOutput: Tensor<'float32'>, needInputGrad?: boolean): Promise<Tensor<'float32'>>;

  /** Output shape for an input shape (NCHW with batch first); throws a shape error if invalid. */
  abstract outputShape(inputShape: readonly number[]): number[];

  /** Appends this layer to a graph; returns the output value name. */
  abstract lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string;

  /** Constructor options, so `load()` can rebuild the layer. */
  abstract config(): LayerConfig;

  /** Trainable parameters (recursively for containers). */
  parameters(): Parameter[] {
    return [];
  }

  /** Non-trainable state saved with the model (e.g. batch-norm running statistics). */
  buffers(): { name: string; value: Tensor<'float32'> }[] {
    return [];
  }

  /** Child modules (containers override). */
  children(): Module[] {
    return [];
  }

  /** Multiply-accumulates per image for an input shape (for `kiln info` and benchmarks). */
  macs(inputShape: readonly number[]): number {
    void inputShape;
    return 0;
  }

  train(mode = true): this {
    this.training = mode;
    for (const c of this.children()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets `reuseBuffers` on this module and every descendant. */
  setBufferReuse(on: boolean): this {
    this.reuseBuffers = on;
    for (const c of this.children()) c.setBufferReuse(on);
    return this;
  }
}
