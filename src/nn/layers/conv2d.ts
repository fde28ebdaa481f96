/** 2-D convolution over NCHW images with OIHW weights: stride, padding, dilation, groups. */
import { native } from '../../binding.js';
import type { Conv2dGeometry } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import type { Rng } from '../../util/rng.js';
import { boolean, integer, oneOf, optional, options as checkOptions, rangeError } from '../../validate.js';
import { INIT_KINDS, initWeight, layerRng } from '../init.js';
import type { InitKind } from '../init.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';
import { createParameter } from '../parameter.js';
import { BufferSlot } from './buffer-slot.js';
import type { MaxPool2d } from './max-pool2d.js';
import { checkDim, checkGradOutput, checkInput, checkKeys, checkParameterSize, checkShape } from './checks.js';
import { outputPlane, pads, pair } from './geometry.js';
import type { Pads, Pair } from './geometry.js';

export interface Conv2dOptions {
  /** Step of the window: a number or [h, w] (default 1). */
  stride?: number | [number, number];
  /** Zero padding: a number, [h, w], [top, left, bottom, right] or 'same' (stride 1 only). Default 0. */
  padding?: number | [number, number] | [number, number, number, number] | 'same';
  /** Spacing of the kernel taps: a number or [h, w] (default 1). */
  dilation?: number | [number, number];
  /** Channel groups; both channel counts must be divisible by it (default 1; = inChannels for depthwise). */
  groups?: number;
  /** Whether to add a learned per-channel bias (default true). */
  bias?: boolean;
  /** Weight initialisation (default 'kaiming-uniform'); biases start at zero. */
  init?: InitKind;
  /** Seed of the initialisation (ignored when `rng` is given). */
  seed?: number;
  /** Generator to draw the initial weights from (shared across layers by model builders). */
  rng?: Rng;
}

const OPTION_KEYS = ['stride', 'padding', 'dilation', 'groups', 'bias', 'init', 'seed', 'rng'] as const;

interface ForwardState {
  input: Tensor<'float32'>;
  geometry: Conv2dGeometry;
  flops: number;
}

/**
 * `Conv2d(inChannels, outChannels, kernelSize, options)`: weight [out, in/groups, kh, kw] and bias
 * [out], like PyTorch's `nn.Conv2d`. Input [N, inChannels, H, W] -> output [N, outChannels, H', W'].
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  /** [top, left, bottom, right] */
  readonly padding: Pads;
  readonly dilation: Pair;
  readonly groups: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private readonly init: InitKind;
  private state: ForwardState | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], options?: Conv2dOptions) {
    super();
    const opts = checkOptions<Conv2dOptions>('Conv2d options', options);
    checkKeys('Conv2d options', opts, OPTION_KEYS);
    this.inChannels = integer('Conv2d inChannels', inChannels, 1);
    this.outChannels = integer('Conv2d outChannels', outChannels, 1);
    this.kernelSize = pair('Conv2d kernelSize', kernelSize, 1);
    this.stride = pair('Conv2d options.stride', opts.stride ?? 1, 1);
    this.dilation = pair('Conv2d options.dilation', opts.dilation ?? 1, 1);
    this.padding = pads('Conv2d options.padding', opts.padding ?? 0, this.kernelSize, this.dilation, this.stride);
    this.groups = integer('Conv2d options.groups', opts.groups ?? 1, 1);
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw rangeError('Conv2d options.groups', `a divisor of inChannels (${inChannels}) and outChannels (${outChannels})`, this.groups);
    }
    const hasBias = optional(opts.bias, true, (v) => boolean('Conv2d options.bias', v));
    this.init = optional(opts.init, 'kaiming-uniform' as InitKind, (v) => oneOf('Conv2d options.init', v, INIT_KINDS));
    const dims = [outChannels, inChannels / this.groups, ...this.kernelSize];
    checkParameterSize('Conv2d', 'weight', dims);
    const rng = layerRng(opts.seed === undefined ? undefined : integer('Conv2d options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER), opts.rng);
    this.weight = createParameter('weight', dims, true);
    initWeight(this.init, this.weight.value.data, dims, rng);
    this.bias = hasBias ? createParameter('bias', [outChannels], false) : null;
  }

  /** Multiply-accumulates per output element. */
  private get tapsPerOutput(): number {
    return (this.inChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
  }

  override outputShape(inputShape: readonly number[]): number[] {
    const [n, c, h, w] = checkShape('Conv2d', inputShape, 4, '[N, C, H, W]');
    checkDim('Conv2d input shape', inputShape, 1, this.inChannels, 'input channels');
    void c;
    const [oh, ow] = outputPlane('Conv2d', h, w, this.kernelSize, this.stride, this.padding, this.dilation);
    return [n, this.outChannels, oh, ow];
  }

  override macs(inputShape: readonly number[]): number {
    const [, , oh, ow] = this.outputShape(inputShape);
    return this.outChannels * oh * ow * this.tapsPerOutput;
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('Conv2d', input, 4, '[N, C, H, W]');
    const { geometry, outDims, flops } = this.plan(x);
    const [n, , oh, ow] = outDims;
    const output = this.output.take(n * this.outChannels * oh * ow, this.reuseBuffers, x.data);
    await call(native.conv2dForward, { ...geometry, input: x.data, weight: this.weight.value.data, bias: this.bias?.value.data ?? null, output }, flops);
    this.state = this.training ? { input: x, geometry, flops } : undefined;
    this.outputDims = outDims;
    return new Tensor('float32', output, outDims);
  }

  /**
   * `pool.forward(this.forward(input))` in one native call that never writes the full-size
   * convolution output (on AVX-512 each band of output rows is pooled while in cache); both layers
   * keep what their backward needs, and the results are bit for bit those of the two calls.
   * Sequential uses it for a Conv2d directly followed by an unpadded MaxPool2d.
   * @internal
   */
  async forwardMaxPool(input: Tensor<'float32'>, pool: MaxPool2d): Promise<Tensor<'float32'>> {
    const x = checkInput('Conv2d', input, 4, '[N, C, H, W]');
    const { geometry, outDims, flops } = this.plan(x);
    const result = await pool.forwardFused(outDims, x.data, (p, output, indices) =>
      call(
        native.conv2dMaxPoolForward,
        {
          ...geometry,
          input: x.data,
          weight: this.weight.value.data,
          bias: this.bias?.value.data ?? null,
          output,
          indices,
          poolKernelH: p.kernelH,
          poolKernelW: p.kernelW,
          poolStrideH: p.strideH,
          poolStrideW: p.strideW,
          poolDilationH: p.dilationH,
          poolDilationW: p.dilationW,
          poolOutHeight: p.outHeight,
          poolOutWidth: p.outWidth,
        },
        flops,
      ),
    );
    this.state = this.training ? { input: x, geometry, flops } : undefined;
    this.outputDims = outDims;
    return result;
  }

  /** The native geometry, output shape and cost of a forward over `x`. */
  private plan(x: Tensor<'float32'>): { geometry: Conv2dGeometry; outDims: number[]; flops: number } {
    const outDims = this.outputShape(x.dims);
    const [n, , oh, ow] = outDims;
    const geometry: Conv2dGeometry = {
      batch: n,
      inChannels: this.inChannels,
      inHeight: x.dims[2],
      inWidth: x.dims[3],
      outChannels: this.outChannels,
      outHeight: oh,
      outWidth: ow,
      kernelH: this.kernelSize[0],
      kernelW: this.kernelSize[1],
      strideH: this.stride[0],
      strideW: this.stride[1],
      padTop: this.padding[0],
      padLeft: this.padding[1],
      padBottom: this.padding[2],
      padRight: this.padding[3],
      dilationH: this.dilation[0],
      dilationW: this.dilation[1],
      groups: this.groups,
    };
    const flops = 2 * n * this.outChannels * oh * ow * this.tapsPerOutput;
    return { geometry, outDims, flops };
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    const { input, geometry, flops } = checkGradOutput('Conv2d', gradOutput, this.state, this.outputDims);
    const gradInput = needInputGrad ? this.gradInput.take(input.size, this.reuseBuffers, gradOutput.data) : null;
    await call(
      native.conv2dBackward,
      {
        ...geometry,
        input: input.data,
        weight: this.weight.value.data,
        gradOutput: gradOutput.data,
        gradInput,
        gradWeight: this.weight.grad,
        gradBias: this.bias?.grad ?? null,
      },
      needInputGrad ? 2 * flops : flops,
    );
    // Without an input gradient the result is unspecified (see Module.backward).
    return gradInput ? new Tensor('float32', gradInput, input.dims) : gradOutput;
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    const inputs = [input, builder.addInitializer(this.weight.name, this.weight.value.clone())];
    if (this.bias) inputs.push(builder.addInitializer(this.bias.name, this.bias.value.clone()));
    return builder.addNode('Conv', inputs, {
      kernel_shape: [...this.kernelSize],
      strides: [...this.stride],
      pads: [...this.padding],
      dilations: [...this.dilation],
      group: this.groups,
    });
  }

  override config(): LayerConfig {
    return {
      type: 'Conv2d',
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      kernelSize: [...this.kernelSize],
      stride: [...this.stride],
      padding: [...this.padding],
      dilation: [...this.dilation],
      groups: this.groups,
      bias: this.bias !== null,
      init: this.init,
    };
  }

  override parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}
