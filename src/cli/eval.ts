/** `kiln eval`: accuracy of a saved model on a data set's held-out split, run on the inference runtime. */
import { sessionCorrect } from '../runtime/accuracy.js';
import { InferenceSession } from '../runtime/session.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource } from './model-source.js';
import { Output, percent } from './output.js';

export interface EvalCommandOptions {
  dataset: string;
  dataDir?: string;
  /** Seed of the split; default: the one recorded in the model file (else 1). */
  seed?: number;
  batchSize: number;
  json?: boolean;
}

export async function evalCommand(modelPath: string, opts: EvalCommandOptions): Promise<void> {
  const out = new Output(opts);
  const source = await readModelSource(modelPath);
  const seed = splitSeed(opts.dataset, opts.seed, source.kind === 'onnx' ? undefined : source.file.metadata, modelPath);
  const { test } = await loadDatasets({ ...opts, seed });
  const session = await InferenceSession.create(
    source.kind === 'kiln' ? source.module : source.graph,
    source.kind === 'kiln' ? { inputShape: source.inputShape } : undefined,
  );
  try {
    const started = performance.now();
    const correct = await sessionCorrect(session, test, opts.batchSize);
    const seconds = (performance.now() - started) / 1000;
    const accuracy = correct / test.length;
    out.result(
      { model: modelPath, dataset: opts.dataset, seed, testImages: test.length, correct, testAccuracy: accuracy, imagesPerSecond: test.length / seconds },
      () => `accuracy ${percent(accuracy)} (${correct}/${test.length}) on ${test.name}`,
    );
  } finally {
    session.release();
  }
}
