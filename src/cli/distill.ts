/**
 * `kiln distill`: distils a teacher (.kiln or ONNX, fp32 or int8) into a SeedCNN of the given width
 * on the train split of --dataset (progress bar per epoch), prints both models' held-out accuracy,
 * MACs per image and parameter counts, and writes the student as a .kiln file.
 */
import { stat } from 'node:fs/promises';

import { distill } from '../distill/distill.js';
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import { seedCNN } from '../nn/models.js';
import { save } from '../runtime/model-io.js';
import { InferenceSession } from '../runtime/session.js';
import { checkOutputFile } from '../util/files.js';
import { shapeError, typeError } from '../validate.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource, runtimeModel } from './model-source.js';
import { graphRows, moduleRows } from './info.js';
import { Output, percent } from './output.js';

export interface DistillCommandOptions {
  teacher?: string;
  studentWidth: number;
  epochs: number;
  temperature: number;
  alpha: number;
  /** Feature distillation: the teacher's value, the student's layer index (both or neither) and the weight. */
  hintTeacher?: string;
  hintStudent?: string;
  hintWeight?: number;
  dataset: string;
  dataDir?: string;
  /** Seed of the split (default: the teacher's recorded one, else 1), the student's init and batches. */
  seed?: number;
  out?: string;
  json?: boolean;
}

export async function distillCommand(opts: DistillCommandOptions): Promise<void> {
  const out = new Output(opts);
  if (opts.teacher === undefined) throw typeError('--teacher', 'a .kiln or .onnx teacher model', undefined);
  if (opts.out === undefined) throw typeError('--out', 'the .kiln file to write', undefined);
  if ((opts.hintTeacher === undefined) !== (opts.hintStudent === undefined)) {
    throw opts.hintTeacher === undefined
      ? typeError('--hint-teacher', 'the teacher value to match with --hint-student', undefined)
      : typeError('--hint-student', 'the student layer to match with --hint-teacher', undefined);
  }
  if (opts.hintWeight !== undefined && opts.hintTeacher === undefined) throw typeError('--hint-teacher', 'the teacher value to match with --hint-weight', undefined);
  const hint = opts.hintTeacher === undefined ? undefined : { teacher: opts.hintTeacher, student: opts.hintStudent!, weight: opts.hintWeight ?? 1 };
  // Before any work: a bad --out would otherwise fail only after training.
  await checkOutputFile(opts.out, '--out');
  const source = await readModelSource(opts.teacher);
  const teacherGraph: Graph = source.kind === 'kiln' ? toGraph(source.module, source.inputShape) : source.graph;
  const imageShape = teacherGraph.inputs[0]?.shape.slice(1);
  const classes = teacherGraph.outputs[0]?.shape[1];
  if (!imageShape || imageShape.length !== 3 || imageShape.some((d) => typeof d !== 'number') || typeof classes !== 'number') {
    throw shapeError('--teacher', 'a model with fixed image [C, H, W] input and [N, classes] output', `input [${imageShape?.join(', ')}], classes ${String(classes)}`);
  }
  const [c, h, w] = imageShape as number[];
  const metadata = source.kind === 'onnx' ? undefined : source.file.metadata;
  // The teacher's split: its held-out images must be ones neither model trained on.
  const seed = splitSeed(opts.dataset, opts.seed, metadata, opts.teacher);
  const { train: trainSet, test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
  const student = seedCNN({ inChannels: c, height: h, width: w, numClasses: classes, widthMultiplier: opts.studentWidth, seed });
  // With a hint, distill() opens the session itself from the graph, with the hint value as an
  // extra output (an open session returns only its graph's outputs).
  const session = hint ? undefined : await InferenceSession.create(runtimeModel(source), source.kind === 'kiln' ? { inputShape: source.inputShape } : {});

  const batchSize = 64;
  const perEpoch = Math.ceil(trainSet.length / batchSize);
  const hintText = hint ? `, hint ${hint.teacher} -> layer ${hint.student} (weight ${hint.weight})` : '';
  out.line(`distilling ${opts.teacher} into SeedCNN x${opts.studentWidth}: T ${opts.temperature}, alpha ${opts.alpha}${hintText}, ${opts.epochs} epochs on ${trainSet.name} (${trainSet.length} images)`);
  const format = 'distilling epoch {epoch}/{epochs} |{bar}| {value}/{total} batches, loss {loss}';
  let bar = out.progress(perEpoch, format, { epoch: 1, epochs: opts.epochs, loss: '-' });
  let barEpoch = 0;
  const started = performance.now();
  let result: Awaited<ReturnType<typeof distill>>;
  try {
    result = await distill(session ?? teacherGraph, student, trainSet, {
      epochs: opts.epochs,
      temperature: opts.temperature,
      alpha: opts.alpha,
      validation: test,
      ...(hint ? { hint } : {}),
      train: {
        seed,
        batchSize,
        callbacks: {
          onBatchEnd: ({ epoch, batch, loss }) => {
            if (epoch !== barEpoch) {
              bar = out.progress(perEpoch, format, { epoch: epoch + 1, epochs: opts.epochs, loss: '-' });
              barEpoch = epoch;
            }
            if (batch % 8 === 7 || batch + 1 === perEpoch) bar.update(batch + 1, { epoch: epoch + 1, epochs: opts.epochs, loss: loss.toFixed(4) });
          },
          onEpochEnd: (e) => {
            bar.stop();
            out.line(`epoch ${e.epoch + 1}/${opts.epochs}: distillation loss ${e.trainLoss.toFixed(4)}, train ${percent(e.trainAccuracy)}, held-out ${percent(e.valAccuracy!)}`);
          },
        },
      },
    });
  } finally {
    bar.stop();
    session?.release();
  }
  const seconds = (performance.now() - started) / 1000;
  // Counted as `kiln info` counts them (int8 convolutions and Gemms included).
  const teacherSize = sizeOf(source.kind === 'kiln' ? moduleRows(source.module, source.inputShape).rows : graphRows(teacherGraph).rows);
  const studentSize = sizeOf(moduleRows(student, [c, h, w]).rows);
  const teacherAccuracy = result.teacherAccuracy!;
  const studentAccuracy = result.studentAccuracy!;
  await save(student, opts.out, {
    inputShape: [c, h, w],
    metadata: {
      dataset: trainSet.name,
      seed: String(seed),
      source: opts.teacher,
      testAccuracy: String(studentAccuracy),
      distillation: { teacher: opts.teacher, widthMultiplier: opts.studentWidth, temperature: opts.temperature, alpha: opts.alpha, epochs: opts.epochs, teacherAccuracy, ...(hint ? { hint } : {}) },
    },
  });
  const fileBytes = (await stat(opts.out)).size;
  const row = (name: string, acc: number, s: { macs: number; parameters: number }): string =>
    `  ${name.padEnd(8)} ${percent(acc).padStart(7)}  ${s.macs.toLocaleString('en-US').padStart(12)} MACs  ${s.parameters.toLocaleString('en-US').padStart(10)} parameters`;
  if (result.hintLoss) out.line(`hint mean squared error per epoch (before the weight): ${result.hintLoss.map((v) => v.toFixed(4)).join(', ')}`);
  out.line([`held-out accuracy on ${test.length} images:`, row('teacher', teacherAccuracy, teacherSize), row('student', studentAccuracy, studentSize)].join('\n'));
  out.result(
    {
      teacher: opts.teacher,
      out: opts.out,
      fileBytes,
      widthMultiplier: opts.studentWidth,
      temperature: opts.temperature,
      alpha: opts.alpha,
      epochs: opts.epochs,
      evalImages: test.length,
      seconds,
      cachedTeacherLogits: result.cachedTeacherLogits,
      ...(hint ? { hint, cachedTeacherFeatures: result.cachedTeacherFeatures, hintLoss: result.hintLoss } : {}),
      teacherAccuracy,
      studentAccuracy,
      teacherMacs: teacherSize.macs,
      studentMacs: studentSize.macs,
      teacherParameters: teacherSize.parameters,
      studentParameters: studentSize.parameters,
    },
    () => `student ${percent(studentAccuracy)} vs teacher ${percent(teacherAccuracy)} (${((studentAccuracy - teacherAccuracy) * 100).toFixed(2)} points) at ${(studentSize.macs / teacherSize.macs * 100).toFixed(1)}% of the MACs; wrote ${opts.out} (${fileBytes} bytes)`,
  );
}

function sizeOf(rows: readonly { parameters: number; macs: number }[]): { parameters: number; macs: number } {
  return { parameters: rows.reduce((s, r) => s + r.parameters, 0), macs: rows.reduce((s, r) => s + r.macs, 0) };
}
