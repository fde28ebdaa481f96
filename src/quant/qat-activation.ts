/**
 * Fake quantization of an activation tensor as a layer: per tensor, uint8 asymmetric (the default)
 * or int8 symmetric, with the range from a moving-average min-max observer (PyTorch's
 * MovingAverageMinMaxObserver + FakeQuantize).
 */
import { Tensor } from '../tensor.js';
import type { GraphBuilder } from '../graph/ir.js';
import { checkGradOutput, checkInput, checkShape } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import type { LayerConfig } from '../nn/module.js';
import { BufferSlot } from '../nn/layers/buffer-slot.js';
import { fakeQuantize, straightThroughGradient } from './fake-quant.js';
import { MinMaxObserver } from './observers/minmax.js';
import type { FloatRange, QuantKind, QuantParams } from './qparams.js';

/** Weight of a new batch in the moving average of the activation range (PyTorch's default). */
export const DEFAULT_OBSERVER_MOMENTUM = 0.01;

/**
 * `ActivationFakeQuant(name)`: output = dequantize(quantize(input)) with the observer's current
 * range; backward is the straight-through estimator.
 *
 * The observer sees every training-mode batch while `observing` is true (see `freeze()`); eval-mode
 * batches never move it, so evaluation is repeatable. The very first batch initialises it whatever
 * the mode, so a freshly prepared model can be evaluated before any training.
 */
export class ActivationFakeQuant extends Module {
  readonly observer: MinMaxObserver;
  /** Storage of the quantized activation: 'uint8' asymmetric or 'int8' symmetric. */
  readonly kind: QuantKind;
  /** Whether training-mode forwards update the range. */
  observing = true;
  /**
   * The graph value this quantizer stands for, set by `lower()`: after conversion the int8 graph
   * quantizes exactly that value with this quantizer's parameters.
   */
  valueName: string | undefined;
  private mask: Uint8Array | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  /**
   * @param name the tensor being quantized, for error messages (e.g. 'input', '0.output')
   * @param momentum weight of each new batch in the moving-average range, in (0, 1]
   * @param kind 'uint8' asymmetric (default) or 'int8' symmetric
   */
  constructor(name: string, momentum = DEFAULT_OBSERVER_MOMENTUM, kind: QuantKind = 'uint8') {
    super();
    this.observer = new MinMaxObserver(name, { momentum });
    this.kind = kind;
  }

  /** Stops the range from moving (the parameters stay those of the last observed batch). */
  freeze(): this {
    this.observing = false;
    return this;
  }

  /** The current range (throws ERR_KILN_INVALID_STATE before any batch was seen). */
  range(): FloatRange {
    return this.observer.range();
  }

  /** Parameters of the current range, through qparams.ts as convertToInt8 computes them. */
  qparams(): QuantParams {
    return this.observer.qparams(this.kind);
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return checkShape('ActivationFakeQuant', inputShape, null, '[N, ...]').slice();
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('ActivationFakeQuant', input, null, '[N, ...]');
    // The observer refuses NaN and infinities (a RangeError naming the tensor) before they reach a range.
    if ((this.training && this.observing) || !this.observer.hasData) this.observer.observe(x.data);
    const params = this.qparams();
    const output = this.output.take(x.size, this.reuseBuffers, x.data);
    let mask: Uint8Array | undefined;
    if (this.training) {
      mask = this.mask !== undefined && this.mask.length === x.size ? this.mask : new Uint8Array(x.size);
    }
    fakeQuantize(x.data, params, output, mask, this.observer.name);
    this.mask = mask;
    this.outputDims = x.dims.slice();
    return new Tensor('float32', output, x.dims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const mask = checkGradOutput('ActivationFakeQuant', gradOutput, this.mask, this.outputDims);
    const gradInput = this.gradInput.take(gradOutput.size, this.reuseBuffers, gradOutput.data);
    straightThroughGradient(gradOutput.data, mask, gradInput);
    return new Tensor('float32', gradInput, gradOutput.dims);
  }

  /** Adds no node: the quantization happens where convertToInt8 puts it; records the value's name. */
  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    void builder;
    this.outputShape(inputShape);
    this.valueName = input;
    return input;
  }

  override config(): LayerConfig {
    return { type: 'ActivationFakeQuant', name: this.observer.name, momentum: this.observer.momentum, kind: this.kind };
  }
}
