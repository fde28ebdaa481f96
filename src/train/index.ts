/** Training: optimizers, learning-rate schedules, the Trainer and evaluation. */
export { Optimizer } from './optimizers/optimizer.js';
export type { OptimizerConfig } from './optimizers/optimizer.js';
export { SGD } from './optimizers/sgd.js';
export type { SgdOptions } from './optimizers/sgd.js';
export { Adam } from './optimizers/adam.js';
export type { AdamOptions } from './optimizers/adam.js';
export { AdamW } from './optimizers/adamw.js';
export { createOptimizer, OPTIMIZER_TYPES } from './optimizers/create.js';
export type { OptimizerOptions } from './optimizers/create.js';
export { constantLr, stepLr, cosineLr, withWarmup, scheduleFromOptions, SCHEDULE_TYPES } from './schedules.js';
export type { LrSchedule, ScheduleOptions } from './schedules.js';
export { Trainer, train } from './trainer.js';
export type { TrainOptions, TrainHistory, EpochStats, BatchEndInfo, StepEndInfo, TrainCallbacks, EarlyStoppingOptions, TrainLoss, LossStep } from './trainer.js';
export { evaluate } from './evaluate.js';
export type { EvaluateOptions, EvaluateResult } from './evaluate.js';
export { defaultMnistRecipe } from './recipes.js';
