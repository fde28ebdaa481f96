/** Max pooling over NCHW planes, remembering which input won each window for backward. */
import { native } from '../../binding.js';
import type { Pool2dGeometry } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { allocInt32 } from '../../memory.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import { options as checkOptions } from '../../validate.js';
import { Module } from '../module.js';
import type { LayerConfig } from '../module.js';
import { BufferSlot } from './buffer-slot.js';
import { passCost } from './cost.js';
import { checkGradOutput, checkInput, checkKeys } from './checks.js';
import { poolGeometry, poolOutputShape, poolWindow } from './pool-window.js';
import type { PoolWindow } from './pool-window.js';

export interface MaxPool2dOptions {
  /** Step of the window: a number or [h, w] (default: the kernel size). */
  stride?: number | [number, number];
  /** Implicit -infinity padding: a number, [h, w] or [top, left, bottom, right]; at most half the window. Default 0. */
  padding?: number | [number, number] | [number, number, number, number];
  /** Spacing of the window taps (default 1). */
  dilation?: number | [number, number];
}

const OPTION_KEYS = ['stride', 'padding', 'dilation'] as const;

interface ForwardState {
  inputDims: readonly number[];
  indices: Int32Array;
  geometry: Pool2dGeometry;
}

/** `MaxPool2d(kernelSize, options)`: [N, C, H, W] -> [N, C, H', W']. */
export class MaxPool2d extends Module {
  readonly window: Readonly<PoolWindow>;
  private state: ForwardState | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();
  private indices: Int32Array | undefined;

  constructor(kernelSize: number | [number, number], options?: MaxPool2dOptions) {
    super();
    const opts = checkOptions<MaxPool2dOptions>('MaxPool2d options', options);
    checkKeys('MaxPool2d options', opts, OPTION_KEYS);
    this.window = poolWindow('MaxPool2d', kernelSize, opts.stride, opts.padding, opts.dilation);
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return poolOutputShape('MaxPool2d', this.window, inputShape);
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('MaxPool2d', input, 4, '[N, C, H, W]');
    const outDims = this.outputShape(x.dims);
    const geometry = poolGeometry(this.window, x.dims, outDims);
    const size = outDims[0] * outDims[1] * outDims[2] * outDims[3];
    const output = this.output.take(size, this.reuseBuffers, x.data);
    let indices: Int32Array | null = null;
    if (this.training) {
      indices = this.reuseBuffers && this.indices?.length === size ? this.indices : allocInt32(size);
      this.indices = this.reuseBuffers ? indices : undefined;
    }
    const work = passCost(x.size) + 2 * size * this.window.kernelSize[0] * this.window.kernelSize[1];
    await call(native.maxPool2dForward, { ...geometry, input: x.data, output, indices }, work);
    this.state = indices ? { inputDims: x.dims, indices, geometry } : undefined;
    this.outputDims = outDims;
    return new Tensor('float32', output, outDims);
  }

  /** True when no window reaches outside the input (the fused Conv2d + MaxPool2d path needs it). */
  get unpadded(): boolean {
    return this.window.padding.every((p) => p === 0);
  }

  /**
   * forward() for an input that `compute` produces straight into this layer's output (a Conv2d
   * fused with this pool by Sequential): same buffers, indices and backward state as forward().
   * @internal
   */
  async forwardFused(
    inputDims: readonly number[],
    avoid: ArrayBufferView,
    compute: (geometry: Pool2dGeometry, output: Float32Array, indices: Int32Array | null) => Promise<void>,
  ): Promise<Tensor<'float32'>> {
    const outDims = this.outputShape(inputDims);
    const geometry = poolGeometry(this.window, inputDims, outDims);
    const size = outDims[0] * outDims[1] * outDims[2] * outDims[3];
    const output = this.output.take(size, this.reuseBuffers, avoid);
    let indices: Int32Array | null = null;
    if (this.training) {
      indices = this.reuseBuffers && this.indices?.length === size ? this.indices : allocInt32(size);
      this.indices = this.reuseBuffers ? indices : undefined;
    }
    await compute(geometry, output, indices);
    this.state = indices ? { inputDims: inputDims.slice(), indices, geometry } : undefined;
    this.outputDims = outDims;
    return new Tensor('float32', output, outDims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const { inputDims, indices, geometry } = checkGradOutput('MaxPool2d', gradOutput, this.state, this.outputDims);
    const gradInput = this.gradInput.take(inputDims[0] * inputDims[1] * inputDims[2] * inputDims[3], this.reuseBuffers, gradOutput.data);
    await call(native.maxPool2dBackward, { ...geometry, gradOutput: gradOutput.data, indices, gradInput }, passCost(gradInput.length));
    return new Tensor('float32', gradInput, inputDims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    const w = this.window;
    return builder.addNode('MaxPool', [input], {
      kernel_shape: [...w.kernelSize],
      strides: [...w.stride],
      pads: [...w.padding],
      dilations: [...w.dilation],
    });
  }

  override config(): LayerConfig {
    const w = this.window;
    return { type: 'MaxPool2d', kernelSize: [...w.kernelSize], stride: [...w.stride], padding: [...w.padding], dilation: [...w.dilation] };
  }
}
