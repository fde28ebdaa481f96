/** A chain of layers, each fed the previous one's output. */
import type { GraphBuilder } from '../../graph/ir.js';
import type { Tensor } from '../../tensor.js';
import { typeError } from '../../validate.js';
import { KilnRangeError } from '../../errors.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';

/** Layers already inside a container: their parameter names carry that container's prefix. */
const adopted = new WeakSet<Module>();

/**
 * `Sequential(...layers)`. Parameters and buffers of layer i are named `${i}.${name}` (nested
 * containers stack prefixes: '2.0.weight'), stable names the model file relies on. A layer can
 * belong to one container only.
 */
export class Sequential extends Module {
  readonly layers: readonly Module[];

  constructor(...layers: Module[]) {
    super();
    layers.forEach((layer, i) => {
      if (!(layer instanceof Module)) throw typeError(`Sequential layers[${i}]`, 'a Module', layer);
      if (adopted.has(layer)) {
        throw new KilnRangeError(`Expected a layer that is in no other container for Sequential layers[${i}] but received a ${layer.config().type} already inside one`);
      }
    });
    layers.forEach((layer, i) => {
      adopted.add(layer);
      for (const p of layer.parameters()) p.name = `${i}.${p.name}`;
      for (const b of layer.buffers()) b.name = `${i}.${b.name}`;
    });
    this.layers = Object.freeze(layers.slice());
  }

  override children(): Module[] {
    return this.layers.slice();
  }

  override outputShape(inputShape: readonly number[]): number[] {
    let shape = inputShape.slice();
    for (const layer of this.layers) shape = layer.outputShape(shape);
    return shape;
  }

  override macs(inputShape: readonly number[]): number {
    let shape = inputShape.slice();
    let total = 0;
    for (const layer of this.layers) {
      total += layer.macs(shape);
      shape = layer.outputShape(shape);
    }
    return total;
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    let x = input;
    for (const layer of this.layers) x = await layer.forward(x);
    return x;
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    let g = gradOutput;
    for (let i = this.layers.length - 1; i >= 0; i--) g = await this.layers[i].backward(g, i > 0 || needInputGrad);
    return g;
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    let value = input;
    let shape = inputShape.slice();
    for (const layer of this.layers) {
      value = layer.lower(builder, value, shape);
      shape = layer.outputShape(shape);
    }
    return value;
  }

  override config(): LayerConfig {
    return { type: 'Sequential', layers: this.layers.map((l) => l.config()) };
  }

  override parameters(): Parameter[] {
    return this.layers.flatMap((l) => l.parameters());
  }

  override buffers(): { name: string; value: Tensor<'float32'> }[] {
    return this.layers.flatMap((l) => l.buffers());
  }
}
