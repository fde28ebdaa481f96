/** The page's header: the recipe's name, where the figures come from, and the run's result in tiles. */
import type { RunRecord } from '../compress/record.js';
import { bytes, date, duration, pct, points, times } from './format.js';
import { outputStage } from './output-stage.js';
import type { PageModel, Tile } from './page-model.js';

/** The recipe's `name` when it has one. */
export function recipeName(record: RunRecord): string {
  const name = record.recipe.name;
  return typeof name === 'string' && name !== '' ? name : 'compress run';
}

export function facts(record: RunRecord): PageModel['facts'] {
  const { machine, dataset } = record;
  return [
    { label: 'Kiln', value: record.kiln },
    { label: 'CPU', value: machine.cpu },
    { label: 'ISA', value: machine.isa },
    { label: 'threads', value: String(machine.threads) },
    { label: 'seed', value: String(record.seed) },
    { label: 'date', value: date(record.startedAt) },
    { label: 'data', value: `${dataset.name}, ${dataset.heldOutImages} held-out images` },
    { label: 'took', value: duration(record.seconds) },
  ];
}

/** "batch 1: 2.31x, batch 64: 1.80x" (threads named when the cells differ in them). */
function perCell(cells: { batch: number; threads: number; ratio: number }[]): string {
  const threadCounts = new Set(cells.map((c) => c.threads));
  return cells.map((c) => `batch ${c.batch}${threadCounts.size > 1 ? `, ${c.threads} thr` : ''}: ${times(c.ratio)}`).join(' · ');
}

/** The best ratio among the cells, as a tile's headline. */
function best(cells: { ratio: number }[]): number {
  return Math.max(...cells.map((c) => c.ratio));
}

export function tiles(record: RunRecord): Tile[] {
  const { result } = record;
  const original = record.stages[0];
  const output = outputStage(record);
  const withinBudget = result.accuracyDrop <= result.maxAccuracyDrop;
  const list: Tile[] = [
    { label: 'accuracy', value: `${pct(original.accuracy)} → ${pct(result.accuracy)}`, detail: `original → ${result.stage}`, tone: 'neutral' },
    {
      label: 'accuracy drop',
      value: points(result.accuracyDrop),
      detail: `budget ${points(result.maxAccuracyDrop)}${withinBudget ? ', within' : ', over'}`,
      tone: withinBudget ? 'good' : 'bad',
    },
    { label: 'smaller', value: times(result.smaller), detail: `${bytes(original.fileBytes)} → ${bytes(output.fileBytes)}`, tone: result.smaller > 1 ? 'good' : 'neutral' },
  ];
  const vsOriginal = result.faster.map((f) => ({ batch: f.batch, threads: f.threads, ratio: f.vsOriginal }));
  if (vsOriginal.length > 0) {
    list.push({ label: 'faster than original', value: `up to ${times(best(vsOriginal))}`, detail: perCell(vsOriginal), tone: best(vsOriginal) > 1 ? 'good' : 'neutral' });
  }
  const vsOrt = result.faster.flatMap((f) => (typeof f.vsOrt === 'number' ? [{ batch: f.batch, threads: f.threads, ratio: f.vsOrt }] : []));
  if (vsOrt.length > 0) {
    list.push({ label: 'faster than ONNX Runtime', value: `up to ${times(best(vsOrt))}`, detail: perCell(vsOrt), tone: best(vsOrt) > 1 ? 'good' : 'neutral' });
  }
  list.push(
    result.completed
      ? { label: 'pipeline', value: 'completed', detail: `${record.stages.length - 1} stages, output: ${result.stage}`, tone: 'good' }
      : { label: 'pipeline', value: 'stopped early', detail: result.stoppedBecause ?? 'no reason recorded', tone: 'bad' },
  );
  return list;
}
