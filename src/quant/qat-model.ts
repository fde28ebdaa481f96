/**
 * The module `prepareQat` returns: a chain of stages (fake-quantized Conv2d/Linear, ReLU, MaxPool2d,
 * Flatten, Dropout and the activation fake-quantizers), so `train()` and `evaluate()` from src/train
 * work on it unchanged. Forward runs a ReLU after a MaxPool2d that follows it, as Sequential does
 * (they commute exactly); `lower()` keeps the declared order, so ReLU still fuses into the Conv.
 */
import type { GraphBuilder } from '../graph/ir.js';
import { executionOrder } from '../nn/layers/sequential.js';
import { Module } from '../nn/module.js';
import type { LayerConfig, Parameter } from '../nn/module.js';
import type { Tensor } from '../tensor.js';
import { ActivationFakeQuant } from './qat-activation.js';
import { QatWeighted } from './qat-weighted.js';
import type { QuantKind } from './qparams.js';

/** The quantization scheme a QatModel simulates (convertToInt8 must be asked for the same). */
export interface QatScheme {
  readonly perChannel: boolean;
  readonly activations: QuantKind;
}

export class QatModel extends Module {
  readonly stages: readonly Module[];
  readonly scheme: QatScheme;
  private readonly order: readonly number[];

  /** @param stages the chain; parameter names are kept as given (those of the fp32 model) */
  constructor(stages: Module[], scheme: QatScheme, inputShape?: readonly number[]) {
    super();
    this.stages = Object.freeze(stages.slice());
    this.scheme = Object.freeze({ ...scheme });
    this.order = Object.freeze(executionOrder(this.stages));
    if (inputShape !== undefined) this.inputShape = Object.freeze(inputShape.slice());
  }

  /** The activation fake-quantizers, input first. */
  get quantizers(): ActivationFakeQuant[] {
    return this.stages.filter((s): s is ActivationFakeQuant => s instanceof ActivationFakeQuant);
  }

  /** The fake-quantized Conv2d/Linear layers, in order. */
  get weighted(): QatWeighted[] {
    return this.stages.filter((s): s is QatWeighted => s instanceof QatWeighted);
  }

  /** Freezes every activation range (later training batches leave them where they are). */
  freezeObservers(): this {
    for (const q of this.quantizers) q.freeze();
    return this;
  }

  override children(): Module[] {
    return this.stages.slice();
  }

  override outputShape(inputShape: readonly number[]): number[] {
    let shape = inputShape.slice();
    for (const s of this.stages) shape = s.outputShape(shape);
    return shape;
  }

  override macs(inputShape: readonly number[]): number {
    let shape = inputShape.slice();
    let total = 0;
    for (const s of this.stages) {
      total += s.macs(shape);
      shape = s.outputShape(shape);
    }
    return total;
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    let x = input;
    for (const i of this.order) x = await this.stages[i].forward(x);
    return x;
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    let g = gradOutput;
    for (let k = this.order.length - 1; k >= 0; k--) g = await this.stages[this.order[k]].backward(g, k > 0 || needInputGrad);
    return g;
  }

  /** The fp32 graph of the trained float weights; each fake-quantizer records the value it stands for. */
  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    let value = input;
    let shape = inputShape.slice();
    for (const s of this.stages) {
      value = s.lower(builder, value, shape);
      shape = s.outputShape(shape);
    }
    return value;
  }

  override config(): LayerConfig {
    return { type: 'QatModel', scheme: { ...this.scheme }, stages: this.stages.map((s) => s.config()) };
  }

  override parameters(): Parameter[] {
    return this.stages.flatMap((s) => s.parameters());
  }

  override buffers(): { name: string; value: Tensor<'float32'> }[] {
    return this.stages.flatMap((s) => s.buffers());
  }
}
