/**
 * `compress(model, recipe, options)`: runs a recipe's stages in order on a trained model, measures
 * every stage's output the same way (held-out accuracy, file size, MACs, latency against ONNX
 * Runtime), and keeps the held-out accuracy within the recipe's budget: a stage whose try loses
 * too much is retried with its back-off variants (less sparsity, QAT instead of PTQ), and when
 * none fits the pipeline stops with the last model that did, the way Intel Neural Compressor's
 * accuracy-driven tuning does.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Dataset } from '../data/dataset.js';
import { KilnError, ErrorCode } from '../errors.js';
import type { Graph } from '../graph/ir.js';
import { seedCNN } from '../nn/models.js';
import { Module } from '../nn/module.js';
import { defaultProducer } from '../runtime/kiln-file.js';
import { cpuInfo } from '../system.js';
import { checkModelFits } from '../train/evaluate.js';
import { checkKeys } from '../nn/layers/checks.js';
import { options as checkOptions, typeError } from '../validate.js';
import { measureState, score, timeAgainstOriginal } from './measure.js';
import type { Measured } from './measure.js';
import { graphOf } from './model-state.js';
import type { ModelState } from './model-state.js';
import type { CompressProgress } from './progress.js';
import { RUN_RECORD_FORMAT, RUN_RECORD_VERSION } from './record.js';
import type { AttemptRecord, RunRecord, SensitivityRecord, StageRecord } from './record.js';
import { parseRecipe, tries, variant } from './recipe.js';
import type { Recipe, Stage } from './recipe.js';
import type { StageContext, StageOutput, StudentFactory } from './stages/context.js';
import { runDistill } from './stages/distill.js';
import { runFineTune } from './stages/fine-tune.js';
import { runPack } from './stages/pack.js';
import { runPrune } from './stages/prune.js';
import { runQuantize } from './stages/quantize.js';

export interface CompressOptions {
  /** Training images (distillation, pruning's fine-tune, QAT, PTQ calibration). */
  train: Dataset;
  /** Held-out images: every accuracy in the record and the budget are measured on them. */
  validation: Dataset;
  /** One image's shape when the model has no `inputShape` (default: the data's). */
  inputShape?: readonly number[];
  /** The distill stage's student at a width (default: a SeedCNN of the model's input and classes). */
  student?: StudentFactory;
  /** Dataset name for the record (default: the training set's `name`). */
  datasetName?: string;
  onProgress?: (event: CompressProgress) => void;
  signal?: AbortSignal;
}

export interface CompressResult {
  /** The output model: a Module when the recipe has no quantize stage, else the int8 Graph. */
  model: Module | Graph;
  /** The output model's .kiln bytes, exactly as measured (packed when the recipe packs). */
  file: Uint8Array;
  record: RunRecord;
}

const OPTION_KEYS = ['train', 'validation', 'inputShape', 'student', 'datasetName', 'onProgress', 'signal'] as const;
// Accuracies are counts over the same images; this only absorbs float rounding of the division.
const EPSILON = 1e-9;

/**
 * Compresses a trained model with a recipe.
 * @param model a trained fp32 Module (e.g. `load('mnist.kiln')`)
 * @param recipe a recipe object or its JSON text (see recipes/README.md), validated before any work
 * @param options the training and held-out data; progress callback
 * @returns the output model, its .kiln bytes and the run record (what `kiln report` draws)
 * @throws KilnError ERR_KILN_INVALID_RECIPE for a recipe that is not valid JSON, breaks the schema
 *   (unknown stage or field, a negative budget) or orders stages so they cannot work; RangeError
 *   ERR_KILN_SHAPE_MISMATCH when the data does not fit the model — all before any training
 * @example
 * const { file, record } = await compress(await load('mnist.kiln'), await readFile('recipes/mnist-half-80-int8.json', 'utf8'), { train, validation: test });
 */
export async function compress(model: Module, recipe: Recipe | object | string, options: CompressOptions): Promise<CompressResult> {
  if (!(model instanceof Module)) throw typeError('model', 'a trained Module', model);
  const parsed = typeof recipe === 'string' ? parseRecipe(recipe) : parseRecipe(recipe as object);
  const opts = checkOptions<CompressOptions>('options', options);
  checkKeys('options', opts, OPTION_KEYS);
  const { train, validation } = opts;
  if (train === undefined) throw typeError('options.train', 'the training Dataset', train);
  if (validation === undefined) throw typeError('options.validation', 'the held-out Dataset', validation);
  const { numClasses } = checkModelFits(model, train, 'options.train');
  checkModelFits(model, validation, 'options.validation');
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw typeError('options.onProgress', 'a function', opts.onProgress);
  const inputShape = [...(opts.inputShape ?? model.inputShape ?? train.imageShape)];
  const [c, h, w] = inputShape;
  const student: StudentFactory =
    opts.student ?? ((widthMultiplier, seed) => seedCNN({ inChannels: c, height: h, width: w, numClasses, widthMultiplier, seed }));

  const started = Date.now();
  const workDir = await mkdtemp(join(tmpdir(), 'kiln-compress-'));
  try {
    return await run(model, parsed, { ...opts, train, validation, student, inputShape }, workDir, started);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

interface Run {
  train: Dataset;
  validation: Dataset;
  student: StudentFactory;
  inputShape: number[];
  datasetName?: string;
  onProgress?: (event: CompressProgress) => void;
  signal?: AbortSignal;
}

async function run(model: Module, recipe: Recipe, opts: Run, workDir: string, started: number): Promise<CompressResult> {
  const emit = opts.onProgress ?? (() => undefined);
  const baseMetadata = { compressRecipe: recipe.name, seed: String(recipe.seed), dataset: opts.datasetName ?? opts.train.name };
  model.eval();
  const original0: ModelState = { kind: 'module', module: model, inputShape: opts.inputShape };
  let state: ModelState = original0;
  let stateFile = join(workDir, '0-original.kiln');

  emit({ stage: 'original', attempt: 1, tries: 1, phase: 'measure' });
  const t0 = performance.now();
  const original = await score(state, opts.validation);
  const originalMeasured = await measureState(state, stateFile, recipe.measure, baseMetadata);
  const baseline = original.accuracy;
  const stages: StageRecord[] = [stageRecord('original', 'original', [], undefined, original.accuracy, baseline, originalMeasured, performance.now() - t0)];
  let confusion = original.confusion;
  let sensitivity: SensitivityRecord | undefined;
  let stoppedBecause: string | undefined;

  for (const [index, stage] of recipe.stages.entries()) {
    const stageStart = performance.now();
    const attempts: AttemptRecord[] = [];
    let kept: { output: StageOutput; confusion: number[][] } | undefined;
    const n = tries(stage);
    for (let t = 0; t < n && !kept; t++) {
      const settings = variant(stage, t);
      const ctx: StageContext = {
        train: opts.train,
        validation: opts.validation,
        seed: recipe.seed,
        student: opts.student,
        progress: (e) => emit({ ...e, stage: stage.name, attempt: t + 1, tries: n }),
        ...(opts.signal ? { signal: opts.signal } : {}),
      };
      emit({ stage: stage.name, attempt: t + 1, tries: n, phase: 'start', detail: describeTry(settings) });
      const tryStart = performance.now();
      const output = await runStage(settings, state, ctx, t === 0);
      if (output.sensitivity) sensitivity = output.sensitivity;
      // Packing changes the file only: the model's outputs are the input's.
      const scored = settings.stage === 'pack' ? { accuracy: stages[stages.length - 1].accuracy, confusion } : await score(output.state, opts.validation);
      const withinBudget = scored.accuracy >= baseline - recipe.maxAccuracyDrop - EPSILON;
      emit({ stage: stage.name, attempt: t + 1, tries: n, phase: 'score', accuracy: scored.accuracy, withinBudget });
      attempts.push({ settings: settingsOf(settings), accuracy: scored.accuracy, withinBudget, curve: output.curve, seconds: (performance.now() - tryStart) / 1000 });
      if (withinBudget) kept = { output, confusion: scored.confusion };
    }
    if (!kept) {
      const best = Math.max(...attempts.map((a) => a.accuracy));
      stoppedBecause =
        `stage '${stage.name}' lost more than the budget of ${points(recipe.maxAccuracyDrop)} in all ${n} tr${n === 1 ? 'y' : 'ies'} ` +
        `(best ${percent(best)} against the original's ${percent(baseline)}); the output is the last model that fitted`;
      const previous = stages[stages.length - 1];
      stages.push({ ...previous, name: stage.name, kind: stage.stage, attempts, accuracy: previous.accuracy, accuracyDrop: previous.accuracyDrop, seconds: (performance.now() - stageStart) / 1000 } as StageRecord);
      delete stages[stages.length - 1].accepted;
      break;
    }
    state = kept.output.state;
    confusion = kept.confusion;
    stateFile = join(workDir, `${index + 1}-${stage.name}.kiln`);
    emit({ stage: stage.name, attempt: attempts.length, tries: n, phase: 'measure' });
    const measured = await measureState(state, stateFile, recipe.measure, { ...baseMetadata, compressStage: stage.name });
    const accuracy = attempts[attempts.length - 1].accuracy;
    stages.push(stageRecord(stage.name, stage.stage, attempts, attempts.length - 1, accuracy, baseline, measured, performance.now() - stageStart));
  }

  emit({ stage: 'result', attempt: 1, tries: 1, phase: 'measure', detail: 'timing the output against the original model, interleaved' });
  const last = [...stages].reverse().find((s) => s.accepted !== undefined || s.kind === 'original')!;
  const file = await readFile(stateFile);
  const record: RunRecord = {
    format: RUN_RECORD_FORMAT,
    version: RUN_RECORD_VERSION,
    kiln: defaultProducer().replace(/^kiln ?/, '') || 'unknown',
    machine: machine(recipe.measure.threads),
    recipe: recipe as unknown as Record<string, unknown>,
    seed: recipe.seed,
    dataset: { name: opts.datasetName ?? opts.train.name, trainImages: opts.train.length, heldOutImages: opts.validation.length, classes: opts.train.numClasses },
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    stages,
    ...(sensitivity ? { sensitivity } : {}),
    result: {
      stage: last.name,
      accuracy: last.accuracy,
      accuracyDrop: last.accuracyDrop,
      maxAccuracyDrop: recipe.maxAccuracyDrop,
      completed: stoppedBecause === undefined,
      ...(stoppedBecause ? { stoppedBecause } : {}),
      smaller: stages[0].fileBytes / last.fileBytes,
      faster: (await timeAgainstOriginal(graphOf(original0), graphOf(state), recipe.measure)).map((f) => {
        const cell = last.latency.find((c) => c.batch === f.batch)!;
        return { ...f, ...(cell.ortMs !== undefined ? { vsOrt: cell.ortMs / cell.kilnMs } : {}) };
      }),
      confusion,
    },
  };
  return { model: state.kind === 'module' ? state.module : graphOf(state), file: new Uint8Array(file), record };
}

function runStage(stage: Stage, state: ModelState, ctx: StageContext, first: boolean): Promise<StageOutput> {
  switch (stage.stage) {
    case 'distill':
      return runDistill(stage, state, ctx);
    case 'prune':
      return runPrune(stage, state, ctx, first);
    case 'fine-tune':
      return runFineTune(stage, state, ctx);
    case 'quantize':
      return runQuantize(stage, state, ctx);
    case 'pack':
      return Promise.resolve(runPack(stage, state));
    default:
      throw new KilnError(ErrorCode.INVALID_STATE, `Unknown stage ${String((stage as { stage: unknown }).stage)}`);
  }
}

function stageRecord(name: string, kind: StageRecord['kind'], attempts: AttemptRecord[], accepted: number | undefined, accuracy: number, baseline: number, m: Measured, ms: number): StageRecord {
  return { name, kind, attempts, ...(accepted !== undefined ? { accepted } : {}), accuracy, accuracyDrop: baseline - accuracy, ...m, seconds: ms / 1000 };
}

/** The try's settings for the record: everything but the stage kind, its name and the back-off list. */
function settingsOf(stage: Stage): Record<string, unknown> {
  const { stage: _kind, name: _name, ...rest } = stage as Stage & { backoff?: unknown };
  delete (rest as { backoff?: unknown }).backoff;
  return rest;
}

/** A try in a few words, for progress lines. */
export function describeTry(stage: Stage): string {
  switch (stage.stage) {
    case 'distill':
      return `width x${stage.widthMultiplier}, ${stage.epochs} epochs, T ${JSON.stringify(stage.temperature)}, alpha ${JSON.stringify(stage.alpha)}`;
    case 'prune':
      return `${stage.pattern} to ${percent(stage.sparsity)} (${stage.method}, ${stage.schedule}, ${stage.epochs} epochs)`;
    case 'fine-tune':
      return `${stage.epochs} epochs at lr ${stage.lr}`;
    case 'quantize':
      return stage.method === 'ptq' ? `PTQ, ${stage.calibration} calibration on ${stage.batches} batches` : `QAT, ${stage.epochs} epochs`;
    case 'pack':
      return `weights stored as ${stage.formats.join(' / ')} where smaller`;
  }
}

function machine(threads: number): RunRecord['machine'] {
  const cpu = cpuInfo();
  return { cpu: cpu.brand.trim(), isa: cpu.isa, threads, node: process.version, platform: `${process.platform}-${process.arch}` };
}

const percent = (v: number): string => `${(v * 100).toFixed(2)}%`;
const points = (v: number): string => `${(v * 100).toFixed(2)} points`;
