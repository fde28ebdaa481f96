/**
 * QAT on real MNIST: SeedCNN trained 3 epochs (default recipe, seeded), then 2 epochs of
 * quantization-aware fine-tuning and conversion to int8. The int8 graph, evaluated on the 2,000
 * held-out digits, must lose at most 0.1 points of accuracy against fp32, and its top-1 must agree
 * with the QAT model's simulated forward. The int8 graph runs on the native runtime, or on the
 * reference interpreter while the runtime cannot run int8 graphs (the test output says which).
 */
import { describe, expect, it } from 'vitest';

import { mnist } from '../../src/data/mnist.js';
import { ErrorCode, KilnError } from '../../src/errors.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Graph } from '../../src/graph/ir.js';
import type { Module } from '../../src/nn/module.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantizeAwareTrain } from '../../src/quant/qat.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { evaluate } from '../../src/train/evaluate.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';

const { train: trainSet, test } = mnist({ seed: 1 });
const IMAGE = 28 * 28;
const BATCH = 250;

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const out = new Int32Array(logits.length / classes);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[i * classes + k] > logits[i * classes + best]) best = k;
    out[i] = best;
  }
  return out;
}

async function predict(run: (x: Tensor<'float32'>) => Promise<Float32Array> | Float32Array, d: Dataset): Promise<Int32Array> {
  const out = new Int32Array(d.length);
  for (let start = 0; start < d.length; start += BATCH) {
    const n = Math.min(BATCH, d.length - start);
    const x = new Tensor('float32', d.images.subarray(start * IMAGE, (start + n) * IMAGE), [n, 1, 28, 28]);
    out.set(argmaxRows(await run(x), 10), start);
  }
  return out;
}

/**
 * The int8 graph on the native runtime, or on the reference interpreter of the int8 IR while the
 * runtime refuses int8 graphs (ERR_KILN_UNSUPPORTED_OP); says which.
 */
async function int8Runner(graph: Graph): Promise<{ engine: string; run: (x: Tensor<'float32'>) => Promise<Float32Array> | Float32Array; release: () => void }> {
  const [input, output] = [graph.inputs[0].name, graph.outputs[0].name];
  try {
    const session = await InferenceSession.create(graph);
    return { engine: 'native runtime', run: async (x) => (await session.run({ [input]: x }))[output].data, release: () => session.release() };
  } catch (err) {
    if (!(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
    return { engine: 'reference interpreter', run: (x) => runInt8Reference(graph, { [input]: x })[output].data as Float32Array, release: () => {} };
  }
}

const moduleRunner = (m: Module) => async (x: Tensor<'float32'>): Promise<Float32Array> => (await m.forward(x)).data;

const correct = (pred: Int32Array, d: Dataset): number => pred.reduce((s, p, i) => s + (p === d.labels[i] ? 1 : 0), 0);

describe('QAT of SeedCNN on MNIST', () => {
  it('2 epochs of QAT: int8 held-out accuracy within 0.1 points of fp32, top-1 equal to the simulation', async () => {
    expect(test.length).toBe(2000);
    const started = performance.now();
    const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
    const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
    await train(model, trainSet, { ...defaultMnistRecipe, epochs: 3 });
    const trained = seconds();
    model.eval();
    const fp32 = await evaluate(model, test);
    const fp32Correct = correct(await predict(moduleRunner(model), test), test);
    expect(fp32Correct / 2000).toBe(fp32.accuracy);

    const { graph, report, model: qat } = await quantizeAwareTrain(model, trainSet, { epochs: 2 });
    expect(report.calibration.method).toBe('qat');
    const quantized = seconds();
    const runner = await int8Runner(graph);
    const int8 = await predict(runner.run, test);
    runner.release();
    const evaluated = seconds();
    const simulated = await predict(moduleRunner(qat), test);
    const int8Correct = correct(int8, test);
    const agree = int8.reduce((s, p, i) => s + (p === simulated[i] ? 1 : 0), 0);
    console.log(
      `MNIST QAT: fp32 ${(fp32Correct / 20).toFixed(2)}%, int8 after 2 QAT epochs ${(int8Correct / 20).toFixed(2)}% ` +
        `(simulated ${(correct(simulated, test) / 20).toFixed(2)}%), int8 vs simulated top-1 agreement ${agree}/2000; ` +
        `int8 run on the ${runner.engine}; seconds elapsed after fp32 training ${trained}, QAT ${quantized}, int8 evaluation ${evaluated}`,
    );
    // 0.1 points of 2,000 digits is 2 digits.
    expect(int8Correct).toBeGreaterThanOrEqual(fp32Correct - 2);
    expect(agree).toBeGreaterThanOrEqual(1998);
  });
});
