/**
 * A Conv2d or Linear whose forward and backward see fake-quantized weights: int8 symmetric per
 * output channel (or per tensor), parameters recomputed from the current float weights at every
 * forward with qparams.ts as convertToInt8 computes them from the final weights.
 *
 * The wrapped layer keeps the float ("master") weights in its own Parameter: the optimizer updates
 * them and `lower()` exports them, so the converted graph quantizes exactly the weights trained here.
 * Only for the duration of a forward or backward call does the Parameter's tensor point at the
 * fake-quantized copy (the input gradient must flow through the weights the forward used).
 *
 * STE for weights: with a symmetric scale of max|w| / 127 no weight lies outside the int8 range, so
 * the estimator is the identity and the layer's weight gradient is also the master gradient.
 */
import type { GraphBuilder } from '../graph/ir.js';
import { Conv2d } from '../nn/layers/conv2d.js';
import type { Linear } from '../nn/layers/linear.js';
import { Module } from '../nn/module.js';
import type { LayerConfig, Parameter } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { fakeQuantizePerChannel } from './fake-quant.js';
import { channelRanges, perChannelQuantParams, quantParams, type PerChannelQuantParams } from './qparams.js';

export class QatWeighted extends Module {
  /** The float layer; its `weight` Parameter holds the master weights between calls. */
  readonly layer: Conv2d | Linear;
  /** One scale per output channel (true) or one for the whole tensor. */
  readonly perChannel: boolean;
  private readonly master: Tensor<'float32'>;
  private readonly quantized: Tensor<'float32'>;

  /**
   * @param layer a Conv2d or Linear owned by this wrapper from now on (in no container)
   * @param perChannel one scale per output channel (default) or one for the tensor
   */
  constructor(layer: Conv2d | Linear, perChannel = true) {
    super();
    this.layer = layer;
    this.perChannel = perChannel;
    this.master = layer.weight.value;
    this.quantized = new Tensor('float32', new Float32Array(this.master.size), this.master.dims);
  }

  /** Whether the wrapped layer is a convolution (else a Linear). */
  get isConv(): boolean {
    return this.layer instanceof Conv2d;
  }

  /** The int8 parameters of the current float weights, per output channel (repeated when per tensor). */
  weightParams(): PerChannelQuantParams {
    const { data, dims } = this.master;
    const name = this.layer.weight.name;
    if (this.perChannel) return perChannelQuantParams(data, dims, 'int8', name);
    // Per tensor as convertToInt8 does it: the range over all channels, one scale for each.
    const ranges = channelRanges(data, dims, name);
    const range = { min: Math.min(...ranges.map((r) => r.min)), max: Math.max(...ranges.map((r) => r.max)) };
    const { scale } = quantParams(range, 'int8', name);
    return { kind: 'int8', axis: 0, scales: new Float32Array(dims[0]).fill(scale), zeroPoints: new Int32Array(dims[0]) };
  }

  /** The fake-quantized weights of the current float weights (a fresh copy). */
  fakeQuantizedWeights(): Float32Array {
    const out = new Float32Array(this.master.size);
    fakeQuantizePerChannel(this.master.data, this.weightParams(), out, undefined, this.layer.weight.name);
    return out;
  }

  override children(): Module[] {
    return [this.layer];
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return this.layer.outputShape(inputShape);
  }

  override macs(inputShape: readonly number[]): number {
    return this.layer.macs(inputShape);
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    fakeQuantizePerChannel(this.master.data, this.weightParams(), this.quantized.data, undefined, this.layer.weight.name);
    return this.withQuantizedWeights(() => this.layer.forward(input));
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    // The quantized copy is still the one the last forward used: the optimizer changes only the master.
    return this.withQuantizedWeights(() => this.layer.backward(gradOutput, needInputGrad));
  }

  /** Lowers the float layer with the master weights (the conversion quantizes them). */
  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    return this.layer.lower(builder, input, inputShape);
  }

  override config(): LayerConfig {
    return { type: 'QatWeighted', layer: this.layer.config(), perChannel: this.perChannel };
  }

  override parameters(): Parameter[] {
    return this.layer.parameters();
  }

  private async withQuantizedWeights<T>(run: () => Promise<T>): Promise<T> {
    const weight = this.layer.weight;
    weight.value = this.quantized;
    try {
      return await run();
    } finally {
      weight.value = this.master;
    }
  }
}
