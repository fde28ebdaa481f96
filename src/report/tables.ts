/** The report's tables: the stages side by side, the output model's layers, its confusion matrix. */
import type { RunRecord, StageRecord } from '../compress/record.js';
import { bytes, count, ms, pct, points } from './format.js';
import type { HeatmapCard, TableCard } from './page-model.js';

/** The (batch, threads) cells any stage was timed on, in order. */
function latencyColumns(record: RunRecord): { batch: number; threads: number }[] {
  const keys = new Map<string, { batch: number; threads: number }>();
  for (const cell of record.stages.flatMap((s) => s.latency)) keys.set(`${cell.batch}/${cell.threads}`, { batch: cell.batch, threads: cell.threads });
  return [...keys.values()].sort((a, b) => a.batch - b.batch || a.threads - b.threads);
}

export function stageTable(record: RunRecord): TableCard {
  const cells = latencyColumns(record);
  const columns = ['stage', 'kind', 'precision', 'accuracy', 'drop', 'file size', 'parameters', 'MACs / image', 'non-zero MACs', 'tries'];
  for (const c of cells) columns.push(`batch ${c.batch}, ${c.threads} thr: Kiln / ORT`);
  const rows = record.stages.map((s) => {
    const tries = s.kind === 'original' ? '' : s.accepted === undefined ? `${s.attempts.length}, none kept` : `${s.attempts.length}, kept ${s.accepted + 1}`;
    const row = [s.name, s.kind, s.precision, pct(s.accuracy), points(s.accuracyDrop), bytes(s.fileBytes), count(s.parameters), count(s.macs), count(s.nonZeroMacs), tries];
    for (const c of cells) {
      const cell = s.latency.find((l) => l.batch === c.batch && l.threads === c.threads);
      row.push(cell === undefined ? '' : `${ms(cell.kilnMs)} / ${typeof cell.ortMs === 'number' ? ms(cell.ortMs) : '–'}`);
    }
    return row;
  });
  return { kind: 'table', id: 'stages', title: 'Stages', note: 'figures of each stage\'s kept try; latency is the median per run call', wide: true, columns, rows };
}

/** The output model's layers; the SQNR and kernel columns only when some layer has a value. */
export function layerTable(stage: StageRecord): TableCard {
  const columns = ['layer', 'op', 'weights', 'sparsity', 'pattern', 'MACs / image', 'int8 SQNR', 'kernel'];
  const rows = stage.layers.map((l) => [
    l.name,
    l.op,
    count(l.weights),
    pct(l.sparsity, 1),
    l.pattern,
    count(l.macs),
    typeof l.sqnrDb === 'number' ? `${l.sqnrDb.toFixed(1)} dB` : '',
    l.kernel ?? '',
  ]);
  const kept = columns.map((_, c) => c < 6 || rows.some((row) => row[c] !== ''));
  return {
    kind: 'table',
    id: 'layers',
    title: `Layers (${stage.name})`,
    wide: true,
    columns: columns.filter((_, c) => kept[c]),
    rows: rows.map((row) => row.filter((_, c) => kept[c])),
  };
}

/** The output model's confusion matrix; undefined when the record has none. */
export function confusionCard(record: RunRecord): HeatmapCard | undefined {
  const counts = record.result.confusion;
  if (counts.length === 0) return undefined;
  const total = counts.flat().reduce((a, b) => a + b, 0);
  const correct = counts.reduce((sum, row, i) => sum + row[i], 0);
  return {
    kind: 'heatmap',
    id: 'confusion',
    title: `Confusion matrix (${record.result.stage})`,
    note: `rows: true class, columns: predicted; shade: share of the row; ${correct} of ${total} held-out images right`,
    labels: counts.map((_, i) => String(i)),
    counts,
  };
}
