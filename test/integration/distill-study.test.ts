/**
 * The short version of the distillation study (bench/distill-study.ts, its output in
 * bench/results/distill-study.txt): the study's own code (bench/distill-study-core.ts) on real
 * MNIST digits at a small size: 3,000 training digits, 2 epochs, 2 seeds, the half-width student,
 * with the feature-hint arm. Checks what can go wrong in the study itself: every arm learns
 * (far above the 10% of chance on the 2,000 held-out digits), the report has mean and std over the
 * right number of seeds, the distilled arms really used the teacher, and a seed reproduces exactly.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { formatArms, runDistillStudy } from '../../bench/distill-study-core.js';
import type { DistillStudyOptions, DistillStudyReport } from '../../bench/distill-study-core.js';

const size: Omit<DistillStudyOptions, 'seeds'> = { widths: [0.5], epochs: 2, trainImages: 3000, hint: { teacher: 'relu_1_out', student: 4 } };
let report: DistillStudyReport;

beforeAll(async () => {
  report = await runDistillStudy({ ...size, seeds: [1, 2] });
  for (const line of formatArms(report)) console.log(line);
}, 120_000);

describe('distillation study, short version', () => {
  it('every arm learns: teacher, labels only, distilled and hinted students all score >= 90% held-out', () => {
    expect(report.trainImages).toBe(3000);
    expect(report.testImages).toBe(2000);
    expect(report.rows).toHaveLength(2);
    for (const row of report.rows) {
      for (const arm of ['teacher', 'labels', 'distilled', 'hinted'] as const) expect(row[arm], `seed ${row.seed} ${arm}`).toBeGreaterThanOrEqual(0.9);
      // The hint term was minimised: its MSE fell over the two epochs.
      expect(row.hintLoss).toHaveLength(2);
      expect(row.hintLoss![1]).toBeLessThan(row.hintLoss![0]);
    }
  });

  it('reports mean and std of each arm over the seeds', () => {
    expect(report.arms.map((a) => a.arm)).toEqual(['teacher', 'labels 0.5', 'distilled 0.5', 'hinted 0.5']);
    for (const a of report.arms) {
      expect(a.values).toHaveLength(2);
      const mean = (a.values[0] + a.values[1]) / 2;
      expect(a.mean).toBeCloseTo(mean, 12);
      // Sample std of two values: |a - b| / sqrt(2).
      expect(a.std).toBeCloseTo(Math.abs(a.values[0] - a.values[1]) / Math.SQRT2, 12);
    }
    expect(formatArms(report)[1]).toMatch(/^labels 0\.5 +\d+\.\d\d% \+- \d+\.\d\d \(n=2; errors of 2,000: \d+\)$/);
  });

  it('the distilled arms used the teacher: logits (and hint features) cached once, one run per 256 digits plus the probe', () => {
    const runs = 1 + Math.ceil(3000 / 256);
    for (const row of report.rows) {
      expect(row.distilledTeacher).toEqual({ cachedTeacherLogits: true, teacherRuns: runs });
      expect(row.hintedTeacher).toEqual({ cachedTeacherLogits: true, teacherRuns: runs, cachedTeacherFeatures: true });
    }
  });

  it('a seed reproduces: the same seed gives the same accuracy in every arm', async () => {
    const again = await runDistillStudy({ ...size, seeds: [2] });
    const first = report.rows.find((r) => r.seed === 2)!;
    expect(again.rows[0]).toEqual(first);
  }, 120_000);
});
