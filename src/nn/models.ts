/** Ready-made networks. */
import { Rng } from '../util/rng.js';
import { integer, number, optional, options as checkOptions, typeError } from '../validate.js';
import { Conv2d } from './layers/conv2d.js';
import { Flatten } from './layers/flatten.js';
import { Linear } from './layers/linear.js';
import { MaxPool2d } from './layers/max-pool2d.js';
import { ReLU } from './layers/relu.js';
import { Sequential } from './layers/sequential.js';
import { checkKeys } from './layers/checks.js';

export interface SeedCnnOptions {
  /** Channels of the input images (1 for MNIST, 3 for CIFAR-10). */
  inChannels: number;
  height: number;
  width: number;
  numClasses: number;
  /** Scales every hidden width (32, 64, 128) and rounds, at least 1 channel (default 1). */
  widthMultiplier?: number;
  /** Seed of the weight initialisation (default 0). */
  seed?: number;
  /**
   * Zero padding of both 3x3 convolutions: 0 (default, 'valid': 28x28 -> 64*5*5) or 1 ('same', the
   * layers of the source article: 28x28 -> 14x14 -> 7x7, 64*7*7 = 3136; 32x32 -> 64*8*8 = 4096).
   */
  padding?: 0 | 1;
}

/**
 * SeedCNN: conv3x3 -> 32, ReLU, maxpool 2, conv3x3 -> 64, ReLU, maxpool 2, Flatten, Linear -> 128,
 * ReLU, Linear -> numClasses (hidden widths times `widthMultiplier`). Unpadded convolutions by
 * default, 'same' ones with `padding: 1`; the first Linear's input size follows from the image size
 * (unpadded: 28x28 -> 64*5*5, 32x32 -> 64*6*6; padded: 64*7*7, 64*8*8).
 *
 * @throws {RangeError} code ERR_KILN_INVALID_ARG for an unknown option or one out of range
 * (`padding` other than 0 or 1); ERR_KILN_SHAPE_MISMATCH for images too small for two conv+pool stages.
 */
export function seedCNN(options: SeedCnnOptions): Sequential {
  if (options === undefined) throw typeError('seedCNN options', 'an options object', options);
  const opts = checkOptions<SeedCnnOptions>('seedCNN options', options);
  checkKeys('seedCNN options', opts, ['inChannels', 'height', 'width', 'numClasses', 'widthMultiplier', 'seed', 'padding']);
  const inChannels = integer('seedCNN options.inChannels', opts.inChannels, 1);
  const height = integer('seedCNN options.height', opts.height, 1);
  const width = integer('seedCNN options.width', opts.width, 1);
  const numClasses = integer('seedCNN options.numClasses', opts.numClasses, 1);
  const multiplier = optional(opts.widthMultiplier, 1, (v) => number('seedCNN options.widthMultiplier', v, 0, 64, true));
  const seed = optional(opts.seed, 0, (v) => integer('seedCNN options.seed', v, 0, Number.MAX_SAFE_INTEGER));
  const padding = optional(opts.padding, 0, (v) => integer('seedCNN options.padding', v, 0, 1));
  const widthOf = (base: number): number => Math.max(1, Math.round(base * multiplier));
  const [c1, c2, hidden] = [widthOf(32), widthOf(64), widthOf(128)];

  const rng = new Rng(seed);
  const features = [
    new Conv2d(inChannels, c1, 3, { rng, padding }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(c1, c2, 3, { rng, padding }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
  ];
  // Derive the flattened size by walking the feature layers over the input shape.
  let shape = [1, inChannels, height, width];
  for (const layer of features) shape = layer.outputShape(shape);
  const model = new Sequential(...features, new Linear(shape[1], hidden, { rng }), new ReLU(), new Linear(hidden, numClasses, { rng }));
  model.inputShape = Object.freeze([inChannels, height, width]);
  return model;
}
