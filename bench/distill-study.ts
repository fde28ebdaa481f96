/**
 * Distillation study on MNIST (issue 13): per seed, the default 8-epoch SeedCNN teacher
 * (`defaultMnistRecipe`), then a half-width and a quarter-width student trained 8 epochs on labels
 * alone (the same recipe) and 8 epochs with `distill()` (T 4, alpha 0.9, the recipe's optimizer and
 * schedule, no augmentation); held-out accuracy of each on the 2,000 held-out digits of the split.
 * The code is bench/distill-study-core.ts (test/integration/distill-study.test.ts runs it small).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/distill-study.js [seed ...]   (default 1 2 3)
 *
 * Options: --widths 0.5,0.25 (default), --epochs 8 (default), and --hint <teacher value>:<student
 * layer>[:<weight>] for a third arm distilled with a feature hint too, e.g. --hint relu_1_out:4.
 */
import { formatArms, runDistillStudy } from './distill-study-core.js';
import type { DistillStudyOptions } from './distill-study-core.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
};
const widths = (flag('--widths') ?? '0.5,0.25').split(',').map(Number);
const epochs = Number(flag('--epochs') ?? 8);
const hintText = flag('--hint');
const seeds = args.map(Number).filter((n) => Number.isInteger(n));

const options: DistillStudyOptions = { seeds: seeds.length ? seeds : [1, 2, 3], widths, epochs, log: (line) => console.log(line) };
if (hintText) {
  const [teacher, student, weight] = hintText.split(':');
  options.hint = { teacher, student, ...(weight !== undefined ? { weight: Number(weight) } : {}) };
}
const report = await runDistillStudy(options);
console.log('');
for (const line of formatArms(report)) console.log(line);
