/**
 * Charts of how the model learned: each training stage's epochs (every try, the kept one in colour
 * and the backed-off ones dashed grey) and the sensitivity sweep (accuracy of each layer pruned
 * alone at each sparsity), the figures that explain why a stage kept the settings it kept.
 */
import type { AttemptRecord, RunRecord, SensitivityRecord, StageRecord } from '../compress/record.js';
import { LOSS, KILN, REJECTED, axis, baseOptions, paletteColor } from './chart-style.js';
import { pct, settings } from './format.js';
import type { ChartCard, DatasetSpec } from './page-model.js';

/** "try 2 (kept)" / "try 1 (over budget)": how a series names its try. */
function tryLabel(stage: StageRecord, index: number, attempt: AttemptRecord): string {
  if (stage.accepted === index) return `try ${index + 1} (kept)`;
  return `try ${index + 1} (${attempt.withinBudget ? 'not kept' : 'over budget'})`;
}

function attemptDatasets(stage: StageRecord, index: number, attempt: AttemptRecord): DatasetSpec[] {
  const kept = stage.accepted === index;
  const style = kept ? {} : { borderDash: [6, 4], borderWidth: 1.5 };
  const label = tryLabel(stage, index, attempt);
  const accuracy = attempt.curve.flatMap((p) => (typeof p.valAccuracy === 'number' ? [{ x: p.epoch + 1, y: p.valAccuracy * 100 }] : []));
  const loss = attempt.curve.map((p) => ({ x: p.epoch + 1, y: p.trainLoss }));
  return [
    { label: `held-out accuracy, ${label}`, data: accuracy, yAxisID: 'y', borderColor: kept ? KILN : REJECTED, backgroundColor: kept ? KILN : REJECTED, pointRadius: 3, ...style },
    { label: `train loss, ${label}`, data: loss, yAxisID: 'loss', borderColor: kept ? LOSS : REJECTED, backgroundColor: kept ? LOSS : REJECTED, pointRadius: 2, ...style },
  ];
}

/** One chart per stage that trained (a try with at least one epoch): accuracy and loss per epoch. */
export function curveCards(record: RunRecord): ChartCard[] {
  const cards: ChartCard[] = [];
  record.stages.forEach((stage, stageIndex) => {
    const tries = stage.attempts.map((attempt, i) => ({ attempt, i })).filter(({ attempt }) => attempt.curve.length > 0);
    if (tries.length === 0) return;
    const datasets = tries.flatMap(({ attempt, i }) => attemptDatasets(stage, i, attempt));
    const note = stage.attempts
      .map((a, i) => `${tryLabel(stage, i, a)}: ${settings(a.settings) || 'recipe settings'} → ${pct(a.accuracy)}`)
      .join('; ');
    cards.push({
      kind: 'chart',
      id: `curves-${stageIndex}`,
      title: `Training: ${stage.name === stage.kind ? stage.name : `${stage.name} (${stage.kind})`}`,
      note,
      chart: {
        type: 'line',
        data: { datasets },
        options: baseOptions({
          x: axis('epoch', { type: 'linear', ticks: { precision: 0 } }),
          y: axis('held-out accuracy (%)', { position: 'left' }),
          loss: axis('train loss', { position: 'right', grid: { drawOnChartArea: false } }),
        }),
      },
    });
  });
  return cards;
}

/** Accuracy against sparsity, one line per layer, with the unpruned baseline dashed. */
export function sensitivityCard(sensitivity: SensitivityRecord): ChartCard {
  const xs = [0, ...sensitivity.sparsities].map((s) => s * 100);
  const datasets: DatasetSpec[] = sensitivity.layers.map((layer, i) => ({
    label: layer.name,
    data: layer.points.map((p) => ({ x: p.sparsity * 100, y: p.accuracy * 100 })),
    borderColor: paletteColor(i),
    backgroundColor: paletteColor(i),
    pointRadius: 2,
  }));
  datasets.push({
    label: 'baseline (unpruned)',
    data: [
      { x: Math.min(...xs), y: sensitivity.baseline * 100 },
      { x: Math.max(...xs), y: sensitivity.baseline * 100 },
    ],
    borderColor: '#6b7280',
    borderDash: [4, 4],
    borderWidth: 1,
    pointRadius: 0,
  });
  return {
    kind: 'chart',
    id: 'sensitivity',
    title: 'Sensitivity: accuracy vs sparsity per layer',
    note: `each layer pruned alone, one-shot, ${sensitivity.pattern}, no fine-tuning; baseline ${pct(sensitivity.baseline)}`,
    wide: true,
    chart: {
      type: 'line',
      data: { datasets },
      options: baseOptions({
        x: axis('sparsity of the layer (%)', { type: 'linear', min: 0, max: 100 }),
        y: axis('held-out accuracy (%)'),
      }),
    },
  };
}
