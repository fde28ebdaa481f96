/**
 * Pruning accuracy on MNIST (issue 12's targets; not part of `npm test`): trains the default
 * 8-epoch SeedCNN (`defaultMnistRecipe`, as `kiln train --dataset mnist --seed S`), then prunes a
 * fresh copy of it per configuration with `prune()` and reports held-out accuracy before/after on
 * the 2,000 held-out digits of the same split. The first conv and the last Linear stay dense.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/prune-accuracy.js [seed ...] [--epochs N (default 6)] [--only part,part]
 *
 * Seeds 1-3 take about 5 minutes on 2 cores.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { mnist } from '../src/data/mnist.js';
import { seedCNN } from '../src/nn/models.js';
import { prune } from '../src/prune/prune.js';
import type { PruneOptions } from '../src/prune/prune.js';
import { load, save } from '../src/runtime/model-io.js';
import { quantize } from '../src/quant/ptq.js';
import { graphAccuracy } from '../src/runtime/accuracy.js';
import { defaultMnistRecipe, evaluate, train } from '../src/train/index.js';

interface Config {
  name: string;
  /** Largest accepted drop in points (issue 12). */
  target?: number;
  options: PruneOptions;
  /** Quantize the pruned model to int8 (PTQ) and report the int8 graph's accuracy and file size. */
  int8?: boolean;
}

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const epochs = Number(flag('--epochs') ?? 6);
const only = flag('--only')?.split(',');
const seeds = args.filter((a, i) => /^\d+$/.test(a) && !['--epochs'].includes(args[i - 1] ?? '')).map(Number);

const configs: Config[] = [
  { name: 'dense fine-tune (control)', options: { sparsity: 0, schedule: 'oneshot', epochs } },
  { name: '90% unstructured, global, AGP', target: 0.3, options: { sparsity: 0.9, method: 'global', schedule: 'agp', epochs } },
  { name: '90% unstructured, per layer, AGP', target: 0.3, options: { sparsity: 0.9, method: 'magnitude', schedule: 'agp', epochs } },
  { name: '95% unstructured, global, AGP', target: 0.8, options: { sparsity: 0.95, method: 'global', schedule: 'agp', epochs } },
  { name: '2:4, AGP', target: 0.2, options: { pattern: '2:4', schedule: 'agp', epochs } },
  { name: '80% block1x4, AGP', target: 0.5, options: { sparsity: 0.8, pattern: 'block1x4', schedule: 'agp', epochs } },
  { name: '50% filters (L1, masked), AGP', target: 1.0, options: { sparsity: 0.5, method: 'l1', schedule: 'agp', epochs } },
  { name: '90% unstructured + int8 PTQ', target: 0.5, int8: true, options: { sparsity: 0.9, method: 'magnitude', schedule: 'agp', epochs } },
  { name: '90% block1x4 + int8 PTQ', target: 0.5, int8: true, options: { sparsity: 0.9, pattern: 'block1x4', schedule: 'agp', epochs } },
  { name: '90% block4x1, AGP', options: { sparsity: 0.9, pattern: 'block4x1', schedule: 'agp', epochs } },
];

const fileBytes = async (path: string): Promise<number> => (await stat(path)).size;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-prune-bench-'));
  const rows: string[] = [];
  try {
    for (const seed of seeds.length ? seeds : [1]) {
      const { train: trainSet, test } = mnist({ seed });
      const base = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed });
      let t = performance.now();
      await train(base, trainSet, { ...defaultMnistRecipe, seed });
      const baseAccuracy = (await evaluate(base, test)).accuracy;
      console.log(`seed ${seed}: 8-epoch SeedCNN held-out ${(baseAccuracy * 100).toFixed(2)}% (${((performance.now() - t) / 1000).toFixed(0)} s)`);
      const path = join(dir, `base-${seed}.kiln`);
      await save(base, path);
      const fp32Bytes = await fileBytes(path);
      let int8Dense: { accuracy: number; bytes: number } | undefined;
      if (configs.some((c) => c.int8 && (!only || only.some((o) => c.name.includes(o))))) {
        const { graph } = await quantize(base, trainSet, {});
        const p = join(dir, `base-${seed}-int8.kiln`);
        await save(graph, p);
        int8Dense = { accuracy: await graphAccuracy(graph, test), bytes: await fileBytes(p) };
        console.log(`seed ${seed}: dense int8 (PTQ) held-out ${(int8Dense.accuracy * 100).toFixed(2)}%; files: fp32 ${fp32Bytes} bytes, int8 ${int8Dense.bytes} bytes`);
      }
      for (const c of configs) {
        if (only && !only.some((o) => c.name.includes(o))) continue;
        const model = await load(path);
        t = performance.now();
        const { report } = await prune(model, trainSet, { ...c.options, validation: test });
        let after = report.accuracyAfter!;
        let extra = '';
        if (c.int8) {
          // The drop of pruned + int8 is against the dense fp32 model, as the target is.
          const { graph } = await quantize(model, trainSet, {});
          const p = join(dir, `pruned-${seed}-int8.kiln`);
          await save(graph, p, { sparse: 'auto' });
          const bytes = await fileBytes(p);
          extra = `fp32 pruned ${(report.accuracyAfter! * 100).toFixed(2)}% | file ${bytes} bytes = 1/${(fp32Bytes / bytes).toFixed(1)} of fp32 (${fp32Bytes}), dense int8 ${int8Dense!.bytes}`;
          after = await graphAccuracy(graph, test);
        }
        // Accuracies are multiples of 1/2000: round the difference to 0.01 point before comparing.
        const drop = Math.round((report.accuracyBefore! - after) * 10000) / 100;
        const verdict = c.target === undefined ? '' : drop <= c.target ? `meets <= ${c.target}` : `MISSES <= ${c.target}`;
        const line = [
          `seed ${seed}`,
          c.name.padEnd(34),
          `before ${(report.accuracyBefore! * 100).toFixed(2)}%`,
          `after ${(after * 100).toFixed(2)}%`,
          `drop ${drop.toFixed(2)} pt`,
          `sparsity ${(report.sparsity * 100).toFixed(1)}% (${report.layers.map((l) => `${l.name}: ${(l.sparsity * 100).toFixed(1)}%`).join(', ')})`,
          `${((performance.now() - t) / 1000).toFixed(0)} s`,
          verdict,
          ...(extra ? [extra] : []),
        ].join(' | ');
        console.log(line);
        rows.push(line);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\nfine-tune: ${epochs} epochs, prune() defaults (SGD Nesterov lr 0.01 cosine, shifts 2 px, label smoothing 0.05); AGP from 0 to 2/3 of the steps, every 1/8 epoch`);
}

await main();
