// A realistic compress run record for the report's tests: MNIST SeedCNN, original -> distill ->
// prune (sparsity 0.8 over budget, backed off to 0.7) -> quantize -> pack, with a sensitivity sweep,
// a 10x10 confusion matrix and latency at batch 1 and 64 against ONNX Runtime. Deterministic (a
// seeded generator), so bench/results/example-run.json is this record written out (a unit test checks).
import type { AttemptRecord, CurvePoint, LayerRecord, RunRecord, StageRecord } from '../../src/index.js';

/** Small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (x: number, digits = 4) => Number(x.toFixed(digits));

/** A training curve rising towards `finalAccuracy`, loss falling, with a little noise. */
function curve(epochs: number, startAccuracy: number, finalAccuracy: number, lr: number, rand: () => number, sparsity?: (epoch: number) => number): CurvePoint[] {
  return Array.from({ length: epochs }, (_, epoch) => {
    const progress = 1 - Math.exp(-(epoch + 1) / (epochs / 2.5));
    const val = startAccuracy + (finalAccuracy - startAccuracy) * progress + (rand() - 0.5) * 0.0015;
    const point: CurvePoint = {
      epoch,
      trainLoss: round(0.35 * Math.exp(-epoch / 2.2) + 0.03 + rand() * 0.01),
      trainAccuracy: round(Math.min(0.999, val + 0.004)),
      valAccuracy: round(epoch === epochs - 1 ? finalAccuracy : val),
      lr: round(lr * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs)), 6),
    };
    if (sparsity) point.sparsity = round(sparsity(epoch));
    return point;
  });
}

const layerNames = ['conv1', 'conv2', 'conv3', 'fc'];

/** SeedCNN layers at a width: weights, MACs per image on 28x28 MNIST. */
function layers(width: number, sparsities: number[], pattern: string, sqnr?: number[], kernels?: string[]): LayerRecord[] {
  const c1 = 32 * width;
  const c2 = 64 * width;
  const c3 = 128 * width;
  const shapes = [
    { op: 'Conv', weights: c1 * 9, macs: c1 * 9 * 28 * 28 },
    { op: 'Conv', weights: c2 * c1 * 9, macs: c2 * c1 * 9 * 14 * 14 },
    { op: 'Conv', weights: c3 * c2 * 9, macs: c3 * c2 * 9 * 7 * 7 },
    { op: 'Gemm', weights: c3 * 3 * 3 * 10, macs: c3 * 3 * 3 * 10 },
  ];
  return shapes.map((s, i) => {
    const layer: LayerRecord = { name: layerNames[i], op: sqnr ? (s.op === 'Conv' ? 'QLinearConv' : 'QGemm') : s.op, weights: s.weights, sparsity: sparsities[i], pattern: sparsities[i] > 0 ? pattern : 'dense', macs: s.macs };
    if (sqnr) layer.sqnrDb = sqnr[i];
    if (kernels) layer.kernel = kernels[i];
    return layer;
  });
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function stage(partial: Omit<StageRecord, 'accuracyDrop'>, baseline: number): StageRecord {
  const { name, kind, attempts, accepted, accuracy, ...rest } = partial;
  return { name, kind, attempts, ...(accepted === undefined ? {} : { accepted }), accuracy, accuracyDrop: round(baseline - accuracy), ...rest };
}

/** Confusion matrix with MNIST's held-out class sizes and exactly `errors` mistakes. */
function confusion(errors: number, rand: () => number): number[][] {
  const sizes = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
  const m = sizes.map((n, i) => sizes.map((_, j) => (i === j ? n : 0)));
  // Likely MNIST confusions get most of the errors; the rest land anywhere.
  const pairs: [number, number][] = [[4, 9], [9, 4], [7, 2], [3, 5], [5, 3], [8, 3], [2, 7], [7, 9], [6, 0], [1, 7]];
  for (let e = 0; e < errors; e++) {
    let [i, j] = pairs[Math.floor(rand() * pairs.length)];
    if (rand() < 0.35) {
      i = Math.floor(rand() * 10);
      j = (i + 1 + Math.floor(rand() * 9)) % 10;
    }
    m[i][i] -= 1;
    m[i][j] += 1;
  }
  return m;
}

/** The record a full `kiln compress` run on MNIST writes. */
export function fixtureRunRecord(): RunRecord {
  const rand = random(7);
  const baseline = 0.9887;
  const maxAccuracyDrop = 0.008;
  const matrix = confusion(172, rand);
  const total = sum(matrix.flat());
  const finalAccuracy = round(sum(matrix.map((row, i) => row[i])) / total);

  const distillAttempt: AttemptRecord = {
    settings: { studentWidth: 0.5, epochs: 8, temperature: 4, alpha: 0.9 },
    accuracy: 0.9851,
    withinBudget: true,
    curve: curve(8, 0.955, 0.9851, 0.01, rand),
    seconds: 96.4,
  };
  const pruneOver: AttemptRecord = {
    settings: { sparsity: 0.8, pattern: 'unstructured', schedule: 'agp', epochs: 3 },
    accuracy: 0.9794,
    withinBudget: false,
    curve: curve(3, 0.9702, 0.9794, 0.005, rand, (e) => 0.8 * Math.min(1, (e + 1) / 2)),
    seconds: 38.2,
  };
  const pruneKept: AttemptRecord = {
    settings: { sparsity: 0.7, pattern: 'unstructured', schedule: 'agp', epochs: 3 },
    accuracy: 0.9836,
    withinBudget: true,
    curve: curve(3, 0.9771, 0.9836, 0.005, rand, (e) => 0.7 * Math.min(1, (e + 1) / 2)),
    seconds: 37.9,
  };
  const quantizeAttempt: AttemptRecord = { settings: { method: 'minmax', calibrationBatches: 16 }, accuracy: 0.9831, withinBudget: true, curve: [], seconds: 4.1 };
  const packAttempt: AttemptRecord = { settings: { format: 'auto' }, accuracy: finalAccuracy, withinBudget: true, curve: [], seconds: 0.6 };

  const pruned = [0, 0.7, 0.7, 0];
  const stages: StageRecord[] = [
    stage({
      name: 'original', kind: 'original', attempts: [], accuracy: baseline, fileBytes: 412_388, parameters: 102_880, macs: 5_972_352, nonZeroMacs: 5_972_352, precision: 'fp32',
      latency: [{ batch: 1, threads: 1, kilnMs: 0.214, ortMs: 0.527 }, { batch: 64, threads: 1, kilnMs: 4.12, ortMs: 6.21 }],
      layers: layers(1, [0, 0, 0, 0], 'dense'), seconds: 0,
    }, baseline),
    stage({
      name: 'distill', kind: 'distill', attempts: [distillAttempt], accepted: 0, accuracy: 0.9851, fileBytes: 104_612, parameters: 25_984, macs: 1_518_720, nonZeroMacs: 1_518_720, precision: 'fp32',
      latency: [{ batch: 1, threads: 1, kilnMs: 0.092, ortMs: 0.311 }, { batch: 64, threads: 1, kilnMs: 1.21, ortMs: 2.64 }],
      layers: layers(0.5, [0, 0, 0, 0], 'dense'), seconds: 96.4,
    }, baseline),
    stage({
      name: 'prune', kind: 'prune', attempts: [pruneOver, pruneKept], accepted: 1, accuracy: 0.9836, fileBytes: 104_612, parameters: 25_984, macs: 1_518_720, nonZeroMacs: 614_630, precision: 'fp32',
      latency: [{ batch: 1, threads: 1, kilnMs: 0.081, ortMs: 0.309 }, { batch: 64, threads: 1, kilnMs: 1.02, ortMs: 2.61 }],
      layers: layers(0.5, pruned, 'unstructured'), seconds: 76.1,
    }, baseline),
    stage({
      name: 'quantize', kind: 'quantize', attempts: [quantizeAttempt], accepted: 0, accuracy: 0.9831, fileBytes: 28_944, parameters: 25_984, macs: 1_518_720, nonZeroMacs: 614_630, precision: 'int8',
      latency: [{ batch: 1, threads: 1, kilnMs: 0.071, ortMs: 0.226 }, { batch: 64, threads: 1, kilnMs: 0.97, ortMs: 1.93 }],
      layers: layers(0.5, pruned, 'unstructured', [38.2, 31.7, 29.4, 33.9]), seconds: 4.1,
    }, baseline),
    stage({
      name: 'pack', kind: 'pack', attempts: [packAttempt], accepted: 0, accuracy: finalAccuracy, fileBytes: 16_508, parameters: 25_984, macs: 1_518_720, nonZeroMacs: 614_630, precision: 'int8',
      latency: [{ batch: 1, threads: 1, kilnMs: 0.058, ortMs: 0.221 }, { batch: 64, threads: 1, kilnMs: 0.88, ortMs: 1.9 }],
      layers: layers(0.5, pruned, 'unstructured', [38.2, 31.7, 29.4, 33.9], ['dense s8', 'sparse s8 csr', 'sparse s8 csr', 'dense s8']), seconds: 0.6,
    }, baseline),
  ];

  const sparsities = [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95];
  const tolerance: Record<string, number> = { conv2: 0.82, conv3: 0.9, fc: 0.75 };
  const output = stages[stages.length - 1];
  const original = stages[0];
  return {
    format: 'kiln-compress-run',
    version: 1,
    kiln: '0.1.0',
    machine: { cpu: 'AMD EPYC 9B14 96-Core Processor', isa: 'avx512vnni', threads: 2, node: 'v20.19.0', platform: 'linux-x64' },
    recipe: {
      name: 'mnist-small-int8',
      maxAccuracyDrop,
      stages: [
        { kind: 'distill', studentWidth: 0.5, epochs: 8, temperature: 4, alpha: 0.9 },
        { kind: 'prune', sparsity: 0.8, pattern: 'unstructured', schedule: 'agp', epochs: 3, backOff: [{ sparsity: 0.7 }, { sparsity: 0.6 }] },
        { kind: 'quantize', method: 'minmax', calibrationBatches: 16 },
        { kind: 'pack', format: 'auto' },
      ],
    },
    seed: 1,
    dataset: { name: 'mnist', trainImages: 60_000, heldOutImages: total, classes: 10 },
    startedAt: '2026-12-03T08:51:12.000Z',
    seconds: 231.7,
    stages,
    sensitivity: {
      baseline: 0.9851,
      pattern: 'unstructured',
      sparsities,
      layers: Object.entries(tolerance).map(([name, knee]) => ({
        name,
        points: sparsities.map((s) => ({ sparsity: s, accuracy: round(0.9851 - (s <= knee ? 0.002 * s * s : 0.002 + 3.2 * (s - knee) ** 1.6) - rand() * 0.0006) })),
      })),
    },
    result: {
      stage: output.name,
      accuracy: finalAccuracy,
      accuracyDrop: round(baseline - finalAccuracy),
      maxAccuracyDrop,
      completed: true,
      smaller: round(original.fileBytes / output.fileBytes, 3),
      faster: output.latency.map((cell, i) => ({
        batch: cell.batch,
        threads: cell.threads,
        originalMs: original.latency[i].kilnMs,
        outputMs: cell.kilnMs,
        vsOriginal: round(original.latency[i].kilnMs / cell.kilnMs, 3),
        vsOrt: round((cell.ortMs as number) / cell.kilnMs, 3),
      })),
      confusion: matrix,
    },
  };
}

/**
 * The same run with every optional part missing: no sensitivity sweep, no ONNX Runtime timings, no
 * training curves, no SQNR, no kernel names; and a pipeline that stopped early.
 */
export function bareRunRecord(): RunRecord {
  const record = fixtureRunRecord();
  delete record.sensitivity;
  for (const s of record.stages) {
    for (const cell of s.latency) delete cell.ortMs;
    for (const a of s.attempts) a.curve = [];
    for (const l of s.layers) {
      delete l.sqnrDb;
      delete l.kernel;
    }
  }
  for (const f of record.result.faster) delete f.vsOrt;
  record.result.completed = false;
  record.result.stoppedBecause = 'prune: no try within the accuracy budget';
  return record;
}
