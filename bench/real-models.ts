/**
 * Real architectures (issue 14): every .onnx file in a folder (made by
 * bench/models/export_torchvision.py: torchvision models with weights=None, exported by PyTorch's
 * dynamo exporter at opset 21 and its TorchScript exporter at opset 17) is imported by Kiln and,
 * when it imports, compared with onnxruntime-node on two seeded image-like random inputs (batch 1,
 * seed 1 and batch 2, seed 2; see imageLike in bench/image-like.ts) with `compareGraphWithModel` (ORT runs the original file).
 *
 * Result per file: match (max relL2 <= 1e-4 and the same top-1 on every row), mismatch, refused
 * (Kiln's import or session creation threw a KilnError: its code and message are kept) or error
 * (anything else). Writes bench/results/real-models.md and .json.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/real-models.js /work/torchvision-onnx [filter]
 */
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { KilnError } from '../src/errors.js';
import { compareGraphWithModel } from '../src/onnx/compare.js';
import { importModel } from '../src/onnx/import.js';
import type { Graph } from '../src/graph/ir.js';
import { InferenceSession } from '../src/runtime/session.js';

import { imageLike } from './image-like.js';

const TOLERANCE = 1e-4;
const RUNS = [
  { batch: 1, seed: 1 },
  { batch: 2, seed: 2 },
];

interface Row {
  file: string;
  model: string;
  exporter: string;
  result: 'match' | 'mismatch' | 'refused' | 'error';
  relL2?: number;
  top1?: number;
  /** onnxruntime's outputs for two different random inputs: ‖y0 − y1‖ / ‖y1‖ (a match means little when tiny). */
  sensitivity?: number;
  /** Whether those two inputs get different top-1 classes. */
  top1Differs?: boolean;
  /** relL2 of Kiln's (y0 − y1) against onnxruntime's (y0 − y1): whether Kiln follows what the input changes. */
  deltaRelL2?: number;
  code?: string;
  reason?: string;
  stage?: 'import' | 'compare';
  seconds: number;
}

function short(msg: string, n = 300): string {
  const one = msg.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n)}…` : one;
}

async function measure(dir: string, file: string): Promise<Row> {
  const path = join(dir, file);
  const [model, exporter] = basename(file, '.onnx').split('.') as [string, string];
  const t0 = Date.now();
  const row = (r: Omit<Row, 'file' | 'model' | 'exporter' | 'seconds'>): Row => ({ file, model, exporter: exporter ?? '', ...r, seconds: Math.round((Date.now() - t0) / 100) / 10 });
  let graph;
  try {
    graph = await importModel(path);
  } catch (err) {
    const e = err as Error & { code?: string };
    return row({ result: err instanceof KilnError ? 'refused' : 'error', code: e.code ?? e.name, reason: short(e.message), stage: 'import' });
  }
  let relL2 = 0;
  let top1 = 1;
  try {
    for (const r of RUNS) {
      const input = imageLike(r.batch, r.seed);
      const res = await compareGraphWithModel(graph, path, { [graph.inputs[0]!.name]: input }, { intraOpNumThreads: 1 });
      for (const o of res.outputs) {
        relL2 = Math.max(relL2, Number.isNaN(o.relL2) ? Infinity : o.relL2);
        top1 = Math.min(top1, o.top1Agreement);
      }
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    return row({ result: err instanceof KilnError ? 'refused' : 'error', code: e.code ?? e.name, reason: short(e.message), stage: 'compare' });
  }
  return row({ result: relL2 <= TOLERANCE && top1 === 1 ? 'match' : 'mismatch', relL2, top1, ...(await sensitivity(path, graph)) });
}

/** How much onnxruntime's output moves between the two rows of the batch-2 input that the comparison uses. */
async function sensitivity(path: string, graph: Graph): Promise<{ sensitivity: number; top1Differs: boolean; deltaRelL2: number }> {
  const r = RUNS.find((run) => run.batch === 2)!;
  const x = imageLike(2, r.seed);
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  let y: Float32Array;
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data as Float32Array, [2, 3, 224, 224]) });
    y = out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
  const kiln = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
  let k: Float32Array;
  try {
    const out = await kiln.run({ [graph.inputs[0]!.name]: x });
    k = out[graph.outputs[0]!.name]!.data as Float32Array;
  } finally {
    kiln.release();
  }
  const per = y.length / 2;
  let d2 = 0;
  let n2 = 0;
  let e2 = 0;
  let a0 = 0;
  let a1 = 0;
  for (let j = 0; j < per; j++) {
    const d = y[j]! - y[per + j]!;
    const e = k[j]! - k[per + j]! - d;
    d2 += d * d;
    e2 += e * e;
    n2 += y[per + j]! * y[per + j]!;
    if (y[j]! > y[a0]!) a0 = j;
    if (y[per + j]! > y[per + a1]!) a1 = j;
  }
  return { sensitivity: Math.sqrt(d2 / n2), top1Differs: a0 !== a1, deltaRelL2: d2 === 0 ? Infinity : Math.sqrt(e2 / d2) };
}

function markdown(rows: Row[], exportLog: unknown): string {
  const lines: string[] = [];
  const count = (k: Row['result']): number => rows.filter((r) => r.result === k).length;
  lines.push('# Real architectures against onnxruntime-node (issue 14)');
  lines.push('');
  lines.push('torchvision models (weights=None, torch.manual_seed(0), eval) and a small detection-style head, exported by `bench/models/export_torchvision.py`');
  lines.push('with the dynamo exporter at opset 21 and the TorchScript exporter at opset 17 (dynamic batch). Each file is imported by Kiln and compared with');
  lines.push(`onnxruntime-node (running the original file) on seeded image-like random inputs (per-channel offset and scale, a low-frequency wave, Gaussian noise) at batch 1 and 2, one thread each. match = max relL2 <= ${TOLERANCE} and the same top-1 on every row.`);
  lines.push('');
  lines.push(`${rows.length} files: ${count('match')} match, ${count('mismatch')} mismatch, ${count('refused')} refused, ${count('error')} error.`);
  const log = exportLog as { torch?: string; torchvision?: string; exports?: { model: string; exporter: string; ok: boolean; error?: string; note?: string }[] } | undefined;
  if (log) {
    lines.push('');
    lines.push(`Exported with torch ${log.torch}, torchvision ${log.torchvision}.`);
    const failed = (log.exports ?? []).filter((e) => !e.ok);
    const retried = (log.exports ?? []).filter((e) => e.ok && e.note).length;
    lines.push(failed.length === 0 ? `Every export produced a file${retried ? ` (${retried} only after a retry, below)` : ''}.` : `Exporter failures: ${failed.map((e) => `${e.model} ${e.exporter}: ${short(e.error ?? '', 200)}`).join('; ')}`);
    for (const e of (log.exports ?? []).filter((e) => e.ok && e.note)) {
      lines.push(`${e.model} ${e.exporter}: ${e.note}; the first try failed with: ${short(e.error ?? '', 400).replace(/\|/g, '/')}`);
    }
  }
  lines.push('');
  lines.push('Input sensitivity: onnxruntime\'s outputs for the two rows of the batch-2 input, ‖y0 − y1‖ / ‖y1‖, and whether their top-1 classes differ; a match');
  lines.push('on a model whose output barely moves with its input would prove little. Delta relL2: Kiln\'s y0 − y1 against onnxruntime\'s y0 − y1');
  lines.push('(relative L2): small means Kiln follows what the input changes, even where that change is small beside the output itself.');
  lines.push('');
  lines.push('| model | exporter/opset | result | max relL2 | top-1 agreement | input sensitivity (top-1 differs) | delta relL2 | reason |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const rel = r.relL2 === undefined ? '' : r.relL2.toExponential(2);
    const t1 = r.top1 === undefined ? '' : String(r.top1);
    const reason = r.reason ? `${r.code} (${r.stage}): ${r.reason.replace(/\|/g, '\\|')}` : '';
    const sens = r.sensitivity === undefined ? '' : `${r.sensitivity.toExponential(2)} (${r.top1Differs ? 'yes' : 'no'})`;
    lines.push(`| ${r.model} | ${r.exporter} | ${r.result} | ${rel} | ${t1} | ${sens} | ${r.deltaRelL2 === undefined ? '' : r.deltaRelL2.toExponential(2)} | ${reason} |`);
  }
  lines.push('');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? '/work/torchvision-onnx';
  const filter = process.argv[3];
  const out = process.argv[4] ?? 'bench/results/real-models';
  const files = readdirSync(dir).filter((f) => f.endsWith('.onnx') && (!filter || f.includes(filter))).sort();
  const rows: Row[] = [];
  for (const f of files) {
    const r = await measure(dir, f);
    rows.push(r);
    console.log(JSON.stringify(r));
  }
  const logPath = join(dir, 'export-log.json');
  const exportLog = existsSync(logPath) ? JSON.parse(readFileSync(logPath, 'utf8')) : undefined;
  writeFileSync(`${out}.json`, JSON.stringify({ dir, tolerance: TOLERANCE, runs: RUNS, exportLog, rows }, null, 1) + '\n');
  writeFileSync(`${out}.md`, markdown(rows, exportLog));
  console.log(markdown(rows, exportLog));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
