/**
 * Trainer and evaluate on small synthetic data: learning, callbacks, stopping, determinism,
 * abort, divergence, event-loop yielding, validation of options. MNIST runs are in
 * test/integration/train-mnist.test.ts.
 */
import { describe, expect, it } from 'vitest';

import type { Dataset } from '../../src/data/dataset.js';
import { synthetic } from '../../src/data/synthetic.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Dropout } from '../../src/nn/layers/dropout.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { evaluate } from '../../src/train/evaluate.js';
import { Trainer, train } from '../../src/train/trainer.js';
import type { TrainOptions } from '../../src/train/trainer.js';
import { datasetSlice } from '../support/datasets.js';

// One synthetic set (its class patterns depend on the seed), split into train and held-out parts.
const all = synthetic({ count: 320, imageShape: [1, 8, 8], numClasses: 4, seed: 1, signal: 0.4 });
const data = datasetSlice(all, 0, 240, 'train');
const heldOut = datasetSlice(all, 240, 320, 'held-out');

function smallNet(seed = 1, dropout = false): Sequential {
  return new Sequential(
    new Conv2d(1, 4, 3, { seed }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    ...(dropout ? [new Dropout(0.2, { seed })] : []),
    new Linear(4 * 3 * 3, 4, { seed: seed + 1 }),
  );
}

const base: TrainOptions = { epochs: 3, batchSize: 32, optimizer: { type: 'sgd', lr: 0.02, momentum: 0.9 }, seed: 3 };

function weights(net: Sequential): Float32Array[] {
  return net.parameters().map((p) => p.value.data.slice());
}

describe('train()', () => {
  it('learns the synthetic classes: loss falls, held-out accuracy well above chance', async () => {
    const net = smallNet();
    const before = await evaluate(net, heldOut);
    const history = await train(net, data, { ...base, epochs: 6, validation: heldOut });
    expect(history.epochs).toHaveLength(6);
    expect(history.stopReason).toBe('completed');
    expect(history.epochs[5].trainLoss).toBeLessThan(history.epochs[0].trainLoss);
    expect(history.epochs[5].valAccuracy).toBeGreaterThan(0.8);
    expect(before.accuracy).toBeLessThan(0.5);
    const after = await evaluate(net, heldOut);
    expect(after.accuracy).toBe(history.epochs[5].valAccuracy);
    expect(after.loss).toBeCloseTo(history.epochs[5].valLoss!, 12);
  });

  it('calls onBatchEnd per batch and onEpochEnd per epoch with the scheduled learning rate', async () => {
    const batches: { epoch: number; batch: number; lr: number; loss: number; accuracy: number }[] = [];
    const epochs: number[] = [];
    await train(smallNet(), data, {
      ...base,
      epochs: 2,
      batchSize: 50,
      schedule: { type: 'step', stepSize: 1, gamma: 0.5 },
      callbacks: {
        onBatchEnd: (b) => void batches.push(b),
        onEpochEnd: (e) => {
          epochs.push(e.epoch);
          expect(e.imagesPerSecond).toBeGreaterThan(0);
          expect(e.trainAccuracy).toBeGreaterThanOrEqual(0);
          expect(e.valAccuracy).toBeUndefined();
        },
      },
    });
    // 240 images in batches of 50: 5 batches, the last of 40.
    expect(batches.map((b) => [b.epoch, b.batch])).toEqual([0, 1].flatMap((e) => [0, 1, 2, 3, 4].map((b) => [e, b])));
    expect(batches.map((b) => b.lr)).toEqual([...new Array(5).fill(0.02), ...new Array(5).fill(0.01)]);
    expect(batches.every((b) => Number.isFinite(b.loss) && b.accuracy >= 0 && b.accuracy <= 1)).toBe(true);
    expect(epochs).toEqual([0, 1]);
  });

  it('dropLast skips the short batch', async () => {
    let count = 0;
    await train(smallNet(), data, { ...base, epochs: 1, batchSize: 50, dropLast: true, callbacks: { onBatchEnd: () => void count++ } });
    expect(count).toBe(4);
  });

  it('is deterministic: same seeds give bit-identical weights (with augmentation and dropout)', async () => {
    const options: TrainOptions = { ...base, augment: { maxShift: 1 }, labelSmoothing: 0.1, schedule: { type: 'cosine', warmupEpochs: 0.5 } };
    const a = smallNet(1, true);
    const b = smallNet(1, true);
    await train(a, data, options);
    await train(b, data, options);
    expect(weights(a)).toEqual(weights(b));
    const c = smallNet(1, true);
    await train(c, data, { ...options, seed: 4 });
    expect(weights(c)).not.toEqual(weights(a));
  });

  it("stops after the epoch whose onEpochEnd returns 'stop'", async () => {
    const history = await train(smallNet(), data, { ...base, epochs: 5, callbacks: { onEpochEnd: async (e) => (e.epoch === 1 ? 'stop' : undefined) } });
    expect(history.epochs).toHaveLength(2);
    expect(history.stopReason).toBe('callback');
  });

  it('early stopping waits `patience` epochs without improvement and restores the best weights', async () => {
    const net = smallNet();
    await train(net, data, { ...base, epochs: 2 });
    const trained = weights(net);
    // lr 0: nothing improves after epoch 0. The callback wrecks the weights after epoch 0, so
    // epoch 1 is worse; restoring must bring back the epoch-0 (trained) weights.
    const history = await train(net, data, {
      ...base,
      epochs: 6,
      optimizer: { type: 'sgd', lr: 0 },
      validation: heldOut,
      earlyStopping: { patience: 1, monitor: 'valLoss' },
      callbacks: { onEpochEnd: (e) => void (e.epoch === 0 && net.parameters().forEach((p) => p.value.data.fill(0))) },
    });
    expect(history.stopReason).toBe('earlyStopping');
    expect(history.epochs).toHaveLength(2);
    expect(history.bestEpoch).toBe(0);
    expect(weights(net)).toEqual(trained);
  });

  it('an aborted signal rejects between batches; the model leaves training state cleanly', async () => {
    const net = smallNet();
    const controller = new AbortController();
    let seen = 0;
    const run = train(net, data, { ...base, signal: controller.signal, callbacks: { onBatchEnd: () => void (++seen === 2 && controller.abort()) } });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBe(2);
    expect(net.reuseBuffers).toBe(false);
    expect(net.training).toBe(true);
  });

  it('a non-finite loss (NaN in the data) rejects with ERR_KILN_TRAINING_DIVERGED', async () => {
    const images = data.images.slice();
    images[5] = NaN;
    await expect(train(smallNet(), { ...data, images }, { ...base, shuffle: false })).rejects.toMatchObject({
      code: 'ERR_KILN_TRAINING_DIVERGED',
      message: expect.stringMatching(/Training diverged: the loss of epoch 1, batch 1 is NaN/),
    });
  });

  it('yields to the event loop between batches', async () => {
    const order: string[] = [];
    await train(smallNet(), data, {
      ...base,
      epochs: 1,
      batchSize: 120,
      callbacks: {
        onBatchEnd: ({ batch }) => {
          order.push(`batch ${batch}`);
          if (batch === 0) setImmediate(() => order.push('immediate'));
        },
      },
    });
    expect(order).toEqual(['batch 0', 'immediate', 'batch 1']);
  });

  it('Trainer exposes its optimizer and refuses a second concurrent fit()', async () => {
    const trainer = new Trainer(smallNet(), { ...base, epochs: 1, optimizer: { type: 'adamw', lr: 1e-3 } });
    expect(trainer.optimizer.getConfig().type).toBe('adamw');
    const first = trainer.fit(data);
    await expect(trainer.fit(data)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_STATE' });
    await first;
    expect(trainer.optimizer.iterations).toBe(8);
  });
});

describe('option validation', () => {
  it.each([
    ['epochs 0', { epochs: 0 }, /options.epochs/],
    ['batchSize fraction', { batchSize: 1.5 }, /options.batchSize/],
    ['optimizer lr NaN', { optimizer: { type: 'sgd', lr: NaN } }, /lr but received NaN/],
    ['optimizer type', { optimizer: { type: 'lbfgs', lr: 1 } }, /optimizer.type/],
    ['schedule type', { schedule: { type: 'linear' } }, /schedule.type/],
    ['unknown option', { epoch: 3 }, /unknown option 'epoch'/],
    ['labelSmoothing 1', { labelSmoothing: 1 }, /labelSmoothing/],
    ['callback not a function', { callbacks: { onEpochEnd: 3 } }, /options.callbacks.onEpochEnd/],
    ['early stopping without validation', { earlyStopping: { patience: 2 } }, /options.validation/],
    ['early stopping monitor', { validation: heldOut, earlyStopping: { patience: 2, monitor: 'trainLoss' } }, /options.earlyStopping.monitor/],
    ['signal not a signal', { signal: {} }, /options.signal/],
    ['seed negative', { seed: -3 }, /options.seed/],
  ] as const)('%s', (_, override, text) => {
    expect(() => new Trainer(smallNet(), { ...base, ...(override as object) } as TrainOptions)).toThrow(
      expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(text) }),
    );
  });

  it('rejects data sets the model does not fit, before any step', async () => {
    const net = smallNet();
    const before = weights(net);
    const wrongClasses = synthetic({ count: 20, imageShape: [1, 8, 8], numClasses: 3, seed: 1 });
    await expect(train(net, wrongClasses, base)).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH', message: expect.stringMatching(/\[N, 3\] logits/) });
    const wrongImages = synthetic({ count: 20, imageShape: [1, 12, 12], numClasses: 4, seed: 1 });
    await expect(train(net, wrongImages, base)).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH' });
    const broken: Dataset = { ...data, images: data.images.subarray(1) };
    await expect(train(net, broken, base)).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH', message: expect.stringMatching(/dataset.images/) });
    await expect(train(net, data, { ...base, validation: wrongClasses })).rejects.toMatchObject({ message: expect.stringMatching(/options.validation/) });
    expect(weights(net)).toEqual(before);
  });
});

describe('evaluate()', () => {
  // Logits = the two pixels: image (1, 0) predicts class 0, (0, 1) class 1.
  const identity = (): Sequential => {
    const lin = new Linear(2, 2, { bias: false });
    lin.weight.value.data.set([1, 0, 0, 1]);
    return new Sequential(new Flatten(), lin);
  };
  const tiny: Dataset = {
    name: 'tiny',
    images: Float32Array.of(1, 0, 0, 1, 1, 0),
    labels: Int32Array.of(0, 1, 1),
    length: 3,
    imageShape: [1, 1, 2],
    numClasses: 2,
  };

  it('accuracy, mean loss and confusion matrix (batches smaller than the set)', async () => {
    const result = await evaluate(identity(), tiny, { batchSize: 2, confusion: true });
    expect(result.count).toBe(3);
    expect(result.accuracy).toBeCloseTo(2 / 3, 12);
    const right = Math.log(1 + Math.exp(-1));
    const wrong = Math.log(1 + Math.exp(1));
    expect(result.loss).toBeCloseTo((2 * right + wrong) / 3, 6);
    // rows: label, columns: prediction
    expect(Array.from(result.confusion!)).toEqual([1, 0, 1, 1]);
  });

  it('runs in eval mode and restores the mode and buffer reuse afterwards', async () => {
    const net = identity();
    const dropout = new Dropout(0.9);
    const withDropout = new Sequential(dropout, net);
    const result = await evaluate(withDropout, tiny);
    expect(result.accuracy).toBeCloseTo(2 / 3, 12);
    expect(withDropout.training).toBe(true);
    expect(dropout.training).toBe(true);
    expect(withDropout.reuseBuffers).toBe(false);
  });

  it('validates its arguments', async () => {
    await expect(evaluate({} as never, tiny)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', name: 'TypeError' });
    await expect(evaluate(identity(), tiny, { batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/options.batchSize/) });
    await expect(evaluate(identity(), { ...tiny, labels: Int32Array.of(0, 1, 2) })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/labels\[2\]/) });
  });
});

describe('Trainer options.loss', () => {
  const base: TrainOptions = { epochs: 1, batchSize: 60, optimizer: { type: 'sgd', lr: 0.05 }, shuffle: false };
  it('replaces cross-entropy: it gets every batch with its indices and the step, and its gradient drives the update', async () => {
    const model = smallNet(3);
    const steps: [number, number, number, number][] = [];
    // Zero gradient: the weights must not move, whatever cross-entropy would have done.
    const loss = {
      compute: async (logits: import('../../src/tensor.js').Tensor<'float32'>, batch: import('../../src/data/dataset.js').Batch, step: { epoch: number; iteration: number; totalSteps: number }) => {
        steps.push([step.epoch, step.iteration, step.totalSteps, batch.indices![0]]);
        const { Tensor } = await import('../../src/tensor.js');
        return { loss: 0.5, grad: new Tensor('float32', new Float32Array(logits.data.length), logits.dims.slice()) };
      },
    };
    const before = model.parameters().flatMap((p) => Array.from(p.value.data));
    const history = await train(model, data, { ...base, epochs: 2, loss });
    expect(steps).toEqual([[0, 0, 8, 0], [0, 1, 8, 60], [0, 2, 8, 120], [0, 3, 8, 180], [1, 4, 8, 0], [1, 5, 8, 60], [1, 6, 8, 120], [1, 7, 8, 180]]);
    expect(history.epochs[0].trainLoss).toBe(0.5);
    expect(model.parameters().flatMap((p) => Array.from(p.value.data))).toEqual(before);
  });

  it('refuses a loss without compute, and a loss with labelSmoothing', () => {
    expect(() => new Trainer(smallNet(), { ...base, loss: {} as never })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('options.loss') }));
    const loss = { compute: () => Promise.reject(new Error('unused')) };
    expect(() => new Trainer(smallNet(), { ...base, loss, labelSmoothing: 0.1 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('options.labelSmoothing') }));
  });
});
