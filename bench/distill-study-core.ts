/**
 * The distillation study's code path, sized by its caller: bench/distill-study.ts runs it at full
 * size (8,000 training digits, 8 epochs, 3 seeds, half and quarter width) and
 * test/integration/distill-study.test.ts at a small one. Per seed: the MNIST split of that seed, a
 * full-width SeedCNN teacher on the default recipe, then per width a student trained on labels
 * alone (the same recipe), one distilled from the teacher (T 4, alpha 0.9, no augmentation) and,
 * with `hint`, one distilled with a feature hint as well; held-out accuracy of each on the split's
 * 2,000 held-out digits.
 */
import type { Dataset } from '../src/data/dataset.js';
import { mnist } from '../src/data/mnist.js';
import { distill } from '../src/distill/index.js';
import type { HintOptions } from '../src/distill/index.js';
import { seedCNN } from '../src/nn/models.js';
import { defaultMnistRecipe, evaluate, train } from '../src/train/index.js';

export interface DistillStudyOptions {
  seeds: readonly number[];
  /** Student width multipliers. */
  widths: readonly number[];
  /** Epochs of the teacher and of every student (default 8, the recipe's). */
  epochs?: number;
  /** Training digits used, the first of the seed's shuffled train split (default all 8,000). */
  trainImages?: number;
  /** Adds a 'hinted' arm: distillation plus this feature hint (e.g. teacher 'relu_1_out', student 4). */
  hint?: HintOptions;
  /** Progress lines, one per trained student. */
  log?: (line: string) => void;
}

/** What `distill()` said about the teacher for one distilled student. */
export interface TeacherUse {
  cachedTeacherLogits: boolean;
  teacherRuns: number;
  cachedTeacherFeatures?: boolean;
}

export interface StudyRow {
  seed: number;
  width: number;
  teacher: number;
  labels: number;
  distilled: number;
  distilledTeacher: TeacherUse;
  hinted?: number;
  hintedTeacher?: TeacherUse;
  /** Hint mean squared error per epoch of the hinted student. */
  hintLoss?: number[];
}

export interface ArmStats {
  /** 'teacher', 'labels 0.5', 'distilled 0.5', 'hinted 0.5', ... */
  arm: string;
  values: number[];
  mean: number;
  /** Sample standard deviation (0 for one seed). */
  std: number;
}

export interface DistillStudyReport {
  trainImages: number;
  testImages: number;
  epochs: number;
  rows: StudyRow[];
  arms: ArmStats[];
}

function firstImages(d: Dataset, n: number): Dataset {
  const size = d.imageShape[0] * d.imageShape[1] * d.imageShape[2];
  return { ...d, images: d.images.subarray(0, n * size), labels: d.labels.subarray(0, n), length: n };
}

export const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;

export async function runDistillStudy(options: DistillStudyOptions): Promise<DistillStudyReport> {
  const epochs = options.epochs ?? defaultMnistRecipe.epochs;
  const log = options.log ?? (() => {});
  const rows: StudyRow[] = [];
  const teacherBySeed = new Map<number, number>();
  let trainImages = 0;
  let testImages = 0;
  for (const seed of options.seeds) {
    const split = mnist({ seed });
    const trainSet = options.trainImages === undefined ? split.train : firstImages(split.train, Math.min(options.trainImages, split.train.length));
    const test = split.test;
    trainImages = trainSet.length;
    testImages = test.length;
    const model = (width: number) => seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: width, seed });
    const recipe = { ...defaultMnistRecipe, epochs, seed };
    const teacher = model(1);
    await train(teacher, trainSet, recipe);
    const t = (await evaluate(teacher, test)).accuracy;
    teacherBySeed.set(seed, t);
    log(`seed ${seed} | teacher (width 1) | ${pct(t)}`);
    for (const width of options.widths) {
      const labels = model(width);
      await train(labels, trainSet, recipe);
      const a = (await evaluate(labels, test)).accuracy;
      const kd = await distill(teacher, model(width), trainSet, { epochs, validation: test, train: { seed } });
      const row: StudyRow = { seed, width, teacher: t, labels: a, distilled: kd.studentAccuracy!, distilledTeacher: teacherUse(kd) };
      let line = `seed ${seed} | width ${width} | labels only ${pct(a)} | distilled ${pct(row.distilled)}`;
      if (options.hint) {
        const hinted = await distill(teacher, model(width), trainSet, { epochs, validation: test, train: { seed }, hint: options.hint });
        row.hinted = hinted.studentAccuracy!;
        row.hintedTeacher = teacherUse(hinted);
        row.hintLoss = hinted.hintLoss;
        line += ` | distilled + hint ${pct(row.hinted)} (hint MSE ${hinted.hintLoss!.map((v) => v.toFixed(3)).join(' ')})`;
      }
      rows.push(row);
      log(`${line} | teacher - distilled ${((t - row.distilled) * 100).toFixed(2)} pt`);
    }
  }
  const arms: ArmStats[] = [stats('teacher', [...teacherBySeed.values()])];
  for (const width of options.widths) {
    const of = rows.filter((r) => r.width === width);
    arms.push(stats(`labels ${width}`, of.map((r) => r.labels)), stats(`distilled ${width}`, of.map((r) => r.distilled)));
    if (options.hint) arms.push(stats(`hinted ${width}`, of.map((r) => r.hinted!)));
  }
  return { trainImages, testImages, epochs, rows, arms };
}

function teacherUse(r: { cachedTeacherLogits: boolean; teacherRuns: number; cachedTeacherFeatures?: boolean }): TeacherUse {
  return { cachedTeacherLogits: r.cachedTeacherLogits, teacherRuns: r.teacherRuns, ...(r.cachedTeacherFeatures !== undefined ? { cachedTeacherFeatures: r.cachedTeacherFeatures } : {}) };
}

function stats(arm: string, values: number[]): ArmStats {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1));
  return { arm, values, mean, std };
}

/** The summary lines: mean +- std per arm, with the error count out of the held-out digits. */
export function formatArms(report: DistillStudyReport): string[] {
  return report.arms.map(
    (a) => `${a.arm.padEnd(16)} ${pct(a.mean)} +- ${(a.std * 100).toFixed(2)} (n=${a.values.length}; errors of ${report.testImages.toLocaleString('en-US')}: ${Math.round((1 - a.mean) * report.testImages)})`,
  );
}
