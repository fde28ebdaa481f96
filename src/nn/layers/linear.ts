/** Fully connected layer: y = x W^T + b, weights [out, in] as PyTorch's `nn.Linear`. */
import { native } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import type { Rng } from '../../util/rng.js';
import { boolean, integer, oneOf, optional, options as checkOptions } from '../../validate.js';
import { INIT_KINDS, initWeight, layerRng } from '../init.js';
import type { InitKind } from '../init.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';
import { createParameter } from '../parameter.js';
import { BufferSlot } from './buffer-slot.js';
import { checkDim, checkGradOutput, checkInput, checkKeys, checkParameterSize, checkShape } from './checks.js';

export interface LinearOptions {
  /** Whether to add a learned bias (default true). */
  bias?: boolean;
  /** Weight initialisation (default 'kaiming-uniform'); the bias starts at zero. */
  init?: InitKind;
  /** Seed of the initialisation (ignored when `rng` is given). */
  seed?: number;
  /** Generator to draw the initial weights from. */
  rng?: Rng;
}

const OPTION_KEYS = ['bias', 'init', 'seed', 'rng'] as const;

/** `Linear(inFeatures, outFeatures, options)`: input [N, in] -> output [N, out]. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private readonly init: InitKind;
  private input: Tensor<'float32'> | undefined;
  private outputDims: number[] | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  constructor(inFeatures: number, outFeatures: number, options?: LinearOptions) {
    super();
    const opts = checkOptions<LinearOptions>('Linear options', options);
    checkKeys('Linear options', opts, OPTION_KEYS);
    this.inFeatures = integer('Linear inFeatures', inFeatures, 1);
    this.outFeatures = integer('Linear outFeatures', outFeatures, 1);
    const hasBias = optional(opts.bias, true, (v) => boolean('Linear options.bias', v));
    this.init = optional(opts.init, 'kaiming-uniform' as InitKind, (v) => oneOf('Linear options.init', v, INIT_KINDS));
    const dims = [outFeatures, inFeatures];
    checkParameterSize('Linear', 'weight', dims);
    const rng = layerRng(opts.seed === undefined ? undefined : integer('Linear options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER), opts.rng);
    this.weight = createParameter('weight', dims, true);
    initWeight(this.init, this.weight.value.data, dims, rng);
    this.bias = hasBias ? createParameter('bias', [outFeatures], false) : null;
  }

  override outputShape(inputShape: readonly number[]): number[] {
    const [n] = checkShape('Linear', inputShape, 2, '[N, features]');
    checkDim('Linear input shape', inputShape, 1, this.inFeatures, 'input features');
    return [n, this.outFeatures];
  }

  override macs(inputShape: readonly number[]): number {
    this.outputShape(inputShape);
    return this.inFeatures * this.outFeatures;
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('Linear', input, 2, '[N, features]');
    checkDim('Linear input', x.dims, 1, this.inFeatures, 'input features');
    const n = x.dims[0];
    const { inFeatures: k, outFeatures: m } = this;
    const output = this.output.take(n * m, this.reuseBuffers, x.data);
    await call(
      native.sgemm,
      {
        transA: false, transB: true, m: n, n: m, k,
        alpha: 1, a: x.data, lda: k, b: this.weight.value.data, ldb: k,
        beta: 0, c: output, ldc: m,
        bias: this.bias?.value.data ?? null, biasMode: this.bias ? 'col' : 'none',
      },
      2 * n * m * k,
    );
    this.input = this.training ? x : undefined;
    this.outputDims = [n, m];
    return new Tensor('float32', output, this.outputDims);
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    const x = checkGradOutput('Linear', gradOutput, this.input, this.outputDims);
    const n = x.dims[0];
    const { inFeatures: k, outFeatures: m } = this;
    const dy = gradOutput.data;
    // dW [out, in] = dY^T [out, N] . X [N, in]
    await call(
      native.sgemm,
      { transA: true, transB: false, m, n: k, k: n, alpha: 1, a: dy, lda: m, b: x.data, ldb: k, beta: 0, c: this.weight.grad, ldc: k },
      2 * n * m * k,
    );
    let gradInput: Float32Array | null = null;
    if (needInputGrad) {
      // dX [N, in] = dY [N, out] . W [out, in]
      gradInput = this.gradInput.take(n * k, this.reuseBuffers, dy);
      await call(
        native.sgemm,
        { transA: false, transB: false, m: n, n: k, k: m, alpha: 1, a: dy, lda: m, b: this.weight.value.data, ldb: k, beta: 0, c: gradInput, ldc: k },
        2 * n * m * k,
      );
    }
    if (this.bias) columnSums(dy, n, m, this.bias.grad);
    return gradInput ? new Tensor('float32', gradInput, x.dims) : gradOutput;
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    const inputs = [input, builder.addInitializer(this.weight.name, this.weight.value.clone())];
    if (this.bias) inputs.push(builder.addInitializer(this.bias.name, this.bias.value.clone()));
    return builder.addNode('Gemm', inputs, { alpha: 1, beta: 1, transA: 0, transB: 1 });
  }

  override config(): LayerConfig {
    return { type: 'Linear', inFeatures: this.inFeatures, outFeatures: this.outFeatures, bias: this.bias !== null, init: this.init };
  }

  override parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}

/** out[j] = sum_i a[i * cols + j], accumulated in float64 (a few thousand elements per batch). */
function columnSums(a: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let j = 0; j < cols; j++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += a[i * cols + j];
    out[j] = s;
  }
}
