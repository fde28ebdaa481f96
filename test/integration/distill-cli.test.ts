// `kiln distill`: through the CLI entry point on the synthetic data set: a teacher trained by
// `kiln train`, a half-width student written as .kiln that loads and evaluates to the accuracy the
// --json line reports, MACs and parameter counts, and bad input refused before any training.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { synthetic } from '../../src/data/synthetic.js';
import { evaluate, load } from '../../src/index.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let teacherPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-distill-cli-'));
  teacherPath = join(dir, 'teacher.kiln');
  const r = await runCli('train', '--dataset', 'synthetic', '--epochs', '2', '--out', teacherPath, '--json');
  expect(r.exitCode, r.stderr + r.stdout).toBe(0);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface DistillJson {
  teacherAccuracy: number;
  studentAccuracy: number;
  teacherMacs: number;
  studentMacs: number;
  teacherParameters: number;
  studentParameters: number;
  evalImages: number;
  cachedTeacherLogits: boolean;
}

describe('kiln distill', () => {
  it('writes a half-width student that loads and scores what the JSON line says; MACs and parameters of both', async () => {
    const out = join(dir, 'student.kiln');
    const r = await runCli('distill', '--teacher', teacherPath, '--student-width', '0.5', '--epochs', '2', '--dataset', 'synthetic', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<DistillJson>(r);
    expect(result.cachedTeacherLogits).toBe(true);
    expect(result.studentMacs).toBeLessThan(result.teacherMacs / 2);
    expect(result.studentParameters).toBeLessThan(result.teacherParameters / 2);
    // The synthetic held-out split draws its class patterns from another seed, so its accuracies
    // are near chance: this test checks the plumbing (learning is tested in test/unit/distill.test.ts).
    const teacherEval = await runCli('eval', teacherPath, '--dataset', 'synthetic', '--json');
    expect(lastJson<{ testAccuracy: number }>(teacherEval).testAccuracy).toBe(result.teacherAccuracy);
    // Held-out split of the teacher's seed (1), as kiln train made it.
    const test = synthetic({ count: 512, imageShape: [1, 28, 28], numClasses: 10, seed: 2 });
    expect(result.evalImages).toBe(512);
    const student = await load(out);
    expect((await evaluate(student, test)).accuracy).toBe(result.studentAccuracy);
    const e = await runCli('eval', out, '--dataset', 'synthetic', '--json');
    expect(e.exitCode, e.stderr).toBe(0);
    expect(lastJson<{ testAccuracy: number }>(e).testAccuracy).toBe(result.studentAccuracy);
  }, 120_000);

  it('takes an int8 .kiln and an ONNX teacher; MACs and parameters are those kiln info reports', async () => {
    const int8 = join(dir, 'teacher-int8.kiln');
    const onnx = join(dir, 'teacher.onnx');
    expect((await runCli('quantize', teacherPath, '--calibrate', 'synthetic', '--batches', '1', '--eval-images', '16', '--out', int8)).exitCode).toBe(0);
    expect((await runCli('export', teacherPath, '--out', onnx)).exitCode).toBe(0);
    for (const teacher of [int8, onnx]) {
      const out = join(dir, 'from-other.kiln');
      const r = await runCli('distill', '--teacher', teacher, '--epochs', '1', '--dataset', 'synthetic', '--out', out, '--json');
      expect(r.exitCode, r.stderr + r.stdout).toBe(0);
      const result = lastJson<DistillJson>(r);
      const info = (path: string) => runCli('info', path, '--json').then((i) => lastJson<{ macsPerImage: number; parameters: number }>(i));
      const [ti, si] = [await info(teacher), await info(out)];
      expect([result.teacherMacs, result.teacherParameters, result.studentMacs, result.studentParameters]).toEqual([ti.macsPerImage, ti.parameters, si.macsPerImage, si.parameters]);
      expect(result.teacherMacs).toBeGreaterThan(0);
    }
  }, 120_000);

  it('prints both accuracies, MACs and parameters without --json', async () => {
    const r = await runCli('distill', '--teacher', teacherPath, '--epochs', '1', '--dataset', 'synthetic', '--out', join(dir, 's2.kiln'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/teacher +\d+\.\d\d% +[\d,]+ MACs +[\d,]+ parameters/);
    expect(r.stdout).toMatch(/student +\d+\.\d\d% +[\d,]+ MACs +[\d,]+ parameters/);
  }, 60_000);

  it('refuses a corrupt teacher, alpha above 1 and T <= 0 before writing anything', async () => {
    const bad = join(dir, 'bad.kiln');
    await writeFile(bad, 'KILN garbage');
    const out = join(dir, 'never.kiln');
    const corrupt = await runCli('distill', '--teacher', bad, '--dataset', 'synthetic', '--out', out, '--json');
    expect(corrupt.exitCode).toBe(1);
    expect(lastJson<{ error: { code: string } }>(corrupt).error.code).toBe('ERR_KILN_CORRUPT_MODEL');
    for (const args of [['--alpha', '1.5'], ['--temperature', '0'], ['--temperature', '-2']]) {
      const r = await runCli('distill', '--teacher', teacherPath, '--dataset', 'synthetic', '--out', out, ...args);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(args[0]);
    }
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('--hint-teacher/--hint-student add feature distillation: the JSON line has the hint MSE per epoch, the student file holds no adapter', async () => {
    const out = join(dir, 'hinted.kiln');
    const r = await runCli('distill', '--teacher', teacherPath, '--epochs', '2', '--dataset', 'synthetic', '--hint-teacher', 'relu_1_out', '--hint-student', '4', '--hint-weight', '0.5', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<DistillJson & { hint: unknown; hintLoss: number[]; cachedTeacherFeatures: boolean }>(r);
    expect(result.hint).toEqual({ teacher: 'relu_1_out', student: '4', weight: 0.5 });
    expect(result.hintLoss).toHaveLength(2);
    expect(result.hintLoss.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    expect(result.cachedTeacherFeatures).toBe(true);
    // The adapter is not part of the student: the file is a plain half-width SeedCNN.
    const student = await load(out);
    expect(student.parameters().map((p) => p.name)).not.toContain('hint.weight');
  }, 120_000);

  it('refuses an unknown hint value, a spatial mismatch and a half-given hint before writing anything', async () => {
    const out = join(dir, 'never-hinted.kiln');
    const cases: [string[], string, RegExp][] = [
      [['--hint-teacher', 'nope_out', '--hint-student', '4'], 'ERR_KILN_INVALID_ARG', /nope_out/],
      [['--hint-teacher', 'relu_out', '--hint-student', '4'], 'ERR_KILN_SHAPE_MISMATCH', /height and width/],
      [['--hint-teacher', 'relu_out'], 'ERR_KILN_INVALID_ARG', /--hint-student/],
      [['--hint-weight', '2'], 'ERR_KILN_INVALID_ARG', /--hint-teacher/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli('distill', '--teacher', teacherPath, '--epochs', '1', '--dataset', 'synthetic', '--out', out, '--json', ...args);
      expect(r.exitCode, args.join(' ')).toBe(1);
      const { error } = lastJson<{ error: { code: string; message: string } }>(r);
      expect(error.code, args.join(' ')).toBe(code);
      expect(error.message).toMatch(message);
    }
    const negative = await runCli('distill', '--teacher', teacherPath, '--dataset', 'synthetic', '--out', out, '--hint-teacher', 'relu_1_out', '--hint-student', '4', '--hint-weight', '-1');
    expect(negative.exitCode).toBe(1);
    expect(negative.stderr).toContain('--hint-weight');
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
