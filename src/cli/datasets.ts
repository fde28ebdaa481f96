/** Resolves the CLI's --dataset / --data-dir options into train and test sets. */
import type { Dataset } from '../data/dataset.js';
import { cifar10 } from '../data/cifar10.js';
import { mnist } from '../data/mnist.js';
import { synthetic } from '../data/synthetic.js';
import { oneOf, rangeError } from '../validate.js';

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

/**
 * The seed of the train/held-out split to use with a model. `kiln train` records its seed and data
 * set in the file's metadata; evaluating that model on another seed's held-out split would score it
 * on images it trained on, so a different explicit --seed is refused and no --seed means the
 * recorded one. CIFAR-10's split is fixed by its files, so the seed does not matter there.
 */
export function splitSeed(dataset: string, seed: number | undefined, metadata: Record<string, unknown> | undefined, modelPath: string): number {
  const recordedSeed = metadata?.seed === undefined ? undefined : Number(metadata.seed);
  const recordedData = typeof metadata?.dataset === 'string' ? metadata.dataset.split('-')[0] : undefined;
  if (dataset === 'cifar10' || recordedData !== dataset || recordedSeed === undefined || !Number.isSafeInteger(recordedSeed)) return seed ?? 1;
  if (seed !== undefined && seed !== recordedSeed) {
    throw rangeError(
      '--seed',
      `${recordedSeed}, the split seed ${modelPath} was trained with on ${dataset} (the held-out split of another seed holds images it trained on)`,
      seed,
    );
  }
  return recordedSeed;
}
