/**
 * int8 on real architectures (issue 14): PTQ of torchvision exports (from
 * bench/models/export_torchvision.py) calibrated on 32 seeded image-like inputs, then the int8
 * graph against the fp32 one on Kiln on 100 others: top-1 agreement, how many distinct fp32 top-1
 * classes those inputs give (random-weight models often answer one class for every input, which
 * makes agreement a weak check), and the relative L2 of the logits; plus which ops stayed fp32.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/real-models-int8.js /tmp/torchvision-onnx [names...]
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { importModel } from '../src/onnx/import.js';
import { quantize } from '../src/quant/ptq.js';
import { InferenceSession } from '../src/runtime/session.js';
import { imageLike } from './image-like.js';

const DEFAULT_MODELS = ['resnet18.torchscript-op17', 'resnet18.dynamo-op21', 'mobilenet_v2.torchscript-op17', 'mobilenet_v2.dynamo-op21'];
const INT8_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearGemm', 'QLinearAdd', 'QLinearConcat', 'QLinearLookup', 'QLinearMul', 'QLinearGlobalAveragePool']);

function argmax(data: Float32Array, row: number, classes: number): number {
  let best = 0;
  for (let j = 1; j < classes; j++) if (data[row * classes + j] > data[row * classes + best]) best = j;
  return best;
}

async function main(): Promise<void> {
  const [dir, ...names] = process.argv.slice(2);
  if (!dir) throw new Error('usage: node dist/bench/real-models-int8.js <dir of exported .onnx files> [model names]');
  process.stdout.write('| model | int8 layers and adds / other ops (run on u8 or in fp32) | top-1 agreement | distinct fp32 top-1 | logits relL2 |\n| --- | --- | --- | --- | --- |\n');
  for (const name of names.length ? names : DEFAULT_MODELS) {
    const float = await importModel(await readFile(join(dir, `${name}.onnx`)));
    const { graph } = await quantize(float, imageLike(32, 1), { method: 'minmax', batchSize: 8, reportImages: 0 });
    const left = graph.nodes.filter((n) => !INT8_OPS.has(n.op)).map((n) => n.op);
    const [a, b] = [await InferenceSession.create(float), await InferenceSession.create(graph)];
    let agree = 0;
    let total = 0;
    let num = 0;
    let den = 0;
    const classes = new Set<number>();
    for (let k = 0; k < 10; k++) {
      const x = imageLike(10, 100 + k);
      const ya = (await a.run({ [a.inputNames[0]]: x }))[a.outputNames[0]];
      const yb = (await b.run({ [b.inputNames[0]]: x }))[b.outputNames[0]];
      const c = ya.dims[1] as number;
      for (let i = 0; i < ya.data.length; i++) {
        num += (ya.data[i] - yb.data[i]) ** 2;
        den += ya.data[i] ** 2;
      }
      for (let n = 0; n < 10; n++) {
        const top = argmax(ya.data as Float32Array, n, c);
        classes.add(top);
        if (top === argmax(yb.data as Float32Array, n, c)) agree++;
        total++;
      }
    }
    a.release();
    b.release();
    const int8 = graph.nodes.filter((n) => n.op !== 'QuantizeLinear' && n.op !== 'DequantizeLinear' && INT8_OPS.has(n.op)).length;
    process.stdout.write(`| ${name} | ${int8} / ${left.length ? left.join(', ') : 'none'} | ${agree}/${total} | ${classes.size} | ${Math.sqrt(num / den).toExponential(2)} |\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
