/**
 * Held-out accuracy of a graph (fp32 or int8) on the inference runtime, in batches of 256 (as
 * `kiln eval`): for the CLI commands and scripts that score a rewritten graph rather than a Module.
 */
import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../graph/ir.js';
import { Tensor } from '../tensor.js';
import { countCorrect } from '../train/metrics.js';
import { InferenceSession } from './session.js';

/** The fraction of `test`'s images whose top-1 class from `graph` is their label. */
export async function graphAccuracy(graph: Graph, test: Dataset): Promise<number> {
  const session = await InferenceSession.create(graph);
  try {
    const [c, h, w] = test.imageShape;
    const per = c * h * w;
    let correct = 0;
    for (let start = 0; start < test.length; start += 256) {
      const n = Math.min(256, test.length - start);
      const input = new Tensor('float32', test.images.subarray(start * per, (start + n) * per), [n, c, h, w]);
      const logits = (await session.run({ [session.inputNames[0]]: input }))[session.outputNames[0]];
      correct += countCorrect(logits.data as Float32Array, test.labels.subarray(start, start + n), n, logits.dims[1]);
    }
    return correct / test.length;
  } finally {
    session.release();
  }
}

