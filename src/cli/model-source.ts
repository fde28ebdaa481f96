/**
 * Reads a model argument: a .kiln file (Module + stored input shape, or a saved Graph such as an
 * int8 one) or an ONNX model. Every command reads its <model> here, so a missing file, a directory,
 * an empty file or a file that is neither format gets one code and message everywhere.
 */
import { dirname } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import { exportModel } from '../onnx/export.js';
import { importModel } from '../onnx/import.js';
import { onnxSourceInfo } from '../runtime/bound-session.js';
import { decodeKilnFile, type KilnFile } from '../runtime/kiln-file.js';
import { graphFromKilnFile, moduleFromKilnFile } from '../runtime/model-io.js';
import { readModelFile } from '../util/files.js';

export type ModelSource =
  | { kind: 'kiln'; module: Module; inputShape: number[]; file: KilnFile }
  | { kind: 'graph'; graph: Graph; file: KilnFile }
  | { kind: 'onnx'; bytes: Uint8Array; graph: Graph; path: string };

/**
 * What the commands that only run a model (serve, bench) read: a ModelSource, or an ONNX model
 * with parameter inputs (graph inputs its plan needs as constants: a Clip's bounds, a Resize's
 * scales...), which has no graph until a run binds their values (InferenceSession does, per run).
 */
export type RunnableSource = ModelSource | { kind: 'onnx-parameters'; bytes: Uint8Array; path: string; parameters: readonly string[]; importError: unknown };

/**
 * What a runtime that reads the model itself (InferenceSession, onnxruntime-node) takes for an ONNX
 * source: its path, so that external data stored beside the file is found (its bytes alone do not
 * say where that is); the other sources as they are.
 */
export function runtimeModel(source: RunnableSource): Module | Graph | string {
  if (source.kind === 'kiln') return source.module;
  return source.kind === 'graph' ? source.graph : source.path;
}

/**
 * The ONNX model onnxruntime-node runs for a source: an ONNX file by its path (external data found
 * beside it), a .kiln model as its export (an int8 graph as QDQ, which Kiln imports back into int8 ops).
 */
export function ortModel(source: RunnableSource): string | Uint8Array {
  if (source.kind === 'onnx' || source.kind === 'onnx-parameters') return source.path;
  return source.kind === 'kiln' ? exportModel(source.module, { inputShape: source.inputShape }) : exportModel(source.graph);
}

const KILN_MAGIC = 'KILN';

function isOnnxFile(bytes: Uint8Array, path: string): boolean {
  return String.fromCharCode(...bytes.subarray(0, 4)) !== KILN_MAGIC && !path.toLowerCase().endsWith('.kiln');
}

/**
 * The model for commands that read it as one graph or Module. An ONNX model whose import fails
 * because it feeds parameters as graph inputs is refused with ERR_KILN_UNSUPPORTED_OP naming them
 * (serve runs it).
 */
export async function readModelSource(path: string): Promise<ModelSource> {
  const source = await readRunnableSource(path);
  if (source.kind !== 'onnx-parameters') return source;
  throw new KilnError(
    ErrorCode.UNSUPPORTED_OP,
    `Expected a model with fixed parameters but ${path} feeds ${source.parameters.map((p) => `'${p}'`).join(', ')} as graph inputs where Kiln plans constants: ` +
      'its graph exists only once their values are bound, so this command cannot read it; InferenceSession and kiln serve run it, binding the values each run feeds',
    { cause: source.importError },
  );
}

/** The model for commands that only run it: readModelSource's, or an ONNX model with parameter inputs as it is. */
export async function readRunnableSource(path: string): Promise<RunnableSource> {
  const bytes = await readModelFile(path, '<model>');
  try {
    return await sourceOf(bytes, path);
  } catch (err) {
    const parameters = parameterInputsOf(err, bytes);
    if (parameters.length === 0) throw err;
    return { kind: 'onnx-parameters', bytes, path, parameters, importError: err };
  }
}

/**
 * The parameter inputs of an ONNX model whose import failed with `err` for lack of their values
 * (the importer's ERR_KILN_UNSUPPORTED_OP: "computed at run time"), or none. Decoded only then:
 * the common path reads the file once.
 */
function parameterInputsOf(err: unknown, bytes: Uint8Array): readonly string[] {
  if (!(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) return [];
  return onnxSourceInfo(bytes)?.parameters ?? [];
}

async function sourceOf(bytes: Uint8Array, path: string): Promise<ModelSource> {
  if (isOnnxFile(bytes, path)) return { kind: 'onnx', bytes, graph: await onnxGraph(bytes, path), path };
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
