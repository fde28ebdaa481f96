/** A chain of layers, each fed the previous one's output. */
import type { GraphBuilder } from '../../graph/ir.js';
import type { Tensor } from '../../tensor.js';
import { integer, rangeError, typeError } from '../../validate.js';
import { KilnRangeError } from '../../errors.js';
import { Module } from '../module.js';
import type { LayerConfig, Parameter } from '../module.js';
import { Conv2d } from './conv2d.js';
import { MaxPool2d } from './max-pool2d.js';
import { ReLU } from './relu.js';

/** Layers already inside a container: their parameter names carry that container's prefix. */
const adopted = new WeakSet<Module>();

/**
 * A probe on one layer's output inside a Sequential (see `Sequential.tap`): it sees the output of
 * every forward and may change the gradient flowing back into that layer, e.g. add the gradient of
 * a second loss on that intermediate activation (feature distillation does).
 */
export interface LayerTap {
  /** The layer's output; with `reuseBuffers` it is only valid until the next forward. */
  forward(output: Tensor<'float32'>): void | Promise<void>;
  /** d(loss)/d(output) from the layers after it; returns the gradient the layer's backward gets. */
  backward(gradOutput: Tensor<'float32'>): Tensor<'float32'> | Promise<Tensor<'float32'>>;
}

/**
 * `Sequential(...layers)`. Parameters and buffers of layer i are named `${i}.${name}` (nested
 * containers stack prefixes: '2.0.weight'), stable names the model file relies on. A layer can
 * belong to one container only.
 */
export class Sequential extends Module {
  readonly layers: readonly Module[];
  /** Indices of `layers` in the order forward runs them (see `executionOrder`). */
  private order: readonly number[];
  /** Taps by layer index (see `tap`). */
  private readonly taps = new Map<number, LayerTap>();

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
      // A plain Conv2d feeding an unpadded MaxPool2d: one native call, no full-size conv output
      // (unless a tap needs that output).
      if (next instanceof MaxPool2d && !this.taps.has(order[k]) && next.unpadded && layer instanceof Conv2d && Object.getPrototypeOf(layer) === Conv2d.prototype) {
        x = await layer.forwardMaxPool(x, next);
        k++;
        await this.taps.get(order[k])?.forward(x);
        continue;
      }
      x = await layer.forward(x);
      await this.taps.get(order[k])?.forward(x);
    }
    return x;
  }

  override async backward(gradOutput: Tensor<'float32'>, needInputGrad = true): Promise<Tensor<'float32'>> {
    let g = gradOutput;
    for (let k = this.order.length - 1; k >= 0; k--) {
      const tap = this.taps.get(this.order[k]);
      if (tap) g = await tap.backward(g);
      g = await this.layers[this.order[k]].backward(g, k > 0 || needInputGrad);
    }
    return g;
  }

  /**
   * Puts a tap on the output of `layers[index]` until the returned function removes it. While it
   * is on, that output is computed as such: the layer is not fused with the next one and a ReLU
   * there runs before its MaxPool2d, so the tap sees what `lower()` calls that layer's output (the
   * results are the same as without the tap, see `executionOrder`). One tap per layer.
   * @throws RangeError ERR_KILN_INVALID_ARG for an index outside the layers or a layer already tapped
   */
  tap(index: number, tap: LayerTap): () => void {
    const i = integer('Sequential.tap index', index, 0, this.layers.length - 1);
    if (tap === null || typeof tap !== 'object' || typeof tap.forward !== 'function' || typeof tap.backward !== 'function') {
      throw typeError('Sequential.tap tap', 'an object with forward(output) and backward(gradOutput) methods', tap);
    }
    if (this.taps.has(i)) throw rangeError('Sequential.tap index', 'a layer without a tap', `layer ${i}, already tapped`);
    this.taps.set(i, tap);
    this.order = Object.freeze(executionOrder(this.layers, this.taps));
    return () => {
      if (this.taps.get(i) !== tap) return;
      this.taps.delete(i);
      this.order = Object.freeze(executionOrder(this.layers, this.taps));
    };
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
 * `lower()` keeps the declared order. A ReLU or MaxPool2d with a tap (see `Sequential.tap`)
 * stays in declared order, so the tap sees that layer's own output.
 */
export function executionOrder(layers: readonly Module[], tapped: ReadonlyMap<number, unknown> = new Map()): number[] {
  const order = layers.map((_, i) => i);
  for (let i = 0; i + 1 < order.length; i++) {
    if (!tapped.has(order[i]) && !tapped.has(order[i + 1]) && layers[order[i]] instanceof ReLU && layers[order[i + 1]] instanceof MaxPool2d) {
      [order[i], order[i + 1]] = [order[i + 1], order[i]];
      i++;
    }
  }
  return order;
}
