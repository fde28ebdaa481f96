/**
 * Seeded fuzzing of the `.kiln` loader down to the kernels: mutated files of a float Module, of
 * the same Module stored packed-sparse (every sparse format), and of an int8 Graph stored
 * packed-sparse. Unlike the decoder's own fuzz tests (test/unit/kiln-file*.test.ts), most edits
 * here recompute the checksums so that they reach the checks behind them: the header JSON edited
 * structurally (model config, graph nodes and attributes, tensor entries and sparse index
 * descriptors), tensor bytes and sparse index arrays rewritten, plus raw edits of the whole file
 * (bit flips, truncation, splices, absurd length fields). Every file must load and run a forward
 * pass, or fail with a Kiln error and its stable code: never crash (the sanitizer build checks
 * every access in npm run test:asan, with KILN_FUZZ_CASES in the thousands), hang, or throw
 * anything else.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { writeKilnFile } from '../../src/runtime/kiln-file.js';
import { save } from '../../src/runtime/model-io.js';
import { SparseTensor, toSparse } from '../../src/sparse-tensor.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { craftKilnFile } from '../unit/kiln-file-helpers.js';
import { fuzzCases, mutateBytes, mutateJson, Outcomes, pick, strayError } from './mutate.js';
import { createAndRun } from './run-model.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  offset: number;
  byteLength: number;
  checksum: number;
  layout: string;
  params?: { sparse?: unknown };
}
interface Header {
  tensors: Entry[];
  model: unknown;
}

/** Header (parsed) and data section of a file. */
function split(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(16, 16 + length)).toString('utf8')) as Header;
  return { header, data: bytes.slice(Math.ceil((16 + length) / 64) * 64) };
}

/** A file of `header` and `data` with the header checksum and every in-range tensor checksum recomputed. */
function withSums(header: Header, data: Uint8Array): Uint8Array {
  for (const e of Array.isArray(header.tensors) ? header.tensors : []) {
    if (e && Number.isSafeInteger(e.offset) && Number.isSafeInteger(e.byteLength) && e.offset >= 0 && e.byteLength >= 0 && e.offset + e.byteLength <= data.length) {
      e.checksum = zlib.crc32(data.subarray(e.offset, e.offset + e.byteLength));
    }
  }
  return craftKilnFile(header, data);
}

/** Words of the format a string field may be set to: op names, layer types, dtypes, layouts, index dtypes. */
const WORDS = [
  'Conv', 'Relu', 'MaxPool', 'Gemm', 'Flatten', 'Add', 'Softmax', 'QLinearConv', 'QLinearMatMul', 'QuantizeLinear', 'DequantizeLinear', 'Reshape', 'Concat', 'Foo',
  'conv2d', 'linear', 'relu', 'maxpool2d', 'flatten', 'batchnorm2d', 'sequential', 'dropout',
  'float32', 'int32', 'int8', 'uint8', 'int64', 'dense', 'sparse-csr', 'sparse-bcsr', 'uint8-delta', 'uint16',
  'input', 'logits', 'N', 'module', 'graph',
];

/** One mutation of `base` (`other`: a second base for splices). */
function mutate(base: Uint8Array, other: Uint8Array, rng: Rng): Uint8Array {
  const kind = rng.int(10);
  if (kind < 2) return mutateBytes(base, rng, other); // raw: mostly caught by the checksums and lengths
  const { header, data } = split(base);
  if (kind < 5) {
    // The model JSON (module config, or graph nodes, attributes, value infos).
    mutateJson(header.model, rng, WORDS);
  } else if (kind < 7) {
    // Tensor table entries: dims, dtype, layout, offsets, lengths, sparse descriptors.
    mutateJson(pick(rng, header.tensors), rng, WORDS);
  } else if (kind < 9) {
    // Tensor bytes (weights, scales, row pointers, column indices).
    const e = pick(rng, header.tensors);
    const sparse = e.layout !== 'dense';
    const span = sparse && rng.next() < 0.7 ? Math.min(e.byteLength, 256) : e.byteLength; // sparse: favour the index arrays at the start
    for (let k = 1 + rng.int(4); k > 0 && span > 0; k--) {
      const at = e.offset + rng.int(span);
      if (rng.next() < 0.5) data[at] ^= 1 << rng.int(8);
      else data[at] = pick(rng, [0, 1, 0x7f, 0x80, 0xff, rng.int(256)]);
    }
  } else {
    // Header text (numbers and punctuation), behind a valid header checksum.
    const text = JSON.stringify(header).split('');
    const alphabet = '0123456789-.e,:[]{}"';
    for (let k = 1 + rng.int(3); k > 0; k--) text[rng.int(text.length)] = alphabet[rng.int(alphabet.length)]!;
    return craftKilnFile(text.join(''), data);
  }
  return withSums(header, data);
}

async function bases(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.5, seed: 4 });
  const rng = new Rng(17);
  for (const p of net.parameters()) {
    if (p.value.dims.length < 2) continue;
    const d = p.value.data as Float32Array;
    for (let i = 0; i < d.length; i++) if (rng.next() < 0.85) d[i] = 0;
  }
  const calibration = new Tensor('float32', new Float32Array(8 * 144).map((_, i) => 0.5 + 0.5 * Math.sin(i * 0.37)), [8, 1, 12, 12]);
  const { graph } = await quantize(net, calibration, { reportImages: 0 });
  const formats = ['csr', 'bcsr-1x4', 'bcsr-4x1', 'bcsr-8x1'] as const;
  const files = [
    { name: 'dense module', path: join(dir, 'dense.kiln'), write: () => save(net, join(dir, 'dense.kiln'), { inputShape: [1, 12, 12] }) },
    {
      // Each weight in another sparse format.
      name: 'sparse module',
      path: join(dir, 'sparse.kiln'),
      write: () => {
        const tensors = new Map<string, Tensor | SparseTensor>(net.parameters().map((p, i) => [p.name, p.value.dims.length > 1 ? toSparse(p.value, formats[i % 4]!) : p.value]));
        return writeKilnFile(join(dir, 'sparse.kiln'), { model: { kind: 'module', config: net.config(), inputShape: [1, 12, 12] }, tensors });
      },
    },
    { name: 'sparse int8 graph', path: join(dir, 'int8.kiln'), write: () => save(graph, join(dir, 'int8.kiln'), { sparse: 'auto' }) },
  ];
  const out = [];
  for (const f of files) {
    await f.write();
    out.push({ name: f.name, bytes: new Uint8Array(readFileSync(f.path)) });
  }
  return out;
}

describe('.kiln loader fuzzing, through a forward pass', () => {
  it('seeded mutations of dense, packed-sparse and int8 files: each runs or fails with a stable Kiln code', async () => {
    const files = await bases();
    for (const f of files) expect(await createAndRun(f.bytes, new Rng(1))).toBe('ran');
    expect(split(files[1]!.bytes).header.tensors.filter((e) => e.layout !== 'dense').length).toBeGreaterThanOrEqual(3);
    const cases = fuzzCases(300);
    const rng = new Rng(20261203);
    const outcomes = new Outcomes();
    const started = Date.now();
    for (let k = 0; k < cases; k++) {
      const base = files[k % files.length]!;
      const bytes = mutate(base.bytes, files[(k + 1) % files.length]!.bytes, rng);
      try {
        // Half the sessions take the sparse kernels for every layer they can.
        outcomes.add(await createAndRun(bytes, rng, { sparseKernels: k % 2 ? 'always' : 'never' }));
      } catch (err) {
        const stray = strayError(err);
        if (stray) outcomes.strays.push(`case ${k} (${base.name}): ${stray}`);
        else outcomes.add((err as { code: string }).code);
      }
    }
    console.log(`.kiln fuzz: ${cases} cases in ${Date.now() - started} ms: ${outcomes}`);
    expect(outcomes.strays.slice(0, 10)).toEqual([]);
    // Both sides are exercised: mutated files that still run, and many refused as corrupt.
    expect(outcomes.get('ran')).toBeGreaterThan(cases / 20);
    expect(outcomes.get('ERR_KILN_CORRUPT_MODEL')).toBeGreaterThan(cases / 4);
  });
});
