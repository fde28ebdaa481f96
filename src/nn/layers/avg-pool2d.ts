/** Average pooling over NCHW planes. */
import { native } from '../../binding.js';
import type { Pool2dGeometry } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import { boolean, optional, options as checkOptions } from '../../validate.js';
import { Module } from '../module.js';
import type { LayerConfig } from '../module.js';
import { BufferSlot } from './buffer-slot.js';
import { passCost } from './cost.js';
import { checkGradOutput, checkInput, checkKeys } from './checks.js';
import { poolGeometry, poolOutputShape, poolWindow } from './pool-window.js';
import type { PoolWindow } from './pool-window.js';

export interface AvgPool2dOptions {
  /** Step of the window: a number or [h, w] (default: the kernel size). */
  stride?: number | [number, number];
  /** Zero padding: a number, [h, w] or [top, left, bottom, right]; at most half the window. Default 0. */
  padding?: number | [number, number] | [number, number, number, number];
  /** Whether padded positions count in the divisor (default true, as PyTorch; ONNX count_include_pad). */
  countIncludePad?: boolean;
}

const OPTION_KEYS = ['stride', 'padding', 'countIncludePad'] as const;

/** `AvgPool2d(kernelSize, options)`: [N, C, H, W] -> [N, C, H', W']. */
export class AvgPool2d extends Module {
  readonly window: Readonly<PoolWindow>;
  readonly countIncludePad: boolean;
  private geometry: Pool2dGeometry | undefined;
  private inputDims: readonly number[] | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  constructor(kernelSize: number | [number, number], options?: AvgPool2dOptions) {
    super();
    const opts = checkOptions<AvgPool2dOptions>('AvgPool2d options', options);
    checkKeys('AvgPool2d options', opts, OPTION_KEYS);
    this.window = poolWindow('AvgPool2d', kernelSize, opts.stride, opts.padding, undefined);
    this.countIncludePad = optional(opts.countIncludePad, true, (v) => boolean('AvgPool2d options.countIncludePad', v));
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return poolOutputShape('AvgPool2d', this.window, inputShape);
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('AvgPool2d', input, 4, '[N, C, H, W]');
    const outDims = this.outputShape(x.dims);
    const geometry = poolGeometry(this.window, x.dims, outDims);
    const size = outDims[0] * outDims[1] * outDims[2] * outDims[3];
    const output = this.output.take(size, this.reuseBuffers, x.data);
    const work = passCost(x.size) + 2 * size * this.window.kernelSize[0] * this.window.kernelSize[1];
    await call(native.avgPool2dForward, { ...geometry, input: x.data, output, countIncludePad: this.countIncludePad }, work);
    this.geometry = this.training ? geometry : undefined;
    this.inputDims = x.dims;
    this.outputDims = outDims;
    return new Tensor('float32', output, outDims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const geometry = checkGradOutput('AvgPool2d', gradOutput, this.geometry, this.outputDims);
    const inputDims = this.inputDims as readonly number[];
    const gradInput = this.gradInput.take(inputDims[0] * inputDims[1] * inputDims[2] * inputDims[3], this.reuseBuffers, gradOutput.data);
    const work = passCost(gradInput.length) + 2 * gradOutput.size * this.window.kernelSize[0] * this.window.kernelSize[1];
    await call(native.avgPool2dBackward, { ...geometry, gradOutput: gradOutput.data, gradInput, countIncludePad: this.countIncludePad }, work);
    return new Tensor('float32', gradInput, inputDims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    const w = this.window;
    return builder.addNode('AveragePool', [input], {
      kernel_shape: [...w.kernelSize],
      strides: [...w.stride],
      pads: [...w.padding],
      count_include_pad: this.countIncludePad ? 1 : 0,
    });
  }

  override config(): LayerConfig {
    const w = this.window;
    return { type: 'AvgPool2d', kernelSize: [...w.kernelSize], stride: [...w.stride], padding: [...w.padding], countIncludePad: this.countIncludePad };
  }
}
