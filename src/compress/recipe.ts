/**
 * Compression recipes: a JSON document that chains stages (distill, prune, fine-tune, quantize,
 * pack) under an accuracy budget. `parseRecipe` checks one against the schema (recipe-schema.ts)
 * and the stage order, fills in every default and makes the back-off variants explicit, so the
 * run record holds exactly what ran. Every problem is a KilnError ERR_KILN_INVALID_RECIPE whose
 * message names the stage and the field.
 */
import { readFile } from 'node:fs/promises';

import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

import type { ValueSchedule } from '../distill/schedule.js';
import { parsePattern } from '../prune/patterns.js';
import { ErrorCode, KilnError } from '../errors.js';
import type { SparseFormat } from '../sparse-tensor.js';
import { RECIPE_SCHEMA } from './recipe-schema.js';

export type Scheduled = number | ValueSchedule;

export interface DistillStage {
  stage: 'distill';
  name: string;
  /** The student: the model's architecture (a SeedCNN) at this width (0.5: about 4x fewer MACs). */
  widthMultiplier: number;
  epochs: number;
  temperature: Scheduled;
  alpha: Scheduled;
  lr: number;
  /**
   * Random shifts of up to this many pixels (0: none). The teacher then runs on every shifted batch
   * instead of once per image, which costs a teacher forward per step.
   */
  augment: number;
  backoff: Partial<Pick<DistillStage, 'widthMultiplier' | 'epochs' | 'temperature' | 'alpha' | 'lr' | 'augment'>>[];
}

export interface PruneStage {
  stage: 'prune';
  name: string;
  sparsity: number;
  pattern: string;
  method: 'magnitude' | 'global' | 'random' | 'l1' | 'l2' | 'bn';
  schedule: 'agp' | 'oneshot' | 'iterative';
  epochs: number;
  lr: number;
  /** Layers to prune (default: all but the first conv and the last Linear). */
  layers?: string[];
  /** Sweep each layer alone before pruning (recorded for the report); false to skip. */
  sensitivity: false | { sparsities: number[] };
  backoff: Partial<Pick<PruneStage, 'sparsity' | 'pattern' | 'method' | 'schedule' | 'epochs' | 'lr'>>[];
}

export interface FineTuneStage {
  stage: 'fine-tune';
  name: string;
  epochs: number;
  lr: number;
}

export interface QuantizeStage {
  stage: 'quantize';
  name: string;
  method: 'ptq' | 'qat';
  /** PTQ's calibration method. */
  calibration: 'minmax' | 'percentile' | 'entropy' | 'mse';
  /** PTQ's calibration batches of 64 images. */
  batches: number;
  /** QAT's fine-tuning epochs and learning rate. */
  epochs: number;
  lr: number;
  perChannel: boolean;
  backoff: Partial<Pick<QuantizeStage, 'method' | 'calibration' | 'batches' | 'epochs' | 'lr' | 'perChannel'>>[];
}

export interface PackStage {
  stage: 'pack';
  name: string;
  /** Sparse storage formats to try per weight (the smallest wins; dense when nothing is smaller). */
  formats: SparseFormat[];
}

export type Stage = DistillStage | PruneStage | FineTuneStage | QuantizeStage | PackStage;

export interface MeasureSettings {
  /** Batch sizes whose latency each stage records (default [1, 64]). */
  batches: number[];
  /** Threads of both runtimes while timing (default 1). */
  threads: number;
  /** Minimum timed milliseconds per cell (default 500). */
  minMs: number;
  /** Time ONNX Runtime on each stage's ONNX export too (default true). */
  ort: boolean;
}

/** A recipe with every default filled in. */
export interface Recipe {
  name: string;
  description?: string;
  /** Seed of every stage's initialisation, batch order and sampling (default 1). */
  seed: number;
  /** Largest held-out accuracy loss against the original model, as a fraction (0.01 = 1 point). */
  maxAccuracyDrop: number;
  measure: MeasureSettings;
  stages: Stage[];
}

/** The recipe-wide defaults and each stage's, as documented in recipes/README.md. */
export const RECIPE_DEFAULTS = {
  seed: 1,
  measure: { batches: [1, 64], threads: 1, minMs: 500, ort: true } as MeasureSettings,
  distill: { epochs: 8, temperature: 4, alpha: 0.9, lr: 0.1, augment: 0 },
  prune: { pattern: 'unstructured', method: 'magnitude', schedule: 'agp', epochs: 4, lr: 0.01, sensitivity: { sparsities: [0.5, 0.7, 0.8, 0.9, 0.95] } },
  'fine-tune': { lr: 0.01 },
  quantize: { method: 'ptq', calibration: 'entropy', batches: 16, epochs: 2, lr: 0.01, perChannel: true },
  pack: { formats: ['csr', 'bcsr-1x4', 'bcsr-4x1', 'bcsr-8x1'] as SparseFormat[] },
} as const;

let validator: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  validator ??= new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(RECIPE_SCHEMA);
  return validator;
}

function invalid(message: string, cause?: unknown): KilnError {
  return new KilnError(ErrorCode.INVALID_RECIPE, message, cause === undefined ? undefined : { cause });
}

/** 'stages[1] (prune).sparsity' for '/stages/1/sparsity'. */
function fieldName(path: string, recipe: unknown): string {
  const parts = path.split('/').slice(1);
  let out = 'recipe';
  let at: unknown = recipe;
  for (const p of parts) {
    const key = p.replace(/~1/g, '/').replace(/~0/g, '~');
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
    if (/^\d+$/.test(key)) {
      out += `[${key}]`;
      const kind = at !== null && typeof at === 'object' ? (at as { stage?: unknown }).stage : undefined;
      if (typeof kind === 'string') out += ` (${kind})`;
    } else out += `.${key}`;
  }
  return out;
}

function received(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One Ajv error as a sentence naming the field, what it must be and what it holds. */
function describe(error: ErrorObject, recipe: unknown): string {
  const field = fieldName(error.instancePath, recipe);
  const value = error.instancePath.split('/').slice(1).reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), recipe);
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${field} has an unknown field '${String(p.additionalProperty)}'`;
    case 'required':
      return `${field} is missing its required field '${String(p.missingProperty)}'`;
    case 'discriminator':
      return p.error === 'mapping'
        ? `${field}.stage must be one of distill, prune, fine-tune, quantize, pack but received ${received((value as { stage?: unknown })?.stage)}`
        : `${field} needs a 'stage' field (distill, prune, fine-tune, quantize or pack)`;
    case 'enum':
      return `${field} must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} but received ${received(value)}`;
    case 'oneOf':
      return `${field} must be a number or a schedule { "type": "linear" | "cosine" | "step", "from", "to" } in range, but received ${received(value)}`;
    default:
      return `${field} ${error.message ?? 'is invalid'} but received ${received(value)}`;
  }
}

/** Recipe order rules the schema cannot express. */
function checkOrder(stages: readonly { stage: string; name?: string }[]): void {
  const seen = new Set<string>();
  const names = new Set<string>();
  stages.forEach((s, i) => {
    const at = `recipe.stages[${i}] (${s.stage})`;
    const name = s.name ?? s.stage;
    if (names.has(name)) throw invalid(`${at}.name must be unique but '${name}' names an earlier stage too (name repeated stages, e.g. "prune-2")`);
    names.add(name);
    if (s.stage === 'distill' && i !== 0) throw invalid(`${at} must come first: distilling trains a new student from scratch, which would discard the stages before it`);
    if (s.stage === 'pack' && i !== stages.length - 1) throw invalid(`${at} must be the last stage: it only changes how the weights are stored, and the stages after it would work on the unpacked model`);
    if ((s.stage === 'quantize' || s.stage === 'pack') && seen.has(s.stage)) throw invalid(`${at} appears twice: a model is ${s.stage === 'quantize' ? 'quantized' : 'packed'} once`);
    if ((s.stage === 'prune' || s.stage === 'fine-tune' || s.stage === 'distill') && seen.has('quantize')) {
      throw invalid(`${at} comes after quantize, which cannot work: ${s.stage === 'prune' ? 'prune' : s.stage} trains the float model, so quantize must come after it (to train after int8 conversion, use quantize's method "qat")`);
    }
    seen.add(s.stage);
  });
}

function withDefaults(raw: Record<string, unknown>, index: number): Stage {
  const kind = raw.stage as Stage['stage'];
  const name = (raw.name as string | undefined) ?? kind;
  const d = RECIPE_DEFAULTS;
  switch (kind) {
    case 'distill':
      return { ...d.distill, ...(raw as object), name, backoff: (raw.backoff as DistillStage['backoff']) ?? [] } as DistillStage;
    case 'prune': {
      const merged = { ...d.prune, ...(raw as object), name } as unknown as PruneStage;
      if (raw.sensitivity === undefined || raw.sensitivity === true) merged.sensitivity = { sparsities: [...d.prune.sensitivity.sparsities] };
      // Back off by 0.1 twice (0.8 -> 0.7 -> 0.6): the sparsity loses most where the curve is steepest.
      merged.backoff = (raw.backoff as PruneStage['backoff']) ?? [0.1, 0.2].map((s) => Math.round((merged.sparsity - s) * 100) / 100).filter((s) => s > 0).map((sparsity) => ({ sparsity }));
      return merged;
    }
    case 'fine-tune':
      return { ...d['fine-tune'], ...(raw as object), name } as FineTuneStage;
    case 'quantize': {
      const merged = { ...d.quantize, ...(raw as object), name } as QuantizeStage;
      // PTQ over budget: quantization-aware training recovers most of what calibration loses.
      merged.backoff = (raw.backoff as QuantizeStage['backoff']) ?? (merged.method === 'ptq' ? [{ method: 'qat' }] : []);
      return merged;
    }
    case 'pack':
      return { ...d.pack, ...(raw as object), name, formats: [...((raw.formats as SparseFormat[]) ?? d.pack.formats)] } as PackStage;
    default:
      throw invalid(`recipe.stages[${index}].stage is unknown: ${String(kind)}`);
  }
}

/**
 * Validates a recipe and fills in its defaults.
 * @param input the recipe's JSON text or the parsed object
 * @param source where it came from, for messages (a path)
 * @throws KilnError ERR_KILN_INVALID_RECIPE: not JSON, a schema violation (unknown stage or field,
 *   a value out of range, a negative budget), a stage order that cannot work (quantize before
 *   prune, distill after another stage, pack not last), a back-off variant that is invalid
 */
export function parseRecipe(input: string | object, source = 'recipe'): Recipe {
  let recipe: unknown = input;
  if (typeof input === 'string') {
    try {
      recipe = JSON.parse(input);
    } catch (err) {
      throw invalid(`${source} is not valid JSON: ${(err as Error).message}`, err);
    }
  }
  if (recipe === null || typeof recipe !== 'object' || Array.isArray(recipe)) throw invalid(`${source} must be a JSON object but received ${received(recipe)}`);
  const validate = schemaValidator();
  if (!validate(recipe)) throw invalid(`${source}: ${describe(validate.errors![0], recipe)}`);
  const r = recipe as { name: string; description?: string; seed?: number; maxAccuracyDrop: number; measure?: Partial<MeasureSettings>; stages: Record<string, unknown>[] };
  try {
    checkOrder(r.stages as { stage: string; name?: string }[]);
  } catch (err) {
    throw invalid(`${source}: ${(err as Error).message}`, err);
  }
  const stages = r.stages.map((s, i) => withDefaults(s, i));
  stages.forEach((s, i) => {
    if (s.stage === 'prune') {
      for (const [field, pattern] of [['pattern', s.pattern], ...s.backoff.map((v, j) => [`backoff[${j}].pattern`, v.pattern] as const)] as const) {
        if (pattern === undefined) continue;
        try {
          parsePattern(pattern, field);
        } catch (err) {
          throw invalid(`${source}: recipe.stages[${i}] (prune).${field} must be a pruning pattern (unstructured, filter, blockRxC with R or C 1, N:M with N < M <= 64) but received ${JSON.stringify(pattern)}`, err);
        }
      }
      for (const [j, v] of s.backoff.entries()) {
        if (v.sparsity !== undefined && v.sparsity >= s.sparsity) {
          throw invalid(`${source}: recipe.stages[${i}] (prune).backoff[${j}].sparsity must be below the stage's sparsity ${s.sparsity} (backing off prunes less) but received ${v.sparsity}`);
        }
      }
    }
  });
  return {
    name: r.name,
    ...(r.description !== undefined ? { description: r.description } : {}),
    seed: r.seed ?? RECIPE_DEFAULTS.seed,
    maxAccuracyDrop: r.maxAccuracyDrop,
    measure: { ...RECIPE_DEFAULTS.measure, ...r.measure, batches: [...(r.measure?.batches ?? RECIPE_DEFAULTS.measure.batches)] },
    stages,
  };
}

/** Reads and validates a recipe file. */
export async function readRecipe(path: string): Promise<Recipe> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KilnError(ErrorCode.FILE_NOT_FOUND, `Expected a recipe file for --recipe but '${path}' does not exist`, { cause: err });
    if (code === 'EISDIR') throw new KilnError(ErrorCode.NOT_A_FILE, `Expected a recipe file for --recipe but '${path}' is a directory`, { cause: err });
    throw err;
  }
  return parseRecipe(text, path);
}

/** A stage's settings with one back-off variant merged over them (the variant's fields win). */
export function variant<S extends Stage>(stage: S, index: number): S {
  if (index === 0) return stage;
  const { backoff, ...rest } = stage as S & { backoff?: object[] };
  return { ...rest, ...(backoff ?? [])[index - 1] } as S;
}

/** How many tries a stage has: its own settings, then each back-off variant. */
export function tries(stage: Stage): number {
  return 1 + ('backoff' in stage ? stage.backoff.length : 0);
}
