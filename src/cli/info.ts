/** `kiln info`: what is inside a model file. */
import { stat } from 'node:fs/promises';

import type { Module } from '../nn/module.js';
import { readKilnFile } from '../runtime/kiln-file.js';
import { load } from '../runtime/model-io.js';
import { Output } from './output.js';

interface LayerRow {
  name: string;
  type: string;
  outputShape: number[];
  parameters: number;
  macs: number;
}

export async function infoCommand(modelPath: string, opts: { json?: boolean }): Promise<void> {
  const out = new Output(opts);
  const file = await readKilnFile(modelPath);
  const model = await load(modelPath);
  const inputShape = modelInputShape(file.model);
  const rows: LayerRow[] = [];
  let shape = [1, ...inputShape];
  const layers = model.children().length > 0 ? model.children() : [model];
  layers.forEach((layer: Module, i) => {
    const next = layer.outputShape(shape);
    rows.push({
      name: String(i),
      type: layer.config().type,
      outputShape: next.slice(1),
      parameters: layer.parameters().reduce((s, p) => s + p.value.size, 0),
      macs: layer.macs(shape),
    });
    shape = next;
  });
  const parameters = rows.reduce((s, r) => s + r.parameters, 0);
  const macs = rows.reduce((s, r) => s + r.macs, 0);
  const bytes = (await stat(modelPath)).size;
  out.result(
    { model: modelPath, inputShape, layers: rows, parameters, macsPerImage: macs, fileBytes: bytes, metadata: file.metadata ?? {} },
    () =>
      [
        `${modelPath}: input [${inputShape.join(', ')}], ${parameters.toLocaleString('en-US')} parameters, ` +
          `${macs.toLocaleString('en-US')} MACs per image, ${bytes.toLocaleString('en-US')} bytes`,
        '',
        `${'#'.padEnd(4)}${'layer'.padEnd(14)}${'output'.padEnd(18)}${'params'.padStart(10)}${'MACs'.padStart(14)}`,
        ...rows.map(
          (r) =>
            `${r.name.padEnd(4)}${r.type.padEnd(14)}${`[${r.outputShape.join(', ')}]`.padEnd(18)}` +
            `${r.parameters.toLocaleString('en-US').padStart(10)}${r.macs.toLocaleString('en-US').padStart(14)}`,
        ),
        ...Object.entries(file.metadata ?? {}).map(([k, v]) => `${k}: ${v}`),
      ].join('\n'),
  );
}

function modelInputShape(model: unknown): number[] {
  const shape = (model as { inputShape?: unknown })?.inputShape;
  return Array.isArray(shape) ? shape.map(Number) : [];
}
