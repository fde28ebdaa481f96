/** Rectified linear unit, elementwise: max(x, 0). */
import { native } from '../../binding.js';
import type { GraphBuilder } from '../../graph/ir.js';
import { call } from '../../runtime/async-policy.js';
import { Tensor } from '../../tensor.js';
import { Module } from '../module.js';
import type { LayerConfig } from '../module.js';
import { BufferSlot } from './buffer-slot.js';
import { passCost } from './cost.js';
import { checkGradOutput, checkInput, checkShape } from './checks.js';

/** `ReLU()`: any shape in, same shape out. */
export class ReLU extends Module {
  private lastOutput: Tensor<'float32'> | undefined;
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  override outputShape(inputShape: readonly number[]): number[] {
    return checkShape('ReLU', inputShape, null, '[N, ...]').slice();
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('ReLU', input, null, '[N, ...]');
    const output = this.output.take(x.size, this.reuseBuffers, x.data);
    await call(native.relu, { input: x.data, output, length: x.size }, passCost(x.size));
    const result = new Tensor('float32', output, x.dims);
    this.lastOutput = this.training ? result : undefined;
    return result;
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const output = checkGradOutput('ReLU', gradOutput, this.lastOutput, this.lastOutput?.dims);
    const gradInput = this.gradInput.take(output.size, this.reuseBuffers, gradOutput.data, output.data);
    await call(native.reluBackward, { output: output.data, gradOutput: gradOutput.data, gradInput, length: output.size }, passCost(output.size));
    return new Tensor('float32', gradInput, output.dims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    this.outputShape(inputShape);
    return builder.addNode('Relu', [input]);
  }

  override config(): LayerConfig {
    return { type: 'ReLU' };
  }
}
