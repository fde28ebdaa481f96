/**
 * The prune stage: the sensitivity sweep (once, for the record), then `prune` on a copy of the
 * model so a backed-off try starts from the same weights.
 */
import { ErrorCode, KilnError } from '../../errors.js';
import { selectLayers } from '../../prune/layers.js';
import { parsePattern } from '../../prune/patterns.js';
import { prune, PRUNE_TRAIN_DEFAULTS } from '../../prune/prune.js';
import { analyzeSensitivity } from '../../prune/sensitivity.js';
import { cloneModule } from '../model-state.js';
import type { ModelState } from '../model-state.js';
import type { SensitivityRecord } from '../record.js';
import type { PruneStage } from '../recipe.js';
import { trainingHooks, withLr } from './context.js';
import type { StageContext, StageOutput } from './context.js';

export async function runPrune(stage: PruneStage, input: ModelState, ctx: StageContext, sweep: boolean): Promise<StageOutput> {
  if (input.kind !== 'module') throw new KilnError(ErrorCode.INVALID_STATE, 'prune runs on the float model, before quantize');
  parsePattern(stage.pattern, 'pattern');
  let sensitivity: SensitivityRecord | undefined;
  if (sweep && stage.sensitivity !== false && stage.method !== 'global') {
    const report = await analyzeSensitivity(input.module, ctx.validation, {
      sparsities: stage.sensitivity.sparsities,
      pattern: stage.pattern,
      ...(stage.method !== 'magnitude' ? { method: stage.method } : {}),
      // The layers the stage prunes (by default all but the first conv and the last Linear).
      layers: selectLayers(input.module, stage.layers, 'layers').map((l) => l.name),
      onLayer: (layer, done, total) => ctx.progress({ phase: 'sensitivity', batch: done, batches: total, detail: layer }),
    });
    sensitivity = { baseline: report.baseline, pattern: report.pattern, sparsities: report.sparsities, layers: report.layers.map((l) => ({ name: l.name, points: l.points })) };
  }
  const model = cloneModule(input.module);
  const { callbacks, curve } = trainingHooks(ctx, stage.epochs, PRUNE_TRAIN_DEFAULTS.batchSize);
  const { report } = await prune(model, ctx.train, {
    sparsity: stage.sparsity,
    pattern: stage.pattern,
    method: stage.method,
    schedule: stage.schedule,
    epochs: stage.epochs,
    ...(stage.layers ? { layers: stage.layers } : {}),
    seed: ctx.seed,
    train: { seed: ctx.seed, optimizer: withLr(PRUNE_TRAIN_DEFAULTS, stage.lr), callbacks, ...(ctx.signal ? { signal: ctx.signal } : {}) },
  });
  model.eval();
  const layers = report.layers.map((l) => l.name);
  return {
    state: { kind: 'module', module: model, inputShape: input.inputShape, pruned: { sparsity: stage.sparsity, pattern: stage.pattern, layers } },
    curve,
    ...(sensitivity ? { sensitivity } : {}),
  };
}
