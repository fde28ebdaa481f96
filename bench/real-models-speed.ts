/**
 * Section `models` of `npm run bench` (issue 15, "Fast on the architectures people use"): Kiln fp32
 * and int8 against onnxruntime-node fp32 and int8 on the exported torchvision architectures of the
 * ONNX coverage issue (bench/models/export_torchvision.py, the dynamo opset-21 file of each, or the
 * TorchScript opset-17 file where the folder has no dynamo exports: torch before 2.1) and on
 * the source article's padded SeedCNN ('same' 3x3 convolutions; MNIST 1x28x28 and CIFAR 3x32x32).
 *
 * Per model: Kiln fp32 runs the imported graph (SeedCNN: the Module); Kiln int8 runs the graph that
 * Kiln's PTQ (`quantize`, min/max over seeded image-like calibration inputs) returns, as a user of
 * `quantize()` + `InferenceSession.create(graph)` would; that graph exported as ONNX QDQ
 * (`exportModel`) is what ORT int8 runs, and ORT fp32 runs the original file (SeedCNN: its
 * `exportModel` bytes). The four are timed interleaved in one process (measureInterleaved: blocks of
 * back-to-back runs of each in turn, each block started once the previous one's threads went idle),
 * on the same inputs, with the same intraOpNumThreads. Every ratio comes from the same cell.
 *
 * Whether ORT really runs the QDQ file in int8 is read from the graph ORT optimised
 * (`optimizedModelFilePath`): int8 kernels (QLinearConv, QGemm, ...) against float ones (Conv, Gemm,
 * MatMul, their fused forms) left.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import * as ort from 'onnxruntime-node';

import type { Graph } from '../src/graph/ir.js';
import { seedCNN } from '../src/nn/models.js';
import type { Sequential } from '../src/nn/layers/sequential.js';
import { benchmarkInput, exportModel, importModel } from '../src/onnx/index.js';
import { decodeModel } from '../src/onnx/proto.js';
import { quantize } from '../src/quant/ptq.js';
import { InferenceSession, type SessionProfile } from '../src/runtime/session.js';
import type { Tensor } from '../src/tensor.js';
import { measureCorePeaks, type CorePeaks } from '../src/system.js';
import { measureInterleaved } from '../src/util/timing.js';
import type { Timing } from '../src/util/timing.js';
import { imageLike } from './image-like.js';
import { ceilingText, imageWork, lossText, modelProfile, peakMs } from './profile-analysis.js';
import type { Report } from './report.js';

/** Options of {@link benchModels} (from the bench command line). */
export interface ModelsBenchOptions {
  /** Folder of the torchvision exports; without it only the two SeedCNNs run. */
  dir?: string;
  /** Only the models whose name matches (SeedCNN names: seedcnn-mnist-padded, seedcnn-cifar-padded). */
  filter?: RegExp;
  /** Minimum timed milliseconds per cell (all four runtimes together). */
  minMs: number;
  threadCounts: number[];
}

/**
 * The exporters whose files are used, in order of preference: the folder's files of the first one
 * it has (torch before 2.1, such as Debian 12's 1.13, has no dynamo exporter).
 */
const EXPORTERS = ['dynamo-op21', 'torchscript-op17'];
/** Batch sizes of the torchvision models; the SeedCNNs use SEEDCNN_BATCHES (their targets are at 64). */
const BATCHES = [1, 16];
const SEEDCNN_BATCHES = [1, 64];
const CALIBRATION_IMAGES = 16;
/** Ops of ORT's optimised graph that compute in int8, and the float compute ops it may leave. */
const ORT_INT8_OPS = new Set(['QLinearConv', 'QGemm', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'MatMulIntegerToFloat', 'DynamicQuantizeMatMul']);
const ORT_FLOAT_OPS = new Set(['Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'MatMul', 'FusedMatMul', 'ConvTranspose']);
/** Kiln int8 IR ops (docs/int8-ir.md) that compute in int8; anything else in the int8 graph runs on u8 data or in fp32. */
const KILN_INT8_COMPUTE = new Set(['QLinearConv', 'QLinearGemm', 'QLinearMatMul']);

/** One model of the section, with the graphs each runtime runs (also read by bench/models-profile.ts). */
export interface Model {
  name: string;
  kind: 'seedcnn' | 'torchvision';
  batches: number[];
  /** One image's shape. */
  shape: number[];
  input: (batch: number) => Tensor<'float32'>;
  /** What Kiln fp32 runs. */
  fp32: Sequential | Graph;
  /** What ORT fp32 runs. */
  fp32Bytes: Uint8Array;
  int8?: Graph;
  qdqBytes?: Uint8Array;
  int8Reason?: string;
  prepSeconds: number;
  kilnInt8Ops?: string;
}

interface OrtInt8Graph {
  int8Nodes: number;
  floatNodes: number;
}

interface Cell {
  model: string;
  kind: Model['kind'];
  threads: number;
  batch: number;
  kilnFp32: Timing;
  ortFp32: Timing;
  kilnInt8?: Timing;
  ortInt8?: Timing;
}

/** 1-thread profiles of a model's Kiln graphs at one batch: its work per image and where its time goes. */
interface ModelProfiles {
  fp32?: SessionProfile;
  int8?: SessionProfile;
}

/** A 1-thread cell that misses one of the issue's ratio targets. */
interface Miss {
  target: string;
  cell: Cell;
  /** The ratio measured and the one asked. */
  got: number;
  wanted: number;
  /** Which of Kiln's paths is asked to be faster, and than what. */
  path: 'fp32' | 'int8';
  baseline: 'ORT fp32' | 'ORT int8' | 'Kiln fp32';
}

function short(msg: string, n = 160): string {
  const one = msg.replace(/\s+/g, ' ').replace(/\|/g, '/').trim();
  return one.length > n ? `${one.slice(0, n)}…` : one;
}

function log(line: string): void {
  process.stdout.write(`models: ${line}\n`);
}

async function quantizeInto(model: Model, source: Sequential | Graph, calibration: Tensor<'float32'>): Promise<void> {
  try {
    const { graph } = await quantize(source, calibration, { method: 'minmax', batchSize: 8, reportImages: 0 });
    model.int8 = graph;
    const ops = graph.nodes.map((n) => n.op);
    const other = [...new Set(ops.filter((op) => !KILN_INT8_COMPUTE.has(op) && op !== 'QuantizeLinear' && op !== 'DequantizeLinear'))];
    model.kilnInt8Ops = `${ops.filter((op) => KILN_INT8_COMPUTE.has(op)).length} int8 conv/gemm; also ${other.join(', ') || 'nothing else'}`;
  } catch (err) {
    model.int8Reason = `Kiln quantize failed: ${short((err as Error).message)}`;
    return;
  }
  try {
    model.qdqBytes = exportModel(model.int8);
  } catch (err) {
    model.int8Reason = `QDQ export failed: ${short((err as Error).message)}`;
  }
}

export async function seedCnnModel(name: string, shape: [number, number, number]): Promise<Model> {
  const t0 = performance.now();
  const net = seedCNN({ inChannels: shape[0], height: shape[1], width: shape[2], numClasses: 10, padding: 1, seed: 1 }).eval();
  const model: Model = {
    name,
    kind: 'seedcnn',
    batches: SEEDCNN_BATCHES,
    shape,
    input: (batch) => benchmarkInput(batch, shape, 7 + batch),
    fp32: net,
    fp32Bytes: exportModel(net, { inputShape: shape }),
    prepSeconds: 0,
  };
  // Pixels in [0, 1) like MNIST / CIFAR after scaling.
  await quantizeInto(model, net, benchmarkInput(32, shape, 3));
  model.prepSeconds = (performance.now() - t0) / 1000;
  return model;
}

/** The export files of `dir` the section measures: those of the first exporter in EXPORTERS it has. */
export function torchvisionFiles(dir: string): { exporter: string; files: string[] } {
  const inDir = readdirSync(dir);
  const exporter = EXPORTERS.find((e) => inDir.some((f) => f.endsWith(`.${e}.onnx`))) ?? EXPORTERS[0]!;
  return { exporter, files: inDir.filter((f) => f.endsWith(`.${exporter}.onnx`)).sort() };
}

export async function torchvisionModel(dir: string, file: string, exporter: string): Promise<Model> {
  const t0 = performance.now();
  const name = basename(file, `.${exporter}.onnx`);
  const bytes = new Uint8Array(await readFile(join(dir, file)));
  const graph = await importModel(bytes);
  const dims = graph.inputs[0]!.shape.slice(1);
  const shape = dims.map((d) => (typeof d === 'number' ? d : NaN));
  if (shape.some(Number.isNaN) || shape.length !== 3 || shape[0] !== 3) throw new Error(`${file}: expected a 3xHxW image input, got [${graph.inputs[0]!.shape.join(', ')}]`);
  const model: Model = {
    name,
    kind: 'torchvision',
    batches: BATCHES,
    shape,
    input: (batch) => imageLike(batch, 100 + batch, shape[1]),
    fp32: graph,
    fp32Bytes: bytes,
    prepSeconds: 0,
  };
  await quantizeInto(model, graph, imageLike(CALIBRATION_IMAGES, 1, shape[1]));
  model.prepSeconds = (performance.now() - t0) / 1000;
  return model;
}

function ortOptions(threads: number, optimizedModelFilePath?: string): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(optimizedModelFilePath ? { optimizedModelFilePath } : {}),
  };
}

/** Counts int8 and float compute nodes of the graph ORT optimised (ORT wrote it to `path`). */
async function ortGraph(path: string): Promise<OrtInt8Graph | undefined> {
  if (!existsSync(path)) return undefined;
  const nodes = decodeModel(new Uint8Array(await readFile(path))).graph?.node ?? [];
  let int8Nodes = 0;
  let floatNodes = 0;
  for (const n of nodes) {
    if (ORT_INT8_OPS.has(n.opType ?? '')) int8Nodes++;
    else if (ORT_FLOAT_OPS.has(n.opType ?? '')) floatNodes++;
  }
  return { int8Nodes, floatNodes };
}

/**
 * How each model, path and batch is profiled: at least 300 ms and 3 runs after one warm-up (the
 * profile only explains the timed cells; 10 runs of a batch-16 ResNet-50 would take 8 s).
 */
const PROFILE_RUNS = { minMs: 300, warmup: 1, minRuns: 3 };

/** Profiles the model's Kiln graphs on 1 thread at each of its batch sizes; a path that fails is left out (its cells say why). */
async function profileModel(model: Model, peaks: CorePeaks): Promise<Map<number, ModelProfiles>> {
  const byBatch = new Map<number, ModelProfiles>();
  for (const batch of model.batches) {
    const profiles: ModelProfiles = {};
    byBatch.set(batch, profiles);
    try {
      profiles.fp32 = await modelProfile(model.fp32, model, { ...PROFILE_RUNS, batch }, peaks);
      if (model.int8) profiles.int8 = await modelProfile(model.int8, model, { ...PROFILE_RUNS, batch }, peaks);
    } catch (err) {
      log(`${model.name}: not profiled at batch ${batch}: ${short((err as Error).message)}`);
    }
  }
  return byBatch;
}

async function measureModel(model: Model, threadCounts: number[], minMs: number, ortInt8: Map<string, OrtInt8Graph | string>): Promise<Cell[]> {
  const cells: Cell[] = [];
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-bench-models-'));
  try {
    for (const threads of threadCounts) {
      const kilnF = await InferenceSession.create(model.fp32, { intraOpNumThreads: threads, ...(model.kind === 'seedcnn' ? { inputShape: model.shape } : {}) });
      const ortF = await ort.InferenceSession.create(model.fp32Bytes, ortOptions(threads));
      let kilnQ: InferenceSession | undefined;
      let ortQ: ort.InferenceSession | undefined;
      if (model.int8) {
        try {
          kilnQ = await InferenceSession.create(model.int8, { intraOpNumThreads: threads });
        } catch (err) {
          model.int8Reason ??= `Kiln int8 session failed: ${short((err as Error).message)}`;
        }
      }
      if (model.qdqBytes) {
        // The first thread count's session also writes the graph ORT optimised, to see what runs in int8.
        const optimized = ortInt8.has(model.name) ? undefined : join(tmp, 'ort-optimized.onnx');
        try {
          ortQ = await ort.InferenceSession.create(model.qdqBytes, ortOptions(threads, optimized));
          if (optimized) ortInt8.set(model.name, (await ortGraph(optimized)) ?? 'ORT wrote no optimised graph');
        } catch (err) {
          ortInt8.set(model.name, `ORT refused the QDQ file: ${short((err as Error).message)}`);
        }
      }
      try {
        for (const batch of model.batches) {
          const x = model.input(batch);
          const ox = new ort.Tensor('float32', x.data, x.dims.slice());
          const kIn = kilnF.inputNames[0]!;
          const fns: (() => unknown)[] = [() => kilnF.run({ [kIn]: x }), () => ortF.run({ [ortF.inputNames[0]!]: ox })];
          if (kilnQ) fns.push(() => kilnQ!.run({ [kilnQ!.inputNames[0]!]: x }));
          if (ortQ) fns.push(() => ortQ!.run({ [ortQ!.inputNames[0]!]: ox }));
          const t = await measureInterleaved(fns, { minMs, warmup: 2, minRuns: 6 });
          const cell: Cell = { model: model.name, kind: model.kind, threads, batch, kilnFp32: t[0]!, ortFp32: t[1]! };
          let i = 2;
          if (kilnQ) cell.kilnInt8 = t[i++];
          if (ortQ) cell.ortInt8 = t[i++];
          cells.push(cell);
          const ms = (v: Timing | undefined): string => (v ? v.medianMs.toFixed(2) : 'n/a');
          log(
            `${model.name} threads ${threads} batch ${batch}: Kiln fp32 ${ms(cell.kilnFp32)} ms, ORT fp32 ${ms(cell.ortFp32)} ms, ` +
              `Kiln int8 ${ms(cell.kilnInt8)} ms, ORT int8 ${ms(cell.ortInt8)} ms; ORT fp32/Kiln fp32 ${(cell.ortFp32.medianMs / cell.kilnFp32.medianMs).toFixed(2)}` +
              (cell.kilnInt8 && cell.ortInt8 ? `, ORT int8/Kiln int8 ${(cell.ortInt8.medianMs / cell.kilnInt8.medianMs).toFixed(2)}` : ''),
          );
        }
      } finally {
        kilnF.release();
        kilnQ?.release();
        await ortF.release();
        await ortQ?.release();
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return cells;
}

function ratio(a: Timing | undefined, b: Timing | undefined): number | undefined {
  return a && b ? a.medianMs / b.medianMs : undefined;
}

function geomean(values: number[]): number | undefined {
  return values.length ? Math.exp(values.reduce((s, v) => s + Math.log(v), 0) / values.length) : undefined;
}

/**
 * Whether ORT runs the QDQ file in int8 (the models the int8 target covers): most of the conv/gemm
 * nodes of its optimised graph are int8 ones. Not all: ORT fuses DQ -> Conv -> Q only, so a last
 * conv whose output stays float (a model output, or the input of an op Kiln runs in fp32) runs in
 * float on ORT while Kiln's int8 IR runs it in int8 with a float output.
 */
function ortRunsInt8(g: OrtInt8Graph | string | undefined): boolean {
  return typeof g === 'object' && g.int8Nodes > g.floatNodes;
}

function describeOrtInt8(g: OrtInt8Graph | string | undefined): string {
  if (g === undefined) return 'n/a';
  if (typeof g === 'string') return g;
  if (g.int8Nodes === 0) return `float only (${g.floatNodes} float conv/gemm/matmul nodes)`;
  return g.floatNodes === 0 ? `int8 (${g.int8Nodes} int8 nodes)` : `partly int8 (${g.int8Nodes} int8, ${g.floatNodes} float conv/gemm/matmul nodes)`;
}

/** The acceptance targets of issue 15, checked on the 1-thread cells; each cell that misses one is added to `misses`. */
function targetRows(cells: Cell[], ortInt8: Map<string, OrtInt8Graph | string>, misses: Miss[], atPeak: PeakMs): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const one = cells.filter((c) => c.threads === 1);
  const big = (c: Cell): boolean => c.batch !== 1;
  const slots = [
    { label: 'batch 1', pick: (c: Cell) => c.batch === 1 },
    { label: 'batch 16 (SeedCNN 64)', pick: big },
  ];
  const verdict = (misses: string[], checked: number, none = 'no model measured'): string =>
    checked === 0 ? `not checked (${none})` : misses.length === 0 ? `met (models: ${checked})` : `missed on ${misses.length} of ${checked}`;
  const fmt = (m: Miss): string => `${m.cell.model} ${shortOf(m)}`;

  for (const s of slots) {
    const sel = one.filter(s.pick);
    const target = 'Kiln fp32 no slower than ORT fp32 on any model';
    const missed = sel
      .map((c): Miss => ({ target, cell: c, got: ratio(c.ortFp32, c.kilnFp32)!, wanted: 1, path: 'fp32', baseline: 'ORT fp32' }))
      .filter((m) => m.got < 1);
    misses.push(...missed);
    const texts = missed.map(fmt);
    rows.push([target, `${s.label}, 1 thread`, verdict(texts, sel.length), texts.join('; ')]);
  }
  for (const s of slots) {
    const sel = one.filter((c) => c.kind === 'torchvision' && s.pick(c));
    const g = geomean(sel.map((c) => ratio(c.ortFp32, c.kilnFp32)!));
    // The same mean if every model ran at the fp32 peak with the direct convolution's multiply-adds.
    const bounds = sel.map((c) => [c.ortFp32.medianMs, atPeak(c, 'fp32')] as const).filter((b): b is readonly [number, number] => b[1] !== undefined);
    const bound = bounds.length === sel.length ? geomean(bounds.map(([ort, peak]) => ort / peak)) : undefined;
    rows.push([
      'Kiln fp32 >= 1.5x ORT fp32, geometric mean over the torchvision set',
      `${s.label.replace(' (SeedCNN 64)', '')}, 1 thread`,
      g === undefined ? 'not checked (no torchvision models measured)' : g >= 1.5 ? `met (${g.toFixed(2)}x over ${sel.length})` : `missed (${g.toFixed(2)}x over ${sel.length}, ${((1 - g / 1.5) * 100).toFixed(0)}% short)`,
      bound === undefined
        ? ''
        : `every model at the measured fp32 peak would give ${bound.toFixed(2)}x (the direct convolution's multiply-adds; only Winograd convolutions, which do fewer, can pass it)`,
    ]);
  }
  for (const s of slots) {
    const sel = one.filter((c) => s.pick(c) && ortRunsInt8(ortInt8.get(c.model)));
    const noKiln = sel.filter((c) => !c.kilnInt8 || !c.ortInt8).map((c) => `${c.model} (Kiln int8 n/a)`);
    const target = 'Kiln int8 >= 1.5x ORT int8 on each model ORT runs in int8 (most of its conv/gemm nodes int8)';
    const missed = sel
      .filter((c) => c.kilnInt8 && c.ortInt8)
      .map((c): Miss => ({ target, cell: c, got: ratio(c.ortInt8, c.kilnInt8)!, wanted: 1.5, path: 'int8', baseline: 'ORT int8' }))
      .filter((m) => m.got < 1.5);
    misses.push(...missed);
    const texts = missed.map(fmt);
    const excluded = [...new Set(one.filter((c) => s.pick(c) && !ortRunsInt8(ortInt8.get(c.model))).map((c) => c.model))];
    rows.push([
      target,
      `${s.label}, 1 thread`,
      verdict([...noKiln, ...texts], sel.length, excluded.length ? 'no model that ORT runs in int8' : 'no model measured'),
      [...noKiln, ...texts].join('; ') + (excluded.length ? `${noKiln.length + texts.length ? '. ' : ''}Not run (mostly) in int8 by ORT, so not held to it: ${excluded.join(', ')}` : ''),
    ]);
  }
  const seeds = one.filter((c) => c.kind === 'seedcnn' && c.batch === 64);
  for (const [what, target, baseline, f] of [
    ['Kiln int8 >= 2x Kiln fp32 (padded SeedCNN MNIST and CIFAR)', 2, 'Kiln fp32', (c: Cell) => ratio(c.kilnFp32, c.kilnInt8)],
    ['Kiln int8 >= 2.5x ORT int8 (padded SeedCNN MNIST and CIFAR)', 2.5, 'ORT int8', (c: Cell) => ratio(c.ortInt8, c.kilnInt8)],
  ] as const) {
    const missed = seeds.filter((c) => !(f(c)! >= target));
    const texts = missed.map((c) => {
      const r = f(c);
      if (r === undefined) return `${c.model} n/a`;
      const m: Miss = { target: what, cell: c, got: r, wanted: target, path: 'int8', baseline };
      misses.push(m);
      return fmt(m);
    });
    const got = seeds.map((c) => `${c.model} ${f(c) === undefined ? 'n/a' : `${f(c)!.toFixed(2)}x`}`).join(', ');
    rows.push([what, 'batch 64, 1 thread', verdict(texts, seeds.length), texts.length ? texts.join('; ') : got]);
  }
  return rows;
}

/** "0.89x (11% short)": a miss's ratio and how far below the target it is. */
function shortOf(m: Miss): string {
  return `${m.got.toFixed(2)}x (${((1 - m.got / m.wanted) * 100).toFixed(0)}% short)`;
}

/** Milliseconds a cell's run of the given Kiln path would take at the measured peak (undefined: not profiled). */
type PeakMs = (cell: Cell, path: 'fp32' | 'int8') => number | undefined;

/** One row per missed target and cell: by how much, and why, from the profile and the peak. */
function whyRows(misses: Miss[], atPeak: PeakMs, profiles: Map<string, Map<number, ModelProfiles>>, peaks: CorePeaks): (string | number)[][] {
  return misses.map((m) => {
    const c = m.cell;
    const kilnMs = (m.path === 'fp32' ? c.kilnFp32 : c.kilnInt8)?.medianMs;
    const baselineMs = (m.baseline === 'ORT fp32' ? c.ortFp32 : m.baseline === 'ORT int8' ? c.ortInt8 : c.kilnFp32)?.medianMs;
    // ORT int8 runs Kiln's int8 graph exported, ORT fp32 the float model: each does the work of Kiln's graph of its path.
    const kilnPeak = atPeak(c, m.path);
    const baselinePeak = atPeak(c, m.baseline.endsWith('fp32') ? 'fp32' : 'int8');
    const profile = profiles.get(c.model)?.get(c.batch)?.[m.path];
    const kilnStepsMs = profile && profile.runs > 0 ? profile.totalMs / profile.runs : undefined;
    const ceiling =
      kilnMs === undefined || baselineMs === undefined || kilnPeak === undefined || baselinePeak === undefined
        ? 'not profiled'
        : ceilingText({ target: m.wanted, kilnMs, kilnPeakMs: kilnPeak, baselineMs, baselinePeakMs: baselinePeak, kiln: `Kiln ${m.path}`, baseline: m.baseline, ...(kilnStepsMs === undefined ? {} : { kilnStepsMs }) });
    return [
      m.target.replace(/ \(.*\)$/, ''),
      c.model,
      `batch ${c.batch}`,
      shortOf(m),
      ceiling,
      profile ? lossText(profile, peaks) : '',
    ];
  });
}

/** Runs the section and adds its tables to `report`. */
export async function benchModels(report: Report, options: ModelsBenchOptions): Promise<void> {
  const { dir, filter, minMs, threadCounts } = options;
  const notes: string[] = [];
  const pick = (name: string): boolean => !filter || filter.test(name);
  const specs: { name: string; load: () => Promise<Model> }[] = [];
  if (pick('seedcnn-mnist-padded')) specs.push({ name: 'seedcnn-mnist-padded', load: () => seedCnnModel('seedcnn-mnist-padded', [1, 28, 28]) });
  if (pick('seedcnn-cifar-padded')) specs.push({ name: 'seedcnn-cifar-padded', load: () => seedCnnModel('seedcnn-cifar-padded', [3, 32, 32]) });
  if (dir) {
    const { exporter, files } = torchvisionFiles(dir);
    const suffix = `.${exporter}.onnx`;
    if (files.length === 0) notes.push(`no *${suffix} files in ${dir}`);
    else notes.push(`torchvision files: *${suffix}`);
    for (const f of files) {
      const name = basename(f, suffix);
      if (pick(name)) specs.push({ name, load: () => torchvisionModel(dir, f, exporter) });
    }
    const logPath = join(dir, 'export-log.json');
    if (existsSync(logPath)) {
      const exportLog = JSON.parse(readFileSync(logPath, 'utf8')) as { torch?: string; torchvision?: string; exports?: { model: string; exporter: string; ok: boolean }[] };
      notes.push(`torchvision exports from ${dir}: torch ${exportLog.torch}, torchvision ${exportLog.torchvision}`);
      const failed = (exportLog.exports ?? []).filter((e) => e.exporter === exporter && !e.ok).map((e) => e.model);
      if (failed.length) notes.push(`not exported (${exporter}), so not measured: ${failed.join(', ')}`);
    }
  } else {
    const line = 'torchvision architectures not measured: export them with `python3 bench/models/export_torchvision.py <dir>` and run `npm run bench -- models --real-models <dir>` (or set KILN_REAL_MODELS=<dir>)';
    notes.push(line);
    log(line);
  }

  log(`${specs.length} models (${specs.map((m) => m.name).join(', ')}), threads ${threadCounts.join(' and ')}, at least ${minMs} ms per timed row`);
  const cells: Cell[] = [];
  const ortInt8 = new Map<string, OrtInt8Graph | string>();
  const coverage: (string | number)[][] = [];
  const peaks = measureCorePeaks();
  const profiles = new Map<string, Map<number, ModelProfiles>>();
  for (const spec of specs) {
    let model: Model;
    try {
      model = await spec.load();
    } catch (err) {
      const reason = `not measured: ${short((err as Error).message)}`;
      log(`${spec.name} ${reason}`);
      coverage.push([spec.name, 'n/a', 'n/a', reason]);
      continue;
    }
    log(`${model.name}: imported and quantized in ${model.prepSeconds.toFixed(1)} s${model.int8Reason ? ` (int8: ${model.int8Reason})` : ''}`);
    profiles.set(model.name, await profileModel(model, peaks));
    try {
      cells.push(...(await measureModel(model, threadCounts, minMs, ortInt8)));
    } catch (err) {
      const reason = `timing failed: ${short((err as Error).message)}`;
      log(`${model.name} ${reason}`);
      model.int8Reason = [model.int8Reason, reason].filter(Boolean).join('; ');
    }
    coverage.push([model.name, model.kilnInt8Ops ?? 'n/a', describeOrtInt8(ortInt8.get(model.name)), model.int8Reason ?? '']);
  }

  const rows = cells.map((c) => [
    c.model, c.threads, c.batch,
    c.kilnFp32.medianMs, c.ortFp32.medianMs, c.kilnInt8?.medianMs ?? 'n/a', c.ortInt8?.medianMs ?? 'n/a',
    ratio(c.ortFp32, c.kilnFp32)!, ratio(c.ortInt8, c.kilnInt8) ?? 'n/a', ratio(c.kilnFp32, c.kilnInt8) ?? 'n/a',
  ]);
  const combos = [...new Set(cells.filter((c) => c.kind === 'torchvision').map((c) => `${c.batch}/${c.threads}`))];
  for (const combo of combos) {
    const [batch, threads] = combo.split('/').map(Number);
    const sel = cells.filter((c) => c.kind === 'torchvision' && c.batch === batch && c.threads === threads);
    const g = (f: (c: Cell) => number | undefined): number | string => {
      const v = sel.map(f).filter((x): x is number => x !== undefined);
      return v.length ? `${geomean(v)!.toFixed(3)} (${v.length})` : 'n/a';
    };
    rows.push([
      `geometric mean, torchvision set`, threads!, batch!, '', '', '', '',
      g((c) => ratio(c.ortFp32, c.kilnFp32)), g((c) => ratio(c.ortInt8, c.kilnInt8)), g((c) => ratio(c.kilnFp32, c.kilnInt8)),
    ]);
  }
  report.add({
    title: 'Real architectures: Kiln fp32 and int8 vs onnxruntime-node fp32 and int8 (issue 15)',
    baseline:
      'onnxruntime-node in the same process on the same inputs, intraOpNumThreads matched, graphOptimizationLevel all; the four runtimes of a row timed interleaved ' +
      `(blocks of back-to-back runs of each in turn, each started once the previous block's threads went idle; at least ${minMs} ms per row). ` +
      'ORT fp32 runs the exported file (torchvision: the dynamo opset-21 export, else the TorchScript opset-17 one; SeedCNN: Kiln\'s exportModel), Kiln fp32 the same model; Kiln int8 runs the graph Kiln\'s PTQ returns ' +
      `(quantize(), min/max over ${CALIBRATION_IMAGES} seeded image-like inputs for torchvision, 32 uniform [0, 1) ones for SeedCNN; uint8 activations, per-channel int8 weights) ` +
      'and ORT int8 that graph exported by Kiln as ONNX QDQ. Ratios above 1: the second runtime named is faster. SeedCNN: padding 1 (the article\'s layers), batch 1 and 64.',
    columns: ['model', 'threads', 'batch', 'Kiln fp32 ms', 'ORT fp32 ms', 'Kiln int8 ms', 'ORT int8 ms', 'ORT fp32 / Kiln fp32', 'ORT int8 / Kiln int8', 'Kiln fp32 / Kiln int8'],
    rows,
    notes: ['median ms per run; geometric-mean rows: over the torchvision models that have the ratio (count in brackets)', ...notes],
  });
  report.add({
    title: 'Real architectures: what runs in int8',
    baseline: "Kiln: the ops of the int8 graph from quantize(); ORT: the compute nodes of the graph ORT optimised from Kiln's QDQ export (optimizedModelFilePath)",
    columns: ['model', 'Kiln int8 graph', 'ORT on the QDQ file', 'n/a reason'],
    rows: coverage,
  });
  const atPeak: PeakMs = (cell, path) => {
    const p = profiles.get(cell.model)?.get(cell.batch)?.[path];
    return p ? peakMs(imageWork(p), peaks, cell.batch) : undefined;
  };
  const misses: Miss[] = [];
  report.add({
    title: 'Issue 15 targets (1 thread)',
    baseline: 'the ratios of the table above, each measured within one interleaved row',
    columns: ['target', 'cells', 'result', 'detail'],
    rows: targetRows(cells, ortInt8, misses, atPeak),
    notes: dir ? [] : ['torchvision set not measured (no --real-models): its targets are unchecked'],
  });
  if (misses.length) {
    report.add({
      title: 'Issue 15 misses: why, from the profile',
      baseline:
        `each runtime's speed in the missed cell as a fraction of the time the run's multiply-adds take at this CPU's measured single-core peak ` +
        `(fp32 FMA ${peaks.f32Gflops.toFixed(1)} GFLOP/s, int8 multiply-add ${peaks.int8Gops.toFixed(1)} GOP/s; the work of Kiln's graph of that path, counted by InferenceSession.profile, which ORT's file of the same path also does), ` +
        `and the fraction the target asks of Kiln. Work counts the direct convolution's multiply-adds, so only Winograd convolutions can pass 100%. ` +
        `The kinds of step that lose most time against the peak (their time minus their time at the peak) come from a 1-thread profile of Kiln at the cell's batch, run just before the timing (section profile breaks batch 1 down further)`,
      columns: ['target', 'model', 'cell', 'ratio', 'fraction of the peak', 'where Kiln loses time'],
      rows: whyRows(misses, atPeak, profiles, peaks),
    });
  }
}
