// Run by test/unit/session-weights.test.ts in a child process (node --expose-gc --import
// register-ts-source.mjs): the JavaScript memory (process.memoryUsage().arrayBuffers, after a full
// gc) that InferenceSession sessions keep once built from an ONNX model's bytes, a .kiln graph and
// an ONNX file path, against the model's weight bytes. Prints one JSON line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { attr, model, node, randomTensor, valueInfo } from '../unit/onnx-model-builder.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

// Four 3x3 convolutions of 256 -> 256 channels: 9.4 MB of float32 weights.
const C = 256;
const LAYERS = 4;
const weightBytes = LAYERS * C * C * 9 * 4;

function modelBytes(): Uint8Array {
  const nodes = [];
  const initializers = [];
  let x = 'x';
  for (let i = 0; i < LAYERS; i++) {
    initializers.push(randomTensor(`w${i}`, [C, C, 3, 3], 10 + i, 0.02));
    const y = i === LAYERS - 1 ? 'y' : `t${i}`;
    nodes.push(node('Conv', [x, `w${i}`], [y], [attr.ints('pads', [1, 1, 1, 1])], `conv${i}`));
    x = y;
  }
  return model({ opset: 17, inputs: [valueInfo('x', ['N', C, 6, 6])], outputs: [valueInfo('y')], nodes, initializers });
}

async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    global.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().arrayBuffers;
}

const input = new Tensor('float32', new Float32Array(C * 36).fill(0.5), [1, C, 6, 6]);
const dir = mkdtempSync(join(tmpdir(), 'kiln-weights-'));
const kept: Record<string, number> = {};
const sessions: InferenceSession[] = [];
try {
  const path = join(dir, 'model.onnx');
  writeFileSync(path, modelBytes());
  const sources: Record<string, () => Uint8Array | string> = { bytes: modelBytes, path: () => path };
  for (const [name, source] of Object.entries(sources)) {
    const before = await settle();
    const session = await InferenceSession.create(source(), { enableProfiling: true });
    await session.run({ x: input });
    sessions.push(session);
    kept[name] = (await settle()) - before;
  }
  // Still whole after the weights' arrays went: the runs and the profile.
  const outputs = await Promise.all(sessions.map((s) => s.run({ x: input })));
  const same = outputs.every((o) => o.y!.data.every((v, i) => v === outputs[0]!.y!.data[i]));
  const steps = sessions.map((s) => s.profile().steps.length);
  process.stdout.write(`${JSON.stringify({ weightBytes, kept, same, steps })}\n`);
} finally {
  for (const s of sessions) s.release();
  rmSync(dir, { recursive: true, force: true });
}
