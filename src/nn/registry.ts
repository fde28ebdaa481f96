/**
 * Rebuilds layers from `config()` output, for the model file. The config may come from a corrupt
 * file, so every field is checked: the layer constructors validate values (TypeError/RangeError
 * naming the field), this file checks structure (object, known type, nesting depth).
 */
import { ErrorCode, KilnError, KilnRangeError } from '../errors.js';
import { describe, typeError } from '../validate.js';
import { AvgPool2d } from './layers/avg-pool2d.js';
import { BatchNorm2d } from './layers/batch-norm2d.js';
import { Conv2d } from './layers/conv2d.js';
import { Dropout } from './layers/dropout.js';
import { Flatten } from './layers/flatten.js';
import { Linear } from './layers/linear.js';
import { MaxPool2d } from './layers/max-pool2d.js';
import { ReLU } from './layers/relu.js';
import { Sequential } from './layers/sequential.js';
import { checkKeys } from './layers/checks.js';
import type { LayerConfig, Module } from './module.js';

/** Deepest nesting of containers accepted (a hostile config must not exhaust the stack). */
const MAX_DEPTH = 64;

type Fields = Record<string, unknown>;
type Builder = (c: Fields, path: string, depth: number) => Module;

/** Config fields per layer type (besides `type`) and how to build the layer from them. */
const BUILDERS: Record<string, { keys: readonly string[]; build: Builder }> = {
  Conv2d: {
    keys: ['inChannels', 'outChannels', 'kernelSize', 'stride', 'padding', 'dilation', 'groups', 'bias', 'init'],
    build: (c) =>
      new Conv2d(c.inChannels as number, c.outChannels as number, c.kernelSize as number, {
        ...pick(c, ['stride', 'padding', 'dilation', 'groups', 'bias', 'init']),
      }),
  },
  Linear: {
    keys: ['inFeatures', 'outFeatures', 'bias', 'init'],
    build: (c) => new Linear(c.inFeatures as number, c.outFeatures as number, pick(c, ['bias', 'init'])),
  },
  ReLU: { keys: [], build: () => new ReLU() },
  Flatten: { keys: [], build: () => new Flatten() },
  MaxPool2d: {
    keys: ['kernelSize', 'stride', 'padding', 'dilation'],
    build: (c) => new MaxPool2d(c.kernelSize as number, pick(c, ['stride', 'padding', 'dilation'])),
  },
  AvgPool2d: {
    keys: ['kernelSize', 'stride', 'padding', 'countIncludePad'],
    build: (c) => new AvgPool2d(c.kernelSize as number, pick(c, ['stride', 'padding', 'countIncludePad'])),
  },
  Dropout: { keys: ['p', 'seed'], build: (c) => new Dropout(c.p as number, pick(c, ['seed'])) },
  BatchNorm2d: { keys: ['channels', 'eps', 'momentum'], build: (c) => new BatchNorm2d(c.channels as number, pick(c, ['eps', 'momentum'])) },
  Sequential: {
    keys: ['layers'],
    build: (c, path, depth) => {
      const layers = c.layers;
      if (!Array.isArray(layers)) throw typeError(`${path}.layers`, 'an array of layer configs', layers);
      return new Sequential(...layers.map((l, i) => build(l, `${path}.layers[${i}]`, depth + 1)));
    },
  },
};

/** Layer types `moduleFromConfig` knows. */
export const LAYER_TYPES: readonly string[] = Object.keys(BUILDERS);

/**
 * Builds a fresh layer (or tree of layers) from a `LayerConfig`, e.g. `module.config()`. Weights
 * are freshly initialised; the model loader then copies the saved tensors in by name.
 * @throws TypeError/RangeError (`ERR_KILN_INVALID_ARG`) naming the bad field, e.g.
 *   `config.layers[3].outChannels`; KilnError `ERR_KILN_UNSUPPORTED_OP` for an unknown layer type.
 */
export function moduleFromConfig(config: LayerConfig): Module {
  return build(config, 'config', 0);
}

function build(config: unknown, path: string, depth: number): Module {
  if (depth > MAX_DEPTH) throw new KilnRangeError(`Expected at most ${MAX_DEPTH} nested containers for ${path} but received more`);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw typeError(path, 'a layer config object', config);
  const fields = config as Fields;
  const type = fields.type;
  if (typeof type !== 'string') throw typeError(`${path}.type`, 'a layer type name', type);
  const entry = Object.hasOwn(BUILDERS, type) ? BUILDERS[type] : undefined;
  if (entry === undefined) {
    throw new KilnError(
      ErrorCode.UNSUPPORTED_OP,
      `Expected one of the layer types ${LAYER_TYPES.join(', ')} for ${path}.type but received ${describe(type)}`,
    );
  }
  checkKeys(path, fields, ['type', ...entry.keys]);
  if (type === 'Sequential') return entry.build(fields, path, depth);
  try {
    return entry.build(fields, path, depth);
  } catch (err) {
    // Say where in the tree the bad layer is; the constructor's message names the field.
    if (err instanceof Error && 'code' in err) err.message = `${path} (${type}): ${err.message}`;
    throw err;
  }
}

/** The listed fields that are present (so constructor defaults apply to absent ones). */
function pick(c: Fields, keys: readonly string[]): Fields {
  const out: Fields = {};
  for (const k of keys) if (c[k] !== undefined) out[k] = c[k];
  return out;
}
