/** The distill stage: a student of the model's architecture at a width, trained on the model's logits. */
import { distill, DISTILL_TRAIN_DEFAULTS } from '../../distill/distill.js';
import { ErrorCode, KilnError } from '../../errors.js';
import type { ModelState } from '../model-state.js';
import type { DistillStage } from '../recipe.js';
import { trainingHooks, withLr } from './context.js';
import type { StageContext, StageOutput } from './context.js';

export async function runDistill(stage: DistillStage, input: ModelState, ctx: StageContext): Promise<StageOutput> {
  if (input.kind !== 'module') throw new KilnError(ErrorCode.INVALID_STATE, 'distill runs on the float model, before quantize');
  const student = ctx.student(stage.widthMultiplier, ctx.seed);
  const { callbacks, curve } = trainingHooks(ctx, stage.epochs, DISTILL_TRAIN_DEFAULTS.batchSize);
  const teacher = input.module;
  teacher.eval();
  await distill(teacher, student, ctx.train, {
    epochs: stage.epochs,
    temperature: stage.temperature,
    alpha: stage.alpha,
    validation: ctx.validation,
    train: { seed: ctx.seed, optimizer: withLr(DISTILL_TRAIN_DEFAULTS, stage.lr), callbacks, ...(stage.augment > 0 ? { augment: { maxShift: stage.augment } } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) },
  });
  student.eval();
  return { state: { kind: 'module', module: student, inputShape: input.inputShape }, curve };
}
