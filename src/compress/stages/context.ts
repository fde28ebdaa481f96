/** What every stage runner gets and returns. */
import type { Dataset } from '../../data/dataset.js';
import type { Module } from '../../nn/module.js';
import type { EpochStats, TrainCallbacks } from '../../train/trainer.js';
import type { ModelState } from '../model-state.js';
import type { CurvePoint, SensitivityRecord } from '../record.js';
import type { CompressProgress } from '../progress.js';

/** Builds a student of the teacher's input shape and classes at a width multiplier. */
export type StudentFactory = (widthMultiplier: number, seed: number) => Module;

export interface StageContext {
  train: Dataset;
  validation: Dataset;
  seed: number;
  student: StudentFactory;
  /** Reports progress under the current stage and try. */
  progress(event: Omit<CompressProgress, 'stage' | 'attempt' | 'tries'>): void;
  signal?: AbortSignal;
}

export interface StageOutput {
  state: ModelState;
  curve: CurvePoint[];
  sensitivity?: SensitivityRecord;
}

/** Trainer callbacks that report batches and epochs (of `batchSize` images), and the curve they collect. */
export function trainingHooks(ctx: StageContext, epochs: number, batchSize: number): { callbacks: TrainCallbacks; curve: CurvePoint[] } {
  const curve: CurvePoint[] = [];
  const batches = Math.ceil(ctx.train.length / batchSize);
  return {
    curve,
    callbacks: {
      onBatchEnd: ({ epoch, batch, loss }) => {
        if (batch % 8 === 7 || batch + 1 === batches) ctx.progress({ phase: 'train', epoch: epoch + 1, epochs, batch: batch + 1, batches, loss });
      },
      onEpochEnd: (e: EpochStats) => {
        curve.push({ epoch: e.epoch, trainLoss: e.trainLoss, trainAccuracy: e.trainAccuracy, ...(e.valAccuracy !== undefined ? { valAccuracy: e.valAccuracy } : {}), lr: e.lr });
        ctx.progress({ phase: 'epoch', epoch: e.epoch + 1, epochs, loss: e.trainLoss, ...(e.valAccuracy !== undefined ? { accuracy: e.valAccuracy } : {}) });
      },
    },
  };
}

/** An optimizer spec with the stage's learning rate over a recipe's. */
export function withLr<T extends { optimizer: object }>(base: T, lr: number): T['optimizer'] {
  return { ...base.optimizer, lr } as T['optimizer'];
}
