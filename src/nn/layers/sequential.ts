/** A chain of layers, each fed the previous one's output. */
import type { GraphBuilder } from '../../graph/ir.js';
import type { Tensor } from '../../tensor.js';
import { typeError } from '../../validate.js';
import { KilnRangeError } from '../../errors.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';
import { Conv2d } from './conv2d.js';
import { MaxPool2d } from './max-pool2d.js';
import { ReLU } from './relu.js';

/** Layers already inside a container: their parameter names carry that container's prefix. */
const adopted = new WeakSet<Module>();

/**
 * `Sequential(...layers)`. Parameters and buffers of layer i are named `${i}.${name}` (nested
 * containers stack prefixes: '2.0.weight'), stable names the model file relies on. A layer can
 * belong to one container only.
 */
export class Sequential extends Module {
  readonly layers: readonly Module[];
  /** Indices of `layers` in the order forward runs them (see `executionOrder`). */
  private readonly order: readonly number[];

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
    this.order = Object.freeze(executionOrder(this.layers));
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
    const order = this.order;
    for (let k = 0; k < order.length; k++) {
      const layer = this.layers[order[k]];
      const next = this.layers[order[k + 1]];
      // A plain Conv2d feeding an unpadded MaxPool2d: one native call, no full-size conv output.
      if (next instanceof MaxPool2d && next.unpadded && layer instanceof Conv2d && Object.getPrototypeOf(layer) === Conv2d.prototype) {
        x = await layer.forwardMaxPool(x, next);
        k++;
        continue;
      }
      x = await layer.forward(x);
    }
    return x;
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    let g = gradOutput;
    for (let k = this.order.length - 1; k >= 0; k--) g = await this.layers[this.order[k]].backward(g, k > 0 || needInputGrad);
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

/**
 * The order forward runs the layers in: declared order, except that a ReLU directly followed by a
 * MaxPool2d runs after it. The two commute exactly (max is monotonic, so relu(max(x)) =
 * max(relu(x)); padded positions never win a max), and so do the gradients: where the window max
 * is positive both orders route the gradient to the same (first) maximum, elsewhere it is zero
 * either way. The ReLU then touches a quarter of the elements (for 2x2 pooling) forward and back.
 * `lower()` keeps the declared order.
 */
export function executionOrder(layers: readonly Module[]): number[] {
  const order = layers.map((_, i) => i);
  for (let i = 0; i + 1 < order.length; i++) {
    if (layers[order[i]] instanceof ReLU && layers[order[i + 1]] instanceof MaxPool2d) {
      [order[i], order[i + 1]] = [order[i + 1], order[i]];
      i++;
    }
  }
  return order;
}
