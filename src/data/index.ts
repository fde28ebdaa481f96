/** Data sets and the seeded `DataLoader`. */
export type { Batch, Dataset } from './dataset.js';
export { mnist, type MnistOptions } from './mnist.js';
export {
  cifar10,
  readCifar10Batch,
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_STATS,
  type ChannelNormalization,
  type Cifar10BatchOptions,
  type Cifar10Options,
} from './cifar10.js';
export { synthetic, type SyntheticOptions } from './synthetic.js';
export { DataLoader, type AugmentOptions, type DataLoaderOptions } from './loader.js';
