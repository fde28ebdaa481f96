/** `kiln verify`: Kiln against onnxruntime-node on the same inputs (real digits or random). */
import { compareWithOnnxRuntime } from '../onnx/index.js';
import { Tensor } from '../tensor.js';
import { loadDatasets } from './datasets.js';
import { readModelSource } from './model-source.js';
import { Output, percent } from './output.js';

export interface VerifyCommandOptions {
  dataset?: string;
  dataDir?: string;
  count: number;
  perNode?: boolean;
  seed: number;
  json?: boolean;
}

export async function verifyCommand(modelPath: string, opts: VerifyCommandOptions): Promise<void> {
  const out = new Output(opts);
  const source = await readModelSource(modelPath);
  let inputs: Record<string, Tensor> | number = opts.count;
  if (opts.dataset) {
    const { test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed: opts.seed });
    const n = Math.min(opts.count, test.length);
    const [c, h, w] = test.imageShape;
    inputs = { input: new Tensor('float32', test.images.slice(0, n * c * h * w), [n, c, h, w]) };
  }
  const model = source.kind === 'kiln' ? source.module : source.bytes;
  if (source.kind === 'onnx' && typeof inputs === 'object') {
    // Name the feed after the ONNX model's own input.
    const { importModel } = await import('../onnx/index.js');
    const graph = await importModel(source.bytes);
    inputs = { [graph.inputs[0].name]: inputs.input };
  }
  const result = await compareWithOnnxRuntime(model, inputs, {
    perNode: Boolean(opts.perNode),
    seed: opts.seed,
    ...(source.kind === 'kiln' ? { inputShape: source.inputShape } : {}),
  });
  out.result({ model: modelPath, ...result }, () =>
    [
      `Kiln vs onnxruntime-node on ${result.batch} ${opts.dataset ? `${opts.dataset} images` : 'random inputs'}:`,
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
