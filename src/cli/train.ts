/** `kiln train`: train the SeedCNN with the default recipe (or overrides) and save it. */
import { stat } from 'node:fs/promises';

import { seedCNN } from '../nn/models.js';
import { save } from '../runtime/model-io.js';
import { defaultMnistRecipe, evaluate, train } from '../train/index.js';
import type { TrainOptions } from '../train/index.js';
import { checkOutputFile } from '../util/files.js';
import { loadDatasets } from './datasets.js';
import { Output, percent } from './output.js';

export interface TrainCommandOptions {
  dataset: string;
  dataDir?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: string;
  widthMultiplier: number;
  seed: number;
  out: string;
  json?: boolean;
}

export async function trainCommand(opts: TrainCommandOptions): Promise<void> {
  const out = new Output(opts);
  // Before any work: a bad --out would otherwise fail only after training.
  await checkOutputFile(opts.out, '--out');
  const { train: trainSet, test } = await loadDatasets(opts);
  const [c, h, w] = trainSet.imageShape;
  const model = seedCNN({ inChannels: c, height: h, width: w, numClasses: trainSet.numClasses, widthMultiplier: opts.widthMultiplier, seed: opts.seed });

  const recipe = defaultMnistRecipe;
  const options: TrainOptions = {
    ...recipe,
    seed: opts.seed,
    epochs: opts.epochs ?? recipe.epochs,
    batchSize: opts.batchSize ?? recipe.batchSize,
    optimizer: {
      ...recipe.optimizer,
      ...(opts.optimizer !== undefined ? { type: opts.optimizer as TrainOptions['optimizer']['type'] } : {}),
      ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
    },
    validation: test,
  };

  const batchesPerEpoch = options.dropLast ? Math.floor(trainSet.length / options.batchSize) : Math.ceil(trainSet.length / options.batchSize);
  out.line(`training SeedCNN on ${trainSet.name}: ${trainSet.length} images, ${options.epochs} epochs, batch ${options.batchSize}`);
  const format = 'epoch {epoch} |{bar}| {value}/{total} loss {loss} acc {acc}';
  const firstFrame = (epoch: number) => ({ epoch, loss: '-', acc: '-' });
  let bar = out.progress(batchesPerEpoch, format, firstFrame(1));
  let currentEpoch = 0;
  const started = performance.now();
  let history: Awaited<ReturnType<typeof train>>;
  try {
    history = await train(model, trainSet, {
      ...options,
      callbacks: {
        onBatchEnd: ({ epoch, batch, loss, accuracy }) => {
          if (epoch !== currentEpoch) {
            bar.stop();
            bar = out.progress(batchesPerEpoch, format, firstFrame(epoch + 1));
            currentEpoch = epoch;
          }
          bar.update(batch + 1, { epoch: epoch + 1, loss: loss.toFixed(4), acc: percent(accuracy) });
        },
        onEpochEnd: (e) => {
          bar.stop();
          out.line(
            `epoch ${e.epoch + 1}/${options.epochs}: loss ${e.trainLoss.toFixed(4)}, train ${percent(e.trainAccuracy)}` +
              (e.valAccuracy !== undefined ? `, held-out ${percent(e.valAccuracy)}` : '') +
              `, ${Math.round(e.imagesPerSecond)} images/s`,
          );
          currentEpoch = -1;
        },
      },
    });
  } finally {
    // Also on an error: a running bar would keep the process alive.
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const result = await evaluate(model, test, { batchSize: 256 });
  await save(model, opts.out, {
    inputShape: [c, h, w],
    metadata: {
      dataset: trainSet.name,
      testAccuracy: String(result.accuracy),
      epochs: String(history.epochs.length),
      seed: String(opts.seed),
    },
  });
  const bytes = (await stat(opts.out)).size;
  out.result(
    {
      model: opts.out,
      dataset: opts.dataset,
      epochs: history.epochs.length,
      trainImages: trainSet.length,
      testImages: test.length,
      testAccuracy: result.accuracy,
      testLoss: result.loss,
      trainSeconds: seconds,
      imagesPerSecond: (trainSet.length * history.epochs.length) / seconds,
      fileBytes: bytes,
    },
    () => `held-out accuracy ${percent(result.accuracy)} on ${test.length} images; saved ${opts.out} (${bytes} bytes)`,
  );
}
