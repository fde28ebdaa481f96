/** The fine-tune stage: more epochs at a low learning rate, keeping a pruned model's zeros exact. */
import { ErrorCode, KilnError } from '../../errors.js';
import { reapplyZeroMasks, zeroMasks } from '../../prune/keep-zeros.js';
import { prunableLayers } from '../../prune/layers.js';
import { fineTuneRecipe } from '../../train/recipes.js';
import { train } from '../../train/trainer.js';
import { cloneModule } from '../model-state.js';
import type { ModelState } from '../model-state.js';
import type { FineTuneStage } from '../recipe.js';
import { trainingHooks, withLr } from './context.js';
import type { StageContext, StageOutput } from './context.js';

export async function runFineTune(stage: FineTuneStage, input: ModelState, ctx: StageContext): Promise<StageOutput> {
  if (input.kind !== 'module') throw new KilnError(ErrorCode.INVALID_STATE, 'fine-tune runs on the float model, before quantize');
  const model = cloneModule(input.module);
  const masks = zeroMasks(prunableLayers(model).map((l) => l.weight));
  const { callbacks, curve } = trainingHooks(ctx, stage.epochs, fineTuneRecipe.batchSize);
  await train(model, ctx.train, {
    ...fineTuneRecipe,
    epochs: stage.epochs,
    seed: ctx.seed,
    optimizer: withLr(fineTuneRecipe, stage.lr),
    validation: ctx.validation,
    callbacks: { ...callbacks, onStepEnd: (info) => reapplyZeroMasks(masks, info) },
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  model.eval();
  return { state: { ...input, module: model }, curve };
}
