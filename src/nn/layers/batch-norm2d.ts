/** Batch normalisation over the channels of NCHW images (PyTorch's `nn.BatchNorm2d`). */
import { native } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import { integer, number, optional, options as checkOptions } from '../../validate.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';
import { createParameter } from '../parameter.js';
import { BufferSlot } from './buffer-slot.js';
import { passCost } from './cost.js';
import { checkDim, checkGradOutput, checkInput, checkKeys, checkParameterSize, checkShape } from './checks.js';

export interface BatchNorm2dOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Weight of the new batch in the running statistics, PyTorch convention (default 0.1). */
  momentum?: number;
}

interface ForwardState {
  input: Tensor<'float32'>;
  spatial: number;
}

/**
 * `BatchNorm2d(channels, options)`: y = (x - mean) / sqrt(var + eps) * weight + bias per channel.
 * Training mode normalises with the batch statistics and updates `running_mean`/`running_var`
 * (unbiased variance); eval mode uses the running statistics.
 */
export class BatchNorm2d extends Module {
  readonly channels: number;
  readonly eps: number;
  readonly momentum: number;
  /** gamma, initialised to 1. */
  readonly weight: Parameter;
  /** beta, initialised to 0. */
  readonly bias: Parameter;
  readonly runningMean: { name: string; value: Tensor<'float32'> };
  readonly runningVar: { name: string; value: Tensor<'float32'> };
  private readonly saveMean: Float32Array;
  private readonly saveInvStd: Float32Array;
  private state: ForwardState | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  constructor(channels: number, options?: BatchNorm2dOptions) {
    super();
    const opts = checkOptions<BatchNorm2dOptions>('BatchNorm2d options', options);
    checkKeys('BatchNorm2d options', opts, ['eps', 'momentum']);
    this.channels = integer('BatchNorm2d channels', channels, 1);
    checkParameterSize('BatchNorm2d', 'channels', [channels]);
    this.eps = optional(opts.eps, 1e-5, (v) => number('BatchNorm2d options.eps', v, 0, Infinity, true));
    this.momentum = optional(opts.momentum, 0.1, (v) => number('BatchNorm2d options.momentum', v, 0, 1));
    this.weight = createParameter('weight', [channels], false);
    this.weight.value.data.fill(1);
    this.bias = createParameter('bias', [channels], false);
    this.runningMean = { name: 'running_mean', value: new Tensor('float32', new Float32Array(channels), [channels]) };
    this.runningVar = { name: 'running_var', value: new Tensor('float32', new Float32Array(channels).fill(1), [channels]) };
    this.saveMean = new Float32Array(channels);
    this.saveInvStd = new Float32Array(channels);
  }

  override outputShape(inputShape: readonly number[]): number[] {
    checkShape('BatchNorm2d', inputShape, 4, '[N, C, H, W]');
    checkDim('BatchNorm2d input shape', inputShape, 1, this.channels, 'channels');
    return inputShape.slice();
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('BatchNorm2d', input, 4, '[N, C, H, W]');
    checkDim('BatchNorm2d input', x.dims, 1, this.channels, 'channels');
    const spatial = x.dims[2] * x.dims[3];
    const output = this.output.take(x.size, this.reuseBuffers, x.data);
    await call(
      native.batchNorm2dForward,
      {
        input: x.data, output, gamma: this.weight.value.data, beta: this.bias.value.data,
        runningMean: this.runningMean.value.data, runningVar: this.runningVar.value.data,
        saveMean: this.saveMean, saveInvStd: this.saveInvStd,
        batch: x.dims[0], channels: this.channels, spatial, training: this.training, momentum: this.momentum, eps: this.eps,
      },
      passCost(x.size, 3),
    );
    this.state = this.training ? { input: x, spatial } : undefined;
    this.outputDims = x.dims.slice();
    return new Tensor('float32', output, x.dims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const { input, spatial } = checkGradOutput('BatchNorm2d', gradOutput, this.state, this.outputDims);
    const gradInput = this.gradInput.take(input.size, this.reuseBuffers, gradOutput.data, input.data);
    await call(
      native.batchNorm2dBackward,
      {
        input: input.data, gradOutput: gradOutput.data, gamma: this.weight.value.data,
        saveMean: this.saveMean, saveInvStd: this.saveInvStd,
        gradInput, gradGamma: this.weight.grad, gradBeta: this.bias.grad,
        batch: input.dims[0], channels: this.channels, spatial,
      },
      passCost(input.size, 3),
    );
    return new Tensor('float32', gradInput, input.dims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    const inputs = [
      input,
      builder.addInitializer(this.weight.name, this.weight.value.clone()),
      builder.addInitializer(this.bias.name, this.bias.value.clone()),
      builder.addInitializer(this.runningMean.name, this.runningMean.value.clone()),
      builder.addInitializer(this.runningVar.name, this.runningVar.value.clone()),
    ];
    // ONNX weighs the old running value by `momentum`: the complement of PyTorch's.
    return builder.addNode('BatchNormalization', inputs, { epsilon: this.eps, momentum: 1 - this.momentum });
  }

  override config(): LayerConfig {
    return { type: 'BatchNorm2d', channels: this.channels, eps: this.eps, momentum: this.momentum };
  }

  override parameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  override buffers(): { name: string; value: Tensor<'float32'> }[] {
    return [this.runningMean, this.runningVar];
  }
}
