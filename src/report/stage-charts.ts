/**
 * Charts across the pipeline's stages (accuracy, file size, latency Kiln vs ONNX Runtime) and of the
 * output model's layers (sparsity, int8 SQNR): what each stage bought and what it cost.
 */
import type { RunRecord, StageRecord } from '../compress/record.js';
import { BUDGET, KILN, ORT, axis, baseOptions, fill } from './chart-style.js';
import type { ChartCard, DatasetSpec } from './page-model.js';

const stageNames = (record: RunRecord): string[] => record.stages.map((s) => s.name);

/** Held-out accuracy per stage, with the budget's floor (baseline - max drop) as a line. */
export function accuracyCard(record: RunRecord): ChartCard {
  const baseline = record.stages[0].accuracy;
  const floor = (baseline - record.result.maxAccuracyDrop) * 100;
  const values = record.stages.map((s) => s.accuracy * 100);
  // Bars from a floor just below the lowest value: from 0, a 0.3-point drop would be invisible.
  const low = Math.max(0, Math.floor(Math.min(floor, ...values) - 1));
  return {
    kind: 'chart',
    id: 'accuracy',
    title: 'Accuracy per stage',
    note: `held-out accuracy; the line is the budget's floor (baseline − ${(record.result.maxAccuracyDrop * 100).toFixed(2)} pt)`,
    chart: {
      type: 'bar',
      data: {
        labels: stageNames(record),
        datasets: [
          { label: 'held-out accuracy (%)', data: values, backgroundColor: fill(KILN), borderColor: KILN, borderWidth: 1, order: 2 },
          { type: 'line', label: 'budget floor (%)', data: values.map(() => floor), borderColor: BUDGET, borderDash: [6, 4], borderWidth: 2, pointRadius: 0, order: 1 },
        ],
      },
      options: baseOptions({ y: axis('accuracy (%)', { min: low }) }),
    },
  };
}

export function sizeCard(record: RunRecord): ChartCard {
  return {
    kind: 'chart',
    id: 'size',
    title: 'File size per stage',
    note: 'the model saved as each stage leaves it (.kiln; dense until pack)',
    chart: {
      type: 'bar',
      data: { labels: stageNames(record), datasets: [{ label: 'file size (KB)', data: record.stages.map((s) => s.fileBytes / 1024), backgroundColor: fill(KILN), borderColor: KILN, borderWidth: 1 }] },
      options: baseOptions({ y: axis('KB', { beginAtZero: true }) }),
    },
  };
}

/** One grouped-bar chart per batch size: per stage, Kiln and ONNX Runtime for each thread count. */
export function latencyCards(record: RunRecord): ChartCard[] {
  const cells = record.stages.flatMap((s) => s.latency);
  const batches = [...new Set(cells.map((c) => c.batch))].sort((a, b) => a - b);
  return batches.map((batch) => {
    const threadCounts = [...new Set(cells.filter((c) => c.batch === batch).map((c) => c.threads))].sort((a, b) => a - b);
    const suffix = (threads: number) => (threadCounts.length > 1 ? ` (${threads} thread${threads > 1 ? 's' : ''})` : '');
    const datasets: DatasetSpec[] = [];
    threadCounts.forEach((threads, t) => {
      const cellOf = (s: StageRecord) => s.latency.find((c) => c.batch === batch && c.threads === threads);
      const alpha = 0.85 - 0.3 * t;
      datasets.push({ label: `Kiln${suffix(threads)}`, data: record.stages.map((s) => cellOf(s)?.kilnMs ?? null), backgroundColor: fill(KILN, alpha), borderColor: KILN, borderWidth: 1 });
      const ort = record.stages.map((s) => cellOf(s)?.ortMs ?? null);
      if (ort.some((v) => v !== null)) datasets.push({ label: `ONNX Runtime${suffix(threads)}`, data: ort, backgroundColor: fill(ORT, alpha), borderColor: ORT, borderWidth: 1 });
    });
    return {
      kind: 'chart' as const,
      id: `latency-b${batch}`,
      title: `Latency per stage, batch ${batch}`,
      note: `median ms per run call (the whole batch of ${batch}); ${
        datasets.length > threadCounts.length ? 'Kiln and ONNX Runtime timed interleaved in one process' : 'no ONNX Runtime timing in the record'
      }`,
      chart: { type: 'bar' as const, data: { labels: stageNames(record), datasets }, options: baseOptions({ y: axis('ms per batch', { beginAtZero: true }) }) },
    };
  });
}

/** The output model's share of zero weights per layer. */
export function layerSparsityCard(stage: StageRecord): ChartCard {
  return {
    kind: 'chart',
    id: 'layer-sparsity',
    title: `Sparsity per layer (${stage.name})`,
    note: 'share of weights that are exactly zero; the pattern detected is in the layer table',
    chart: {
      type: 'bar',
      data: { labels: stage.layers.map((l) => l.name), datasets: [{ label: 'sparsity (%)', data: stage.layers.map((l) => l.sparsity * 100), backgroundColor: fill(KILN), borderColor: KILN, borderWidth: 1 }] },
      options: baseOptions({ y: axis('zero weights (%)', { min: 0, max: 100 }) }),
    },
  };
}

/** int8 error per layer (SQNR of its output against fp32); undefined when no layer has one. */
export function layerSqnrCard(stage: StageRecord): ChartCard | undefined {
  if (!stage.layers.some((l) => typeof l.sqnrDb === 'number')) return undefined;
  return {
    kind: 'chart',
    id: 'layer-sqnr',
    title: `int8 error per layer (${stage.name})`,
    note: 'SQNR of each layer\'s int8 output against fp32, in dB: higher is closer (20 dB ≈ 10% error, 40 dB ≈ 1%)',
    chart: {
      type: 'bar',
      data: { labels: stage.layers.map((l) => l.name), datasets: [{ label: 'SQNR (dB)', data: stage.layers.map((l) => (typeof l.sqnrDb === 'number' ? l.sqnrDb : null)), backgroundColor: fill(ORT), borderColor: ORT, borderWidth: 1 }] },
      options: baseOptions({ y: axis('dB', { beginAtZero: true }) }),
    },
  };
}
