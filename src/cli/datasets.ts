/** Resolves the CLI's --dataset / --data-dir options into train and test sets. */
import type { Dataset } from '../data/dataset.js';
import { cifar10 } from '../data/cifar10.js';
import { mnist } from '../data/mnist.js';
import { synthetic } from '../data/synthetic.js';
import { oneOf } from '../validate.js';

export const DATASET_NAMES = ['mnist', 'cifar10', 'synthetic'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface DatasetOptions {
  dataset: string;
  dataDir?: string;
  seed?: number;
}

export async function loadDatasets(options: DatasetOptions): Promise<{ train: Dataset; test: Dataset }> {
  const name = oneOf('--dataset', options.dataset, DATASET_NAMES);
  switch (name) {
    case 'mnist':
      return mnist({ seed: options.seed ?? 1 });
    case 'cifar10':
      if (!options.dataDir) throw new TypeError('Expected a directory holding CIFAR-10 binary files for --data-dir but received undefined');
      return cifar10(options.dataDir);
    case 'synthetic': {
      const seed = options.seed ?? 1;
      return {
        train: synthetic({ count: 2048, imageShape: [1, 28, 28], numClasses: 10, seed }),
        test: synthetic({ count: 512, imageShape: [1, 28, 28], numClasses: 10, seed: seed + 1 }),
      };
    }
  }
}
