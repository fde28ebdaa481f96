/**
 * Section `profile` of `npm run bench` (issue 15, "name every model that misses, and why, from the
 * profile"): where Kiln's fp32 and int8 time goes on the models of section `models`, at batch 1 and
 * one thread (the cells of the per-model targets). Per model and path: the steps' time per
 * run, the kinds of step that take it (a convolution's kernel size, stride and grouping; other ops
 * by name) with their share and fraction of this CPU's measured peak (int8 steps against the int8
 * multiply-add peak, float steps against the fp32 FMA peak), and the slowest single step. The ratios
 * against onnxruntime-node are section `models`' table; this one says what they are made of.
 */
import { basename } from 'node:path';

import type { SessionProfile } from '../src/runtime/session.js';
import { measureCorePeaks, type CorePeaks } from '../src/system.js';
import { kindFraction, kindTotals, modelProfile } from './profile-analysis.js';
import { type Model, seedCnnModel, torchvisionFiles, torchvisionModel } from './real-models-speed.js';
import type { Report } from './report.js';

export interface ProfileBenchOptions {
  /** Folder of the torchvision exports; without it only the two SeedCNNs run. */
  dir?: string;
  filter?: RegExp;
  /** Least timed milliseconds per model and path. */
  minMs: number;
}

/** Kinds of step listed per model and path. */
const KINDS_SHOWN = 4;

function peakText(fraction: number | undefined): string {
  return fraction !== undefined && fraction > 0 ? `, ${Math.round(100 * fraction)}% of peak` : '';
}

function row(model: string, path: string, p: SessionProfile, peaks: CorePeaks): (string | number)[] {
  const kinds = kindTotals(p);
  const shown = kinds.slice(0, KINDS_SHOWN).map((k) => `${k.kind} ${Math.round((100 * k.ms) / p.totalMs)}%${peakText(kindFraction(k, peaks))}`);
  while (shown.length < KINDS_SHOWN) shown.push('');
  const slowest = p.steps[0]!;
  const stepLine = slowest.kernel.replace(/^(\S+) \S+: /, '$1 ').replace(/ \(.*\)$/, '');
  const slowestText = `${stepLine} ${Math.round(100 * slowest.share)}%${peakText(slowest.fractionOfPeak)}`;
  return [model, path, p.totalMs / p.runs, ...shown, slowestText];
}

/** Runs the section and adds its table to `report`. */
export async function benchProfile(report: Report, options: ProfileBenchOptions): Promise<void> {
  const { dir, filter, minMs } = options;
  const pick = (name: string): boolean => !filter || filter.test(name);
  const loads: { name: string; load: () => Promise<Model> }[] = [];
  if (pick('seedcnn-mnist-padded')) loads.push({ name: 'seedcnn-mnist-padded', load: () => seedCnnModel('seedcnn-mnist-padded', [1, 28, 28]) });
  if (pick('seedcnn-cifar-padded')) loads.push({ name: 'seedcnn-cifar-padded', load: () => seedCnnModel('seedcnn-cifar-padded', [3, 32, 32]) });
  const notes: string[] = [];
  if (dir) {
    const { exporter, files } = torchvisionFiles(dir);
    notes.push(files.length ? `torchvision files: ${dir}/*.${exporter}.onnx` : `no *.${exporter}.onnx files in ${dir}`);
    for (const f of files) {
      const name = basename(f, `.${exporter}.onnx`);
      if (pick(name)) loads.push({ name, load: () => torchvisionModel(dir, f, exporter) });
    }
  } else {
    notes.push('torchvision architectures not profiled: give the folder of their exports (`--real-models <dir>` or KILN_REAL_MODELS)');
  }
  const peaks = measureCorePeaks();
  const rows: (string | number)[][] = [];
  for (const { name, load } of loads) {
    let model: Model;
    try {
      model = await load();
    } catch (err) {
      notes.push(`${name}: not profiled: ${(err as Error).message.slice(0, 160)}`);
      continue;
    }
    rows.push(row(name, 'fp32', await modelProfile(model.fp32, model, { minMs }, peaks), peaks));
    if (model.int8) rows.push(row(name, 'int8', await modelProfile(model.int8, model, { minMs }, peaks), peaks));
    else notes.push(`${name}: no int8 row (${model.int8Reason ?? 'not quantized'})`);
    process.stdout.write(`profile: ${name} done\n`);
  }
  report.add({
    title: 'Where the time goes: Kiln fp32 and int8 per model, batch 1, 1 thread (issue 15)',
    baseline:
      `each kind of step's share of the steps' time per run (InferenceSession.profile), and its rate as a fraction of this CPU's measured single-core peak: ` +
      `fp32 FMA ${peaks.f32Gflops.toFixed(1)} GFLOP/s for float steps, int8 multiply-add ${peaks.int8Gops.toFixed(1)} GOP/s for int8 ones. ` +
      `Kinds: a convolution by kernel size, stride (/2) and grouping (depthwise: one channel per group); other ops by name. ` +
      `Rates count the direct convolution's multiply-adds, so Winograd convolutions can pass 100%. Same models, inputs and quantization as section models; its table gives the ratios against onnxruntime-node`,
    columns: ['model', 'path', 'ms/run', '1st kind', '2nd kind', '3rd kind', '4th kind', 'slowest step'],
    rows,
    notes,
  });
}
