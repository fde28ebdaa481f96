/**
 * Held-out accuracy on the inference runtime, in batches of 256 by default: `kiln eval`, and the
 * commands and scripts that score a rewritten graph rather than a Module.
 */
import { imageBatches } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../graph/ir.js';
import { addToConfusion, countCorrect } from '../train/metrics.js';
import { InferenceSession } from './session.js';

/** How many of `test`'s images get their label as the top-1 class of `session`'s first output. */
export async function sessionCorrect(session: InferenceSession, test: Dataset, batchSize = 256): Promise<number> {
  let correct = 0;
  for (const { n, images, labels } of imageBatches(test, batchSize)) {
    const logits = (await session.run({ [session.inputNames[0]]: images }))[session.outputNames[0]];
    correct += countCorrect(logits.data as Float32Array, labels, n, logits.dims[1]);
  }
  return correct;
}

/** The fraction of `test`'s images whose top-1 class from `graph` is their label. */
export async function graphAccuracy(graph: Graph, test: Dataset): Promise<number> {
  const session = await InferenceSession.create(graph);
  try {
    return (await sessionCorrect(session, test)) / test.length;
  } finally {
    session.release();
  }
}

/** Rows true class, columns `session`'s top-1 class over `test` (row-major, classes x classes). */
export async function sessionConfusion(session: InferenceSession, test: Dataset, batchSize = 256): Promise<{ confusion: Int32Array; classes: number }> {
  const classes = test.numClasses;
  const confusion = new Int32Array(classes * classes);
  for (const { n, images, labels } of imageBatches(test, batchSize)) {
    const logits = (await session.run({ [session.inputNames[0]]: images }))[session.outputNames[0]];
    addToConfusion(confusion, logits.data as Float32Array, labels, n, logits.dims[1]);
  }
  return { confusion, classes };
}
