/** Reads a model argument: a .kiln file (Module + stored input shape) or ONNX bytes. */
import { readFile } from 'node:fs/promises';

import type { Module } from '../nn/module.js';
import { readKilnFile } from '../runtime/kiln-file.js';
import { moduleFromKilnFile } from '../runtime/model-io.js';

export type ModelSource =
  | { kind: 'kiln'; module: Module; inputShape: number[] }
  | { kind: 'onnx'; bytes: Uint8Array };

export async function readModelSource(path: string): Promise<ModelSource> {
  const bytes = new Uint8Array(await readFile(path));
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'KILN') return { kind: 'onnx', bytes };
  const file = await readKilnFile(bytes);
  const stored = (file.model as { inputShape?: unknown } | null)?.inputShape;
  if (!Array.isArray(stored)) throw new TypeError(`Expected an input shape stored in ${path} but received none`);
  return { kind: 'kiln', module: moduleFromKilnFile(file), inputShape: stored.map(Number) };
}
