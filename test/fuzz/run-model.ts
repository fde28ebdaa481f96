/**
 * Runs a model that a fuzzer's mutated file still loads as: a session, then one forward pass on
 * seeded inputs of the session's declared types and shapes (symbolic dimensions at 2). Outputs
 * may hold anything (a mutated weight may be NaN); the point is that native code runs on what the
 * loader accepted, under the sanitizer in npm run test:asan.
 */
import { InferenceSession } from '../../src/runtime/session.js';
import type { SessionOptions, SessionSource } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import type { DType } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** Inputs bigger than this are not run (a corrupt file may declare any shape; the session need not refuse it). */
const MAX_INPUT_ELEMENTS = 1 << 20;

function input(type: DType, dims: number[], rng: Rng): Tensor<DType> {
  const n = dims.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, () => {
    if (type === 'float32' || type === 'float64' || type === 'float16') return rng.uniform(-1, 1);
    if (type === 'int64' || type === 'uint64') return BigInt(rng.int(3));
    if (type === 'bool') return rng.int(2);
    return rng.int(3);
  });
  return new Tensor(type, values as never, dims);
}

/** 'ran' or 'too big'; throws whatever creating or running the session throws. */
export async function createAndRun(source: SessionSource, rng: Rng, options?: SessionOptions): Promise<'ran' | 'too big'> {
  const session = await InferenceSession.create(source, options);
  try {
    const feeds: Record<string, Tensor<DType>> = {};
    for (let i = 0; i < session.inputNames.length; i++) {
      const dims = session.inputShapes[i]!.map((d) => (typeof d === 'number' ? d : 2));
      if (!(dims.reduce((a, b) => a * b, 1) <= MAX_INPUT_ELEMENTS)) return 'too big';
      feeds[session.inputNames[i]!] = input(session.inputTypes[i]!, dims, rng);
    }
    await session.run(feeds as never);
    return 'ran';
  } finally {
    session.release();
  }
}
