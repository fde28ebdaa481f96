/**
 * Which layers can be pruned and which are: every Conv2d and Linear of a model, named by their
 * weight's prefix ('3' for '3.weight'), and the user's choice of them (names or a predicate).
 */
import { KilnRangeError, KilnTypeError } from '../errors.js';
import { BatchNorm2d } from '../nn/layers/batch-norm2d.js';
import { Conv2d } from '../nn/layers/conv2d.js';
import { Flatten } from '../nn/layers/flatten.js';
import { Linear } from '../nn/layers/linear.js';
import { Sequential } from '../nn/layers/sequential.js';
import type { Module, Parameter } from '../nn/module.js';
import { typeError } from '../validate.js';

/** A Conv2d or Linear whose weight can be masked. */
export interface PrunableLayer {
  /** The weight's name without '.weight' (e.g. '3'); what `layers` options name. */
  name: string;
  type: 'Conv2d' | 'Linear';
  module: Conv2d | Linear;
  weight: Parameter;
  bias: Parameter | null;
  /** Output channels / features: the first weight dimension. */
  outputs: number;
  /** Elements of one output's weights: in/groups*kh*kw for a conv (OIHW), in for a Linear ([out, in]). */
  reduction: number;
  /**
   * Weights of one output per input channel, in the order units along the reduction follow
   * (patterns.ts): kh*kw for a conv; for a Linear right after a Flatten of a [C, H, W] feature map,
   * H*W (its inputs are c*H*W + s, and int8 lowering reads them per pixel, channels inner); else 1.
   */
  spatial: number;
  /** The BatchNorm2d directly after this conv in its Sequential, if any. */
  batchNorm?: BatchNorm2d;
}

/**
 * Per Linear right after a Flatten of a 4-D activation: the flattened map's H*W, found by walking the
 * model's layers over its inputShape (empty when the model has none or a layer's shape is unknown).
 */
function flattenedPlanes(model: Module): Map<Module, number> {
  const planes = new Map<Module, number>();
  if (model.inputShape === undefined) return planes;
  const walk = (m: Module, shape: number[]): number[] => {
    if (!(m instanceof Sequential)) return m.outputShape(shape);
    const children = m.children();
    children.forEach((c, i) => {
      if (c instanceof Flatten && shape.length === 4 && children[i + 1] instanceof Linear) planes.set(children[i + 1], shape[2] * shape[3]);
      shape = walk(c, shape);
    });
    return shape;
  };
  try {
    walk(model, [1, ...model.inputShape]);
  } catch {
    // A layer that cannot say its output shape: the Linears past it keep the plain order.
  }
  return planes;
}

/** A selection: layer names, or a predicate over the prunable layers. */
export type LayerSelection = readonly string[] | ((layer: PrunableLayer) => boolean);

/** Every Conv2d and Linear of `model`, in forward order. */
export function prunableLayers(model: Module): PrunableLayer[] {
  const found: PrunableLayer[] = [];
  const planes = flattenedPlanes(model);
  const visit = (m: Module, next: Module | undefined): void => {
    if (m instanceof Conv2d || m instanceof Linear) {
      const [outputs, ...rest] = m.weight.value.dims;
      found.push({
        name: m.weight.name.replace(/\.?weight$/, '') || 'weight',
        type: m instanceof Conv2d ? 'Conv2d' : 'Linear',
        module: m,
        weight: m.weight,
        bias: m.bias,
        outputs,
        reduction: rest.reduce((a, b) => a * b, 1),
        spatial: m instanceof Conv2d ? rest.slice(1).reduce((a, b) => a * b, 1) : planes.get(m) ?? 1,
        ...(m instanceof Conv2d && next instanceof BatchNorm2d ? { batchNorm: next } : {}),
      });
      return;
    }
    const children = m.children();
    children.forEach((c, i) => visit(c, m instanceof Sequential ? children[i + 1] : undefined));
  };
  visit(model, undefined);
  return found;
}

/**
 * Every layer of `model` by the path its parameters are named with ('1' for the ReLU at index 1
 * of a Sequential, '2.0' inside a nested one); prunable layers included.
 */
function layerPaths(model: Module): Map<string, Module> {
  const paths = new Map<string, Module>();
  const visit = (m: Module, path: string): void => {
    if (path !== '') paths.set(path, m);
    m.children().forEach((c, i) => visit(c, path === '' ? String(i) : `${path}.${i}`));
  };
  visit(model, '');
  return paths;
}

/**
 * The error for a name that is not a prunable layer: a TypeError naming what the layer is when
 * the model has a layer (or a parameter) of that name, the RangeError of an unknown name otherwise.
 */
function notPrunable(model: Module, name: string, n: string, list: string): Error {
  const paths = layerPaths(model);
  const owner = paths.get(n) ?? paths.get(n.replace(/\.[^.]*$/, ''));
  if (owner && !(owner instanceof Conv2d || owner instanceof Linear)) {
    const type = owner.config().type;
    const what = owner.parameters().length === 0 ? 'which has no weight to prune' : 'which has no Conv2d or Linear weight to prune';
    return new KilnTypeError(`Expected a prunable layer (a Conv2d or Linear) for ${name} but received '${n}', a ${type} layer ${what}: the model's prunable layers are ${list || 'none'}`);
  }
  return new KilnRangeError(`Expected a prunable layer for ${name} but received '${n}': the model's prunable layers are ${list || 'none'}`);
}

/**
 * The layers to prune. Names must exist (an unknown name throws, listing the prunable ones). By
 * default every prunable layer except the first Conv2d and the last Linear, which hold few weights
 * and cost the most accuracy.
 * @throws RangeError ERR_KILN_INVALID_ARG for an unknown name or an empty selection; TypeError
 *   ERR_KILN_INVALID_ARG for the name of a layer that exists but has no Conv2d/Linear weight (a
 *   ReLU, a pool, a BatchNorm2d: the message says which)
 */
export function selectLayers(model: Module, selection?: LayerSelection, name = 'options.layers'): PrunableLayer[] {
  const all = prunableLayers(model);
  const list = all.map((l) => `'${l.name}' (${l.type} ${l.weight.value.dims.join('x')})`).join(', ');
  let chosen: PrunableLayer[];
  if (selection === undefined) {
    const firstConv = all.find((l) => l.type === 'Conv2d');
    const lastLinear = [...all].reverse().find((l) => l.type === 'Linear');
    chosen = all.filter((l) => l !== firstConv && l !== lastLinear);
  } else if (typeof selection === 'function') {
    chosen = all.filter((l) => selection(l) === true);
  } else if (Array.isArray(selection)) {
    chosen = selection.map((n, i) => {
      if (typeof n !== 'string') throw typeError(`${name}[${i}]`, 'a layer name', n);
      const layer = all.find((l) => l.name === n || l.weight.name === n);
      if (!layer) throw notPrunable(model, `${name}[${i}]`, n, list);
      return layer;
    });
    chosen = all.filter((l) => chosen.includes(l));
  } else {
    throw typeError(name, 'an array of layer names or a predicate', selection);
  }
  if (chosen.length === 0) throw new KilnRangeError(`Expected at least one layer to prune for ${name} but the selection is empty; the model's prunable layers are ${list || 'none'}`);
  return chosen;
}
