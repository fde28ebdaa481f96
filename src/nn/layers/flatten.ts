/** Flattens every dimension after the batch: [N, C, H, W] -> [N, C*H*W]. No copy. */
import type { GraphBuilder } from '../../graph/ir.js';
import type { Tensor } from '../../tensor.js';
import { Module } from '../module.js';
import type { LayerConfig } from '../module.js';
import { checkGradOutput, checkInput, checkShape } from './checks.js';

/** `Flatten()`: ONNX Flatten with axis 1. Output and input gradient are views of their sources. */
export class Flatten extends Module {
  private inputDims: readonly number[] | undefined;
  private outputDims: number[] | undefined;

  override outputShape(inputShape: readonly number[]): number[] {
    const shape = checkShape('Flatten', inputShape, null, '[N, ...]');
    return [shape[0], shape.slice(1).reduce((a, b) => a * b, 1)];
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('Flatten', input, null, '[N, ...]');
    const dims = this.outputShape(x.dims);
    this.inputDims = this.training ? x.dims : undefined;
    this.outputDims = dims;
    return x.reshape(dims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const inputDims = checkGradOutput('Flatten', gradOutput, this.inputDims, this.outputDims);
    return gradOutput.reshape(inputDims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    return builder.addNode('Flatten', [input], { axis: 1 });
  }

  override config(): LayerConfig {
    return { type: 'Flatten' };
  }
}
