/**
 * Quantized graphs in `.kiln` files: save → loadGraph gives the same graph (int8 weights, int32
 * biases, float scales, attributes, metadata), and every kind of corrupt int8 content is
 * ERR_KILN_CORRUPT_MODEL, never a crash.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantizeDynamic } from '../../src/quant/dynamic.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { decodeKilnFile, encodeKilnFile } from '../../src/runtime/kiln-file.js';
import { load, loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

const dir = await mkdtemp(join(tmpdir(), 'kiln-quant-io-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25, seed: 2 });
const data = new Tensor('float32', new Float32Array(32 * 144).map((_, i) => 0.5 + 0.5 * Math.sin(i * 0.31)), [32, 1, 12, 12]);
const { graph } = await quantize(model, data, { reportImages: 0 });
const path = join(dir, 'q.kiln');
await save(graph, path, { metadata: { note: 'int8' } });
const bytes = new Uint8Array(await readFile(path));

function sameGraph(a: Graph, b: Graph): void {
  expect(b.nodes).toEqual(a.nodes);
  expect(b.inputs).toEqual(a.inputs);
  expect(b.outputs).toEqual(a.outputs);
  expect(b.metadata).toEqual(a.metadata);
  expect([...b.initializers.keys()]).toEqual([...a.initializers.keys()]);
  for (const [name, t] of a.initializers) {
    const u = b.initializers.get(name)!;
    expect([u.type, u.dims]).toEqual([t.type, t.dims]);
    expect(Array.from(u.data)).toEqual(Array.from(t.data));
  }
}

/** Re-encodes the saved file with `edit` applied to its tensors or model JSON (checksums stay valid). */
function reencoded(edit: (tensors: Map<string, Tensor>, model: Record<string, unknown>) => void): Uint8Array {
  const file = decodeKilnFile(bytes);
  const tensors = new Map(file.tensors);
  const m = structuredClone(file.model) as Record<string, unknown>;
  edit(tensors, m);
  return encodeKilnFile({ model: m, tensors, metadata: file.metadata });
}

const corrupt = expect.objectContaining({ code: ErrorCode.CORRUPT_MODEL });
const conv = graph.nodes.find((n) => n.op === 'QLinearConv')!;

describe('quantized graphs in .kiln files', () => {
  it('save → loadGraph round-trips an int8 graph exactly, and it computes the same outputs', async () => {
    const loaded = await loadGraph(path);
    sameGraph(graph, loaded);
    const feed = { [graph.inputs[0].name]: data };
    expect(runInt8Reference(loaded, feed)[graph.outputs[0].name].data).toEqual(runInt8Reference(graph, feed)[graph.outputs[0].name].data);
    expect(graph.initializers.get(conv.inputs[1])!.type).toBe('int8');
    expect(graph.initializers.get(conv.inputs[3])!.type).toBe('int32');
    sameGraph(graph, await loadGraph(bytes));
    // The native int8 runtime runs the file as stored, bit for bit like the reference.
    const session = await InferenceSession.create(path);
    const out = await session.run({ [session.inputNames[0]]: data });
    session.release();
    expect(Array.from(out[graph.outputs[0].name].data)).toEqual(Array.from(runInt8Reference(graph, feed)[graph.outputs[0].name].data));
  });

  it('a dynamic graph round-trips too; load() of a graph file says to use loadGraph', async () => {
    const dyn = quantizeDynamic(seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25 }), { allowFp32: true }).graph;
    const p = join(dir, 'dyn.kiln');
    await save(dyn, p);
    sameGraph(dyn, await loadGraph(p));
    await expect(load(p)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG, message: expect.stringMatching(/loadGraph/) });
  });

  it('a flipped byte in an int8 weight is ERR_KILN_CORRUPT_MODEL (tensor checksum)', async () => {
    const file = decodeKilnFile(bytes);
    const entry = file.entries.find((e) => e.name === conv.inputs[1])!;
    const dataStart = bytes.length - file.entries.reduce((end, e) => Math.max(end, e.offset + e.byteLength), 0);
    const bad = bytes.slice();
    bad[dataStart + entry.offset + 3] ^= 0x40;
    await expect(loadGraph(bad)).rejects.toThrow(corrupt);
  });

  it('int8 content that passes the checksums but breaks the int8 IR is ERR_KILN_CORRUPT_MODEL', async () => {
    const w = conv.inputs[1];
    const s = conv.inputs[2];
    const b = conv.inputs[3];
    const cases: [string, Uint8Array][] = [
      ['weight stored as uint8', reencoded((t) => t.set(w, new Tensor('uint8', new Uint8Array(t.get(w)!.data), t.get(w)!.dims)))],
      ['weight stored as float32', reencoded((t) => t.set(w, new Tensor('float32', Float32Array.from(t.get(w)!.data), t.get(w)!.dims)))],
      ['negative weight scale', reencoded((t) => t.set(s, new Tensor('float32', new Float32Array(t.get(s)!.size).fill(-1), t.get(s)!.dims)))],
      ['wrong number of scales', reencoded((t) => t.set(s, new Tensor('float32', new Float32Array(3).fill(0.1), [3])))],
      ['bias of the wrong length', reencoded((t) => t.set(b, new Tensor('int32', new Int32Array(1), [1])))],
      ['bias stored as float32', reencoded((t) => t.set(b, new Tensor('float32', new Float32Array(t.get(b)!.size), t.get(b)!.dims)))],
      ['missing weight tensor', reencoded((t) => t.delete(w))],
      ['zero point out of range', reencoded((_t, m) => ((m.nodes as { attrs: Record<string, unknown> }[])[0].attrs.zero_point = 300))],
      ['scale zero', reencoded((_t, m) => ((m.nodes as { attrs: Record<string, unknown> }[])[1].attrs.x_scale = 0))],
      ['nodes not an array', reencoded((_t, m) => (m.nodes = 5))],
      ['undefined input', reencoded((_t, m) => ((m.nodes as { inputs: string[] }[])[1].inputs[0] = 'nowhere'))],
    ];
    for (const [what, file] of cases) {
      const err = await loadGraph(file).then(() => undefined, (e: unknown) => e);
      expect(err, what).toMatchObject({ code: ErrorCode.CORRUPT_MODEL });
    }
  });

  it('save() refuses what is neither a Module nor a Graph', async () => {
    await expect(save({} as Graph, join(dir, 'x.kiln'))).rejects.toThrow(TypeError);
    await expect(save(graph, join(dir, 'y.kiln'), { inputShape: [1, 12, 12] })).rejects.toThrow(/options.inputShape/);
  });
});
