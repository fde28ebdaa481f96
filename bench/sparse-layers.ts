/**
 * Sparse kernels per layer (issue 12): each of SeedCNN's pruned layers alone in a session (MNIST
 * conv2 32->64 3x3 on 13x13 with ReLU and 2x2 max pool, CIFAR conv2 on 15x15, each fed by a 1x1
 * conv of a 1-channel image, see below; fc1 1600->128 with ReLU at batch 64 and 1), its weights pruned by Kiln's own pruner (magnitude, on seeded random
 * weights) at 50/70/80/90/95% in each pattern, fp32 and int8 (PTQ), 1 thread. Every ratio is
 * against the same layer's dense kernels in the same run, interleaved:
 * - fp32 sparse ('always') vs our dense direct / im2col path (graphOptimizationLevel 'extended')
 *   and vs our best dense path ('all': Winograd where it fits);
 * - int8 sparse ('always') vs our dense int8 kernels.
 * The kernel columns are the step texts, so a row says which kernel actually ran.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/sparse-layers.js [minMs]
 *
 * `npm run bench` runs it in its 'sparse' section.
 */
import { pathToFileURL } from 'node:url';

import { Flatten, MaxPool2d, ReLU, Sequential, Conv2d, Linear } from '../src/nn/index.js';
import type { Module } from '../src/nn/module.js';
import { benchmarkInput } from '../src/onnx/benchmark.js';
import { Pruner } from '../src/prune/pruner.js';
import { quantize } from '../src/quant/ptq.js';
import { InferenceSession } from '../src/runtime/session.js';
import { Tensor } from '../src/tensor.js';
import { measureInterleaved } from '../src/util/timing.js';
import type { Report } from './report.js';

export const SPARSITIES = [0.5, 0.7, 0.8, 0.9, 0.95];
/** Patterns per layer kind: 4x1 / 8x1 blocks share loads in the fp32 kernels, 1x4 blocks feed vpdpbusd. */
export const LAYER_PATTERNS = ['unstructured', 'block1x4', 'block4x1'] as const;

interface Layer {
  name: string;
  shape: number[];
  batch: number;
  build: () => Module;
}

// The convolutions get their 32 input channels from a 1x1 conv of a 1-channel image (0.25% of
// their multiply-adds, the same in every column): fed a 32-channel float input directly, the int8
// session would spend most of its time quantizing that input into NHWC, and the int8 columns would
// time the layout change instead of the layer.
const conv2 = (seed: number) => () => new Sequential(new Conv2d(1, 32, 1, { seed: seed + 100 }), new ReLU(), new Conv2d(32, 64, 3, { seed }), new ReLU(), new MaxPool2d(2));
const layers: Layer[] = [
  { name: 'MNIST conv2 32->64 3x3 13x13 +relu+pool', shape: [1, 13, 13], batch: 64, build: conv2(11) },
  { name: 'CIFAR conv2 32->64 3x3 15x15 +relu+pool', shape: [1, 15, 15], batch: 64, build: conv2(12) },
  { name: 'MNIST fc1 1600->128 +relu', shape: [64, 5, 5], batch: 64, build: () => new Sequential(new Flatten(), new Linear(1600, 128, { seed: 13 }), new ReLU()) },
  { name: 'MNIST fc1 1600->128 +relu', shape: [64, 5, 5], batch: 1, build: () => new Sequential(new Flatten(), new Linear(1600, 128, { seed: 13 }), new ReLU()) },
];

/** The weighted step's text after its op and shape ("sparse unstructured 90%", "dense, 90% zeros", ...). */
function kernelOf(session: InferenceSession): string {
  // The last weighted step: the layer measured (a conv2 row's first step is its 1x1 feeder).
  const step = session.info().steps.filter((s) => /^(Conv|Gemm|QLinearConv|QLinearGemm)\b/.test(s)).pop() ?? '';
  const at = step.search(/ (sparse|dense)\b/);
  return at < 0 ? 'dense' : step.slice(at + 1).replace(/,/g, ';');
}

async function pruned(layer: Layer, pattern: string, sparsity: number): Promise<Module> {
  const model = layer.build();
  model.inputShape = layer.shape;
  const weighted = layer.name.includes('fc1') ? '1' : '2';
  new Pruner(model, { pattern, layers: [weighted] }).update(sparsity);
  return model.eval();
}

/** One row per layer, batch, pattern and sparsity. */
export async function measureSparseLayers(minMs: number, print: boolean): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  for (const layer of layers) {
    const x = benchmarkInput(layer.batch, layer.shape, 5);
    const calibration = benchmarkInput(64, layer.shape, 6);
    for (const pattern of LAYER_PATTERNS) {
      for (const sparsity of SPARSITIES) {
        const model = await pruned(layer, pattern, sparsity);
        const f32 = (level: 'all' | 'extended', sparseKernels: 'always' | 'never') =>
          InferenceSession.create(model, { inputShape: layer.shape, intraOpNumThreads: 1, graphOptimizationLevel: level, sparseKernels });
        const { graph: int8 } = await quantize(model, calibration, { method: 'minmax', reportImages: 0 });
        const s8 = (sparseKernels: 'always' | 'never') => InferenceSession.create(int8, { intraOpNumThreads: 1, sparseKernels });
        const sessions = [await f32('extended', 'never'), await f32('all', 'never'), await f32('all', 'always'), await s8('never'), await s8('always')];
        try {
          const input = new Tensor('float32', x.data, x.dims);
          const [direct, best, sparse, denseQ, sparseQ] = await measureInterleaved(sessions.map((s) => () => s.run({ [s.inputNames[0]]: input })), { minMs });
          const row = [
            layer.name, layer.batch, pattern, sparsity,
            direct!.medianMs, best!.medianMs, sparse!.medianMs, direct!.medianMs / sparse!.medianMs, best!.medianMs / sparse!.medianMs,
            denseQ!.medianMs, sparseQ!.medianMs, denseQ!.medianMs / sparseQ!.medianMs,
            kernelOf(sessions[2]), kernelOf(sessions[4]),
          ];
          rows.push(row);
          if (print) {
            console.log(row.map((v) => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : String(v))).join(' | '));
          }
        } finally {
          for (const s of sessions) s.release();
        }
      }
    }
  }
  return rows;
}

/** Per-layer table of the 'sparse' section of `npm run bench`. */
export async function benchSparseLayers(report: Report, minMs = 250): Promise<void> {
  report.add({
    title: 'Sparse vs dense per layer, 1 thread: fp32 and int8, pruned by Kiln at 50-95% in each pattern',
    baseline: "the same layer's dense kernels in this run, interleaved: fp32 dense direct/im2col (graphOptimizationLevel 'extended'), fp32 best dense ('all': Winograd where it fits), int8 dense",
    columns: [
      'layer', 'batch', 'pattern', 'sparsity',
      'fp32 dense direct ms', 'fp32 best dense ms', 'fp32 sparse ms', 'fp32 sparse vs direct', 'fp32 sparse vs best dense',
      'int8 dense ms', 'int8 sparse ms', 'int8 sparse vs dense', 'fp32 kernel', 'int8 kernel',
    ],
    rows: await measureSparseLayers(minMs, false),
    notes: [
      'targets (issue 12): at 90% unstructured, fp32 sparse conv >= 2.5x dense direct and >= 1.5x best dense; break-even at 70% or lower; 1x4-block int8 at 90% >= 3x dense int8',
      "a conv's 1x4 block is 4 input channels at one kernel position (the bytes one vpdpbusd lane reads); 4x1 blocks are 4 output channels",
      'each conv2 is fed by a dense 1x1 conv 1->32 (0.25% of its multiply-adds, in every column alike) so that the int8 session times the layer, not an NCHW->NHWC quantization of a 32-channel float input',
      'session-level times: the step includes its quantize/dequantize neighbours and the run overhead; the kernel-only ratios come from native/bench (sparse-bench, s8-sparse-bench)',
    ],
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await measureSparseLayers(Number(process.argv[2] ?? 300), true);
}
