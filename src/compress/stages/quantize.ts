/** The quantize stage: int8 by post-training calibration (PTQ) or quantization-aware training (QAT). */
import { ErrorCode, KilnError } from '../../errors.js';
import { quantize } from '../../quant/ptq.js';
import { quantizeAwareTrain, QAT_TRAIN_DEFAULTS } from '../../quant/qat.js';
import type { ModelState } from '../model-state.js';
import type { QuantizeStage } from '../recipe.js';
import { trainingHooks, withLr } from './context.js';
import type { StageContext, StageOutput } from './context.js';

export async function runQuantize(stage: QuantizeStage, input: ModelState, ctx: StageContext): Promise<StageOutput> {
  if (input.kind !== 'module') throw new KilnError(ErrorCode.INVALID_STATE, 'quantize runs on the float model, once');
  if (stage.method === 'ptq') {
    const { graph, report } = await quantize(input.module, ctx.train, {
      method: stage.calibration,
      batches: stage.batches,
      perChannel: stage.perChannel,
      inputShape: input.inputShape,
      onProgress: (p) => ctx.progress({ phase: 'calibrate', batch: p.done, batches: p.total, detail: p.phase }),
    });
    return { state: { kind: 'graph', graph, quantization: report }, curve: [] };
  }
  const { callbacks, curve } = trainingHooks(ctx, stage.epochs, QAT_TRAIN_DEFAULTS.batchSize);
  // QAT needs the module's input shape for its graph; a student built by distill carries it.
  (input.module as { inputShape?: readonly number[] }).inputShape ??= input.inputShape;
  const { graph, report } = await quantizeAwareTrain(input.module, ctx.train, {
    epochs: stage.epochs,
    perChannel: stage.perChannel,
    train: { seed: ctx.seed, optimizer: withLr(QAT_TRAIN_DEFAULTS, stage.lr), validation: ctx.validation, callbacks, ...(ctx.signal ? { signal: ctx.signal } : {}) },
  });
  return { state: { kind: 'graph', graph, quantization: report }, curve };
}
