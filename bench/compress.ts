/**
 * The compression pipeline end to end (issue 13): a SeedCNN trained on MNIST as `kiln train` does
 * (seed 1), then each shipped recipe under recipes/ on it. Every figure is a ratio inside one
 * run: the output stage against the original model (file size; latency at batch 1 and 64 on one
 * thread, Kiln on both) and against ONNX Runtime on the same stage's ONNX export. Writes each
 * run record to bench/results/compress-<recipe>.run.json and its HTML report beside it.
 *
 *   npm run bench -- compress
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { compress } from '../src/compress/compress.js';
import { parseRecipe } from '../src/compress/recipe.js';
import type { RunRecord } from '../src/compress/record.js';
import { mnist } from '../src/data/mnist.js';
import { seedCNN } from '../src/nn/models.js';
import { renderReport } from '../src/report/index.js';
import { defaultMnistRecipe } from '../src/train/recipes.js';
import { train } from '../src/train/trainer.js';
import type { Report } from './report.js';

export async function benchCompress(report: Report, root: string): Promise<RunRecord[]> {
  const { train: trainSet, test } = mnist({ seed: 1 });
  const teacher = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
  process.stdout.write('\ncompress: training the SeedCNN teacher (MNIST recipe, 8 epochs, seed 1)\n');
  await train(teacher, trainSet, defaultMnistRecipe);
  const dir = join(root, 'recipes');
  const records: RunRecord[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json') && f !== 'recipe.schema.json').sort()) {
    const recipe = parseRecipe(await readFile(join(dir, file), 'utf8'), file);
    process.stdout.write(`compress: recipe ${recipe.name}\n`);
    const { record } = await compress(teacher, recipe, {
      train: trainSet,
      validation: test,
      onProgress: (e) => {
        if (e.phase === 'start' || e.phase === 'score') process.stdout.write(`  ${e.stage} try ${e.attempt}/${e.tries}: ${e.detail ?? `${((e.accuracy ?? 0) * 100).toFixed(2)}% ${e.withinBudget ? 'within' : 'over'} budget`}\n`);
      },
    });
    const base = join(root, 'bench', 'results', `compress-${recipe.name}`);
    await writeFile(`${base}.run.json`, `${JSON.stringify(record, null, 2)}\n`);
    await writeFile(`${base}.html`, await renderReport(record));
    records.push(record);
    const original = record.stages[0];
    report.add({
      title: `Compression pipeline: recipe ${recipe.name} on MNIST SeedCNN (budget ${(recipe.maxAccuracyDrop * 100).toFixed(1)} points; ${record.result.completed ? 'completed' : `stopped: ${record.result.stoppedBecause}`})`,
      baseline: 'the original fp32 model on Kiln (x vs original), and ONNX Runtime on the same stage\'s ONNX export (x vs ORT), same process, interleaved, 1 thread',
      columns: ['stage', 'tries', 'held-out %', 'drop (points)', 'file bytes', 'x smaller', 'MACs', 'non-zero MACs', ...record.stages[0].latency.flatMap((l) => [`b${l.batch} Kiln ms`, `b${l.batch} ORT ms`, `b${l.batch} x vs original`, `b${l.batch} x vs ORT`])],
      rows: record.stages.map((s) => [
        s.name,
        s.attempts.length ? `${s.accepted === undefined ? 'none' : s.accepted + 1} of ${s.attempts.length}` : '-',
        s.accuracy * 100,
        s.accuracyDrop * 100,
        s.fileBytes,
        original.fileBytes / s.fileBytes,
        s.macs,
        s.nonZeroMacs,
        ...s.latency.flatMap((l) => {
          const o = original.latency.find((c) => c.batch === l.batch)!;
          return [l.kilnMs, l.ortMs ?? '-', o.kilnMs / l.kilnMs, l.ortMs === undefined ? '-' : l.ortMs / l.kilnMs];
        }),
      ]),
      notes: [`record: bench/results/compress-${recipe.name}.run.json, report: bench/results/compress-${recipe.name}.html`],
    });
  }
  return records;
}
