/**
 * Reads a model argument: a .kiln file (Module + stored input shape, or a saved Graph such as an
 * int8 one) or an ONNX model. Every command reads its <model> here, so a missing file, a directory,
 * an empty file or a file that is neither format gets one code and message everywhere.
 */
import { dirname } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import { importModel } from '../onnx/import.js';
import { decodeKilnFile, type KilnFile } from '../runtime/kiln-file.js';
import { graphFromKilnFile, moduleFromKilnFile } from '../runtime/model-io.js';
import { readModelFile } from '../util/files.js';

export type ModelSource =
  | { kind: 'kiln'; module: Module; inputShape: number[]; file: KilnFile }
  | { kind: 'graph'; graph: Graph; file: KilnFile }
  | { kind: 'onnx'; bytes: Uint8Array; graph: Graph };

const KILN_MAGIC = 'KILN';

export async function readModelSource(path: string): Promise<ModelSource> {
  const bytes = await readModelFile(path, '<model>');
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== KILN_MAGIC && !path.toLowerCase().endsWith('.kiln')) return { kind: 'onnx', bytes, graph: await onnxGraph(bytes, path) };
  const file = decodeKilnFile(bytes, path);
  if ((file.model as { kind?: unknown } | null)?.kind === 'graph') return { kind: 'graph', graph: graphFromKilnFile(file, path), file };
  const stored = (file.model as { inputShape?: unknown } | null)?.inputShape;
  if (!Array.isArray(stored)) throw new KilnError(ErrorCode.CORRUPT_MODEL, `Expected an input shape stored in ${path} but received none`);
  return { kind: 'kiln', module: moduleFromKilnFile(file, path), inputShape: stored.map(Number), file };
}

/** The ONNX model's graph; a file that does not decode is named as neither format. */
async function onnxGraph(bytes: Uint8Array, path: string): Promise<Graph> {
  try {
    return await importModel(bytes, { externalDataDir: dirname(path) });
  } catch (err) {
    if (err instanceof KilnError && err.code === ErrorCode.CORRUPT_MODEL) {
      throw new KilnError(ErrorCode.CORRUPT_MODEL, `Expected a .kiln file or an ONNX model for <model> but received '${path}', which is neither (no 'KILN' magic; as ONNX: ${err.message})`, { cause: err });
    }
    throw err;
  }
}
