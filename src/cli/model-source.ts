/** Reads a model argument: a .kiln file (Module + stored input shape, or a saved Graph such as an int8 one) or ONNX bytes. */
import { readFile } from 'node:fs/promises';

import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import { readKilnFile } from '../runtime/kiln-file.js';
import { graphFromKilnFile, moduleFromKilnFile } from '../runtime/model-io.js';

export type ModelSource =
  | { kind: 'kiln'; module: Module; inputShape: number[] }
  | { kind: 'graph'; graph: Graph }
  | { kind: 'onnx'; bytes: Uint8Array };

export async function readModelSource(path: string): Promise<ModelSource> {
  const bytes = new Uint8Array(await readFile(path));
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'KILN') return { kind: 'onnx', bytes };
  const file = await readKilnFile(bytes);
  if ((file.model as { kind?: unknown } | null)?.kind === 'graph') return { kind: 'graph', graph: graphFromKilnFile(file, path) };
  const stored = (file.model as { inputShape?: unknown } | null)?.inputShape;
  if (!Array.isArray(stored)) throw new TypeError(`Expected an input shape stored in ${path} but received none`);
  return { kind: 'kiln', module: moduleFromKilnFile(file), inputShape: stored.map(Number) };
}
