/**
 * Distillation study on MNIST (issue 13): per seed, the default 8-epoch SeedCNN teacher
 * (`defaultMnistRecipe`), then a half-width and a quarter-width student trained 8 epochs on labels
 * alone (the same recipe) and 8 epochs with `distill()` (T 4, alpha 0.9, the recipe's optimizer and
 * schedule, no augmentation); held-out accuracy of each on the 2,000 held-out digits of the split.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/distill-study.js [seed ...]   (default 1 2 3)
 */
import { mnist } from '../src/data/mnist.js';
import { distill } from '../src/distill/index.js';
import { seedCNN } from '../src/nn/models.js';
import { defaultMnistRecipe, evaluate, train } from '../src/train/index.js';

const seeds = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n));
const widths = [0.5, 0.25];
const results = new Map<string, number[]>();
const add = (key: string, v: number): void => void results.set(key, [...(results.get(key) ?? []), v]);
const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;

for (const seed of seeds.length ? seeds : [1, 2, 3]) {
  const { train: trainSet, test } = mnist({ seed });
  const model = (width: number) => seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: width, seed });
  const teacher = model(1);
  await train(teacher, trainSet, { ...defaultMnistRecipe, seed });
  const t = (await evaluate(teacher, test)).accuracy;
  add('teacher', t);
  console.log(`seed ${seed} | teacher (width 1) | ${pct(t)}`);
  for (const width of widths) {
    const labels = model(width);
    await train(labels, trainSet, { ...defaultMnistRecipe, seed });
    const a = (await evaluate(labels, test)).accuracy;
    const distilled = model(width);
    const { studentAccuracy } = await distill(teacher, distilled, trainSet, { epochs: 8, validation: test, train: { seed } });
    add(`labels ${width}`, a);
    add(`distilled ${width}`, studentAccuracy!);
    console.log(`seed ${seed} | width ${width} | labels only ${pct(a)} | distilled ${pct(studentAccuracy!)} | teacher - distilled ${((t - studentAccuracy!) * 100).toFixed(2)} pt`);
  }
}
const stats = (v: number[]): string => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return `${pct(mean)} +- ${(sd * 100).toFixed(2)} (n=${v.length}; errors of 2,000: ${Math.round((1 - mean) * 2000)})`;
};
console.log('');
for (const [k, v] of results) console.log(`${k.padEnd(16)} ${stats(v)}`);
