/** `kiln export`: a .kiln model as an ONNX file (opset 17; fp32, or QDQ for an int8 graph) for any ONNX tool. */
import { writeFile } from 'node:fs/promises';

import { exportModel } from '../onnx/index.js';
import { checkOutputFile } from '../util/files.js';
import { KilnTypeError } from '../errors.js';
import { readModelSource } from './model-source.js';
import { Output } from './output.js';

export async function exportCommand(modelPath: string, opts: { out: string; json?: boolean }): Promise<void> {
  const out = new Output(opts);
  await checkOutputFile(opts.out, '--out');
  const source = await readModelSource(modelPath);
  if (source.kind === 'onnx') throw new KilnTypeError(`Expected a .kiln model for <model> but received '${modelPath}', which is already an ONNX model`);
  const bytes = source.kind === 'graph' ? exportModel(source.graph) : exportModel(source.module, { inputShape: source.inputShape });
  await writeFile(opts.out, bytes);
  out.result({ model: modelPath, out: opts.out, opset: 17, bytes: bytes.length }, () => `wrote ${opts.out} (${bytes.length} bytes, ONNX opset 17)`);
}
