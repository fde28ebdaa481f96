/**
 * The pack stage: the weights stored packed sparse where that is smaller (CSR or blocked CSR, the
 * smallest of the allowed formats per weight). It changes the file, not the model's outputs; the
 * runtime already picks sparse or dense kernels per layer from the weights themselves.
 */
import type { ModelState } from '../model-state.js';
import type { PackStage } from '../recipe.js';
import type { StageOutput } from './context.js';

export function runPack(stage: PackStage, input: ModelState): StageOutput {
  return { state: { ...input, packFormats: stage.formats }, curve: [] };
}
