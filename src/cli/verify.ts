/**
 * `kiln verify`: Kiln against onnxruntime-node on the same inputs (real digits or random).
 *
 * A quantized model (an int8 .onnx file, or a .kiln holding an int8 graph) is compared as int8:
 * Kiln's int8 runtime against onnxruntime running the int8 ONNX file given, or Kiln's QDQ export
 * of the .kiln graph; besides top-1 agreement it reports the largest logit difference in
 * quantization steps.
 */
import type { Graph } from '../graph/ir.js';
import { benchmarkInput, compareInt8WithOnnxRuntime, compareWithOnnxRuntime, isInt8Graph } from '../onnx/index.js';
import type { CompareProgress } from '../onnx/index.js';
import { Tensor } from '../tensor.js';
import { rangeError } from '../validate.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource, runtimeModel, type ModelSource } from './model-source.js';
import { Output, percent, type Progress } from './output.js';

/** Most random inputs `verify` runs through both runtimes in one batch. */
export const MAX_VERIFY_INPUTS = 10_000;

export interface VerifyCommandOptions {
  dataset?: string;
  dataDir?: string;
  count: number;
  perNode?: boolean;
  /** Seed of the split (default: the model's recorded one) or of the random inputs (default 1). */
  seed?: number;
  json?: boolean;
}

/** The int8 graph a model source holds, if it is quantized. */
function int8GraphOf(source: ModelSource): { graph: Graph; reference?: string } | undefined {
  if (source.kind === 'onnx') return isInt8Graph(source.graph) ? { graph: source.graph, reference: source.path } : undefined;
  return source.kind === 'graph' && isInt8Graph(source.graph) ? { graph: source.graph } : undefined;
}

export async function verifyCommand(modelPath: string, opts: VerifyCommandOptions): Promise<void> {
  const out = new Output(opts);
  // In percent: reading the model and the inputs take the first few, the comparison (both
  // runtimes, chunk by chunk: the bulk of the time) the rest.
  const bar = out.progress(100, 'verify |{bar}| {percentage}% {step}', { step: 'reading the model' });
  try {
    await verify(modelPath, opts, out, bar);
  } finally {
    bar.stop();
  }
}

/** Moves the bar from 5% to 99% as both runtimes work through the inputs, chunk by chunk. */
function comparisonProgress(bar: Progress, inputs: string, kiln: string): (p: CompareProgress) => void {
  const done = { onnxruntime: 0, kiln: 0 };
  return (p) => {
    done[p.runtime] = p.done;
    const step = p.runtime === 'onnxruntime' && p.done < p.total ? `onnxruntime-node on ${inputs}` : `${kiln} on ${inputs}`;
    bar.update(5 + Math.floor((94 * (done.onnxruntime + done.kiln)) / (2 * p.total)), { step });
  };
}

async function verify(modelPath: string, opts: VerifyCommandOptions, out: Output, bar: Progress): Promise<void> {
  const source = await readModelSource(modelPath);
  bar.update(2, { step: opts.dataset ? `loading ${opts.dataset}` : 'making random inputs' });
  let images: Tensor<'float32'> | undefined;
  let seed = opts.seed ?? 1;
  if (opts.dataset) {
    seed = splitSeed(opts.dataset, opts.seed, source.kind === 'onnx' ? undefined : source.file.metadata, modelPath);
    const { test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
    // Up front, rather than an error from the comparison after the work has started.
    if (opts.count > test.length) throw rangeError('--count', `at most ${test.length}, the size of ${test.name}`, opts.count);
    const n = Math.min(opts.count, test.length);
    const [c, h, w] = test.imageShape;
    images = new Tensor('float32', test.images.slice(0, n * c * h * w), [n, c, h, w]);
  }
  const what = opts.dataset ? `${opts.dataset} images` : 'random inputs';

  const int8 = int8GraphOf(source);
  if (int8 !== undefined) {
    const input = int8.graph.inputs[0]!;
    const shape = input.shape.slice(1).map((d) => {
      if (typeof d !== 'number') throw new TypeError(`Expected a fixed image shape for the input of ${modelPath} but it has the symbolic size '${d}'`);
      return d;
    });
    const x = images ?? benchmarkInput(opts.count, shape, seed);
    bar.update(5, { step: `onnxruntime-node on ${x.dims[0]} inputs` });
    const result = await compareInt8WithOnnxRuntime(int8.graph, { [input.name]: x }, int8.reference, {
      onProgress: comparisonProgress(bar, `${x.dims[0]} inputs`, 'Kiln int8'),
    });
    bar.update(100, { step: 'done' });
    bar.stop();
    const against = result.reference === 'onnx-file' ? 'onnxruntime-node on the int8 ONNX file' : "onnxruntime-node on Kiln's QDQ export";
    out.result({ model: modelPath, int8: true, ...result }, () =>
      [
        `Kiln int8 vs ${against}, ${result.batch} ${what}:`,
        ...result.outputs.map(
          (o) => `  ${o.name}: top-1 agreement ${percent(o.top1Agreement)}, max abs diff ${o.maxAbsDiff.toExponential(2)}` +
            (o.maxDiffSteps === undefined ? '' : ` (${o.maxDiffSteps.toFixed(2)} quantization steps)`) +
            `, relative L2 ${o.relL2.toExponential(2)}`,
        ),
      ].join('\n'),
    );
    return;
  }

  let inputs: Record<string, Tensor> | number = opts.count;
  if (images !== undefined) inputs = { input: images };
  const model = runtimeModel(source);
  // Name the feed after the ONNX model's own input.
  if (source.kind === 'onnx' && typeof inputs === 'object') inputs = { [source.graph.inputs[0].name]: inputs.input };
  const rows = typeof inputs === 'number' ? inputs : images!.dims[0]!;
  bar.update(5, { step: `onnxruntime-node on ${rows} inputs${opts.perNode ? ', every node' : ''}` });
  const result = await compareWithOnnxRuntime(model, inputs, {
    perNode: Boolean(opts.perNode),
    seed,
    ...(source.kind === 'kiln' ? { inputShape: source.inputShape } : {}),
    onProgress: comparisonProgress(bar, `${rows} inputs`, 'Kiln'),
  });
  bar.update(100, { step: 'done' });
  bar.stop();
  out.result({ model: modelPath, ...result }, () =>
    [
      `Kiln vs onnxruntime-node on ${result.batch} ${what}:`,
      ...result.outputs.map(
        (o) => `  ${o.name}: max abs diff ${o.maxAbsDiff.toExponential(2)}, max rel diff ${o.maxRelDiff.toExponential(2)}, ` +
          `relative L2 ${o.relL2.toExponential(2)}, top-1 agreement ${percent(o.top1Agreement)}`,
      ),
      ...(opts.perNode
        ? [result.firstDivergentNode
            ? `  first divergent node: ${result.firstDivergentNode.node} (${result.firstDivergentNode.op}), relative L2 ${result.firstDivergentNode.relL2.toExponential(2)}`
            : `  every intermediate value agrees (${result.nodes?.length ?? 0} compared)`]
        : []),
    ].join('\n'),
  );
}
