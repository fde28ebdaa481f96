/**
 * Keeping a pruned model pruned while something else trains it (QAT, a plain fine-tune): the
 * weights that are exactly zero when training starts are re-zeroed after every optimizer step,
 * and their optimizer state with them, or momentum would revive them.
 */
import type { Parameter } from '../nn/module.js';
import type { StepEndInfo } from '../train/trainer.js';

export interface ZeroMask {
  param: Parameter;
  /** 1 where the weight is kept, 0 where it is pruned. */
  keep: Uint8Array;
}

/**
 * The parameters holding exact zeros now, with their keep masks. A trained dense layer holds no
 * exact zero, so this is empty for a model that was not pruned.
 */
export function zeroMasks(params: readonly Parameter[]): ZeroMask[] {
  const out: ZeroMask[] = [];
  for (const param of params) {
    const data = param.value.data;
    const keep = new Uint8Array(data.length);
    let zeros = 0;
    for (let i = 0; i < data.length; i++) {
      keep[i] = data[i] === 0 ? 0 : 1;
      zeros += 1 - keep[i];
    }
    if (zeros > 0) out.push({ param, keep });
  }
  return out;
}

/** Re-applies the masks and zeroes the optimizer's state under them: call from `onStepEnd`. */
export function reapplyZeroMasks(masks: readonly ZeroMask[], info: StepEndInfo): void {
  for (const { param, keep } of masks) {
    const w = param.value.data;
    for (let i = 0; i < w.length; i++) if (keep[i] === 0) w[i] = 0;
    info.optimizer.zeroStateWhere(param, keep);
  }
}
