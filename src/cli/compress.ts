/**
 * `kiln compress`: runs a recipe (recipes/*.json) on a trained .kiln model with the held-out split
 * of its data set, shows each stage's progress, writes the output model, the run record (run.json)
 * and, with --report, the HTML report.
 */
import { writeFile } from 'node:fs/promises';

import { compress } from '../compress/compress.js';
import type { CompressProgress } from '../compress/progress.js';
import { readRecipe } from '../compress/recipe.js';
import type { RunRecord } from '../compress/record.js';
import { ErrorCode, KilnError } from '../errors.js';
import { checkOutputFile, writeFileAtomic } from '../util/files.js';
import { typeError } from '../validate.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource } from './model-source.js';
import { Output, percent } from './output.js';
import type { Progress } from './output.js';

export interface CompressCommandOptions {
  recipe?: string;
  out?: string;
  record?: string;
  report?: string;
  dataset: string;
  dataDir?: string;
  json?: boolean;
}

/** small.kiln -> small.run.json */
export function defaultRecordPath(out: string): string {
  return `${out.replace(/\.kiln$/i, '')}.run.json`;
}

export async function compressCommand(modelPath: string, opts: CompressCommandOptions): Promise<void> {
  const out = new Output(opts);
  if (opts.recipe === undefined) throw typeError('--recipe', 'a recipe .json file', undefined);
  if (opts.out === undefined) throw typeError('--out', 'the .kiln file to write', undefined);
  const recordPath = opts.record ?? defaultRecordPath(opts.out);
  // Everything that can be refused is refused before any training.
  const recipe = await readRecipe(opts.recipe);
  for (const [path, name] of [[opts.out, '--out'], [recordPath, '--record'], ...(opts.report ? [[opts.report, '--report']] : [])] as [string, string][]) await checkOutputFile(path, name);
  const source = await readModelSource(modelPath);
  if (source.kind !== 'kiln') {
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `kiln compress trains the model it compresses, so <model> must be a Kiln-trained float .kiln model, but ${modelPath} is ${source.kind === 'onnx' ? 'an ONNX model' : 'a saved graph (e.g. already int8)'}; distil it into a Kiln student first with kiln distill --teacher ${modelPath}`);
  }
  const seed = splitSeed(opts.dataset, undefined, source.file.metadata, modelPath);
  const { train, test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
  out.line(`compressing ${modelPath} with recipe '${recipe.name}' (${recipe.stages.map((s) => s.name).join(' -> ')}), budget ${(recipe.maxAccuracyDrop * 100).toFixed(2)} points on ${test.length} held-out ${train.name} images`);

  let bar: Progress | undefined;
  const onProgress = (e: CompressProgress): void => {
    const tag = e.tries > 1 ? `${e.stage} (try ${e.attempt}/${e.tries})` : e.stage;
    switch (e.phase) {
      case 'start':
        out.line(`${tag}: ${e.detail}`);
        break;
      case 'train':
        bar ??= out.progress(e.batches!, `${tag} epoch {epoch}/{epochs} |{bar}| {value}/{total} batches, loss {loss}`, { epoch: e.epoch, epochs: e.epochs, loss: '-' });
        bar.update(e.batch!, { epoch: e.epoch, epochs: e.epochs, loss: e.loss!.toFixed(4) });
        break;
      case 'epoch':
        bar?.stop();
        bar = undefined;
        out.line(`${tag} epoch ${e.epoch}/${e.epochs}: loss ${e.loss!.toFixed(4)}${e.accuracy !== undefined ? `, held-out ${percent(e.accuracy)}` : ''}`);
        break;
      case 'sensitivity':
        out.line(`${tag}: sensitivity of layer ${e.detail} (${e.batch}/${e.batches})`);
        break;
      case 'score':
        out.line(`${tag}: held-out ${percent(e.accuracy!)} ${e.withinBudget ? 'within' : 'over'} budget`);
        break;
      case 'measure':
        out.line(`${e.stage}: ${e.detail ?? 'measuring size and latency against ONNX Runtime'}`);
        break;
      default:
        break;
    }
  };
  let result: Awaited<ReturnType<typeof compress>>;
  try {
    result = await compress(source.module, recipe, { train, validation: test, inputShape: source.inputShape, datasetName: train.name, onProgress });
  } finally {
    bar?.stop();
  }
  const { record, file } = result;
  await writeFileAtomic(opts.out, file);
  await writeFile(recordPath, `${JSON.stringify(record, null, 2)}\n`);
  if (opts.report) {
    const { renderReport } = await import('../report/index.js');
    await writeFile(opts.report, await renderReport(record));
  }
  out.line(stageTable(record).join('\n'));
  const r = record.result;
  const b64 = r.faster.find((f) => f.batch === 64) ?? r.faster[r.faster.length - 1];
  out.result(
    { out: opts.out, record: recordPath, ...(opts.report ? { report: opts.report } : {}), ...r, confusion: undefined },
    () =>
      `${r.completed ? 'done' : `stopped early: ${r.stoppedBecause}`}; ${opts.out} is '${r.stage}': held-out ${percent(r.accuracy)} (${(-r.accuracyDrop * 100).toFixed(2)} points vs the original, budget ${(r.maxAccuracyDrop * 100).toFixed(2)}), ` +
      `${r.smaller.toFixed(1)}x smaller on disk` +
      (b64 ? `, ${b64.vsOriginal.toFixed(1)}x faster than the original at batch ${b64.batch} (${b64.threads} thread${b64.threads > 1 ? 's' : ''})${b64.vsOrt !== undefined ? `, ${b64.vsOrt.toFixed(1)}x faster than ONNX Runtime on its ONNX export` : ''}` : '') +
      `; record ${recordPath}${opts.report ? `, report ${opts.report}` : ''}`,
  );
}

/** The per-stage table: accuracy, size, MACs and latency. */
function stageTable(record: RunRecord): string[] {
  const batches = record.stages[0].latency.map((l) => l.batch);
  const head = `${'stage'.padEnd(12)}${'held-out'.padStart(9)}${'drop'.padStart(8)}${'bytes'.padStart(10)}${'MACs'.padStart(11)}${'non-zero'.padStart(11)}` + batches.map((b) => `${`b${b} ms`.padStart(10)}${'ORT'.padStart(8)}`).join('');
  return [
    '',
    head,
    ...record.stages.map(
      (s) =>
        `${s.name.padEnd(12)}${percent(s.accuracy).padStart(9)}${(s.accuracyDrop * 100).toFixed(2).padStart(8)}${s.fileBytes.toLocaleString('en-US').padStart(10)}` +
        `${s.macs.toLocaleString('en-US').padStart(11)}${s.nonZeroMacs.toLocaleString('en-US').padStart(11)}` +
        s.latency.map((l) => `${l.kilnMs.toFixed(3).padStart(10)}${(l.ortMs === undefined ? '-' : l.ortMs.toFixed(3)).padStart(8)}`).join(''),
    ),
    '',
  ];
}
