import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { infoCommand, tensorRows } from '../../src/cli/info.js';

import { toGraph } from '../../src/graph/from-module.js';
import { seedCNN } from '../../src/nn/models.js';
import { decodeKilnFile, encodeKilnFile, KILN_MAX_SPARSE_DENSE_BYTES } from '../../src/runtime/kiln-file.js';
import type { KilnFile, KilnFileContents } from '../../src/runtime/kiln-file.js';
import { kilnStoredBytes, load, loadGraph, moduleFromKilnFile, save } from '../../src/runtime/model-io.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { SPARSE_FORMATS, SparseTensor, toSparse } from '../../src/sparse-tensor.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { corrupt, craftKilnFile } from './kiln-file-helpers.js';
import { randomSparse } from './sparse-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-sparse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  name: string;
  dtype: string;
  dims: unknown[];
  layout: string;
  offset: number;
  byteLength: number;
  checksum: number;
  params?: Record<string, unknown> & { sparse?: Record<string, unknown> & { rowPtr: { offset: number; length: number }; colIdx: { offset: number; length: number; dtype: string } } };
}
interface Header {
  tensors: Entry[];
  [key: string]: unknown;
}

/** Header (parsed) and data section of a file. */
function split(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(16, 16 + length)).toString('utf8')) as Header;
  return { header, data: bytes.slice(Math.ceil((16 + length) / 64) * 64) };
}

/** A file from any header and data, with a valid header checksum (and, with `sums`, tensor checksums recomputed). */
function craft(header: Header, data: Uint8Array, sums = false): Uint8Array {
  if (sums) {
    for (const e of header.tensors) {
      if (Number.isSafeInteger(e.offset) && Number.isSafeInteger(e.byteLength) && e.offset >= 0 && e.byteLength >= 0 && e.offset + e.byteLength <= data.length) {
        e.checksum = zlib.crc32(data.subarray(e.offset, e.offset + e.byteLength));
      }
    }
  }
  return craftKilnFile(header, data);
}

/** A file from raw header text and data (header checksum valid). */
const craftText = (text: string, data: Uint8Array): Uint8Array => craftKilnFile(text, data);

function sameBits(a: Tensor, b: Tensor): boolean {
  return a.type === b.type && a.dims.join() === b.dims.join() && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

/** Sessions on the two files give the same logits for `input`, bit for bit. */
async function expectSameLogits(densePath: string, sparsePath: string, input: Tensor): Promise<void> {
  const outputs: Float32Array[] = [];
  for (const path of [densePath, sparsePath]) {
    const session = await InferenceSession.create(path);
    outputs.push(Float32Array.from((await session.run({ input })).logits.data as Float32Array));
    session.release();
  }
  expect(Array.from(outputs[1])).toEqual(Array.from(outputs[0]));
}

/** Every dtype and format, odd shapes, an all-zero tensor, tensor params, and a dense tensor beside them. */
function sparseContents(): { contents: KilnFileContents; dense: Map<string, Tensor> } {
  const rng = new Rng(31);
  const dense = new Map<string, Tensor>();
  const tensors = new Map<string, Tensor | SparseTensor>();
  const shapes = [[10, 3, 3, 3], [13, 17], [9, 1, 5, 5], [16, 8]];
  SPARSE_FORMATS.forEach((format, i) => {
    for (const dtype of ['float32', 'int8'] as const) {
      const t = randomSparse(rng, dtype, shapes[i], [0.5, 0.9, 0.99, 1][(i + (dtype === 'int8' ? 1 : 0)) % 4]);
      const name = `${format}.${dtype}`;
      dense.set(name, t);
      tensors.set(name, toSparse(t, format));
    }
  });
  const plain = randomSparse(rng, 'float32', [4, 4], 0.5);
  dense.set('plain', plain);
  tensors.set('plain', plain);
  return {
    dense,
    contents: { model: { note: 'sparse' }, tensors, metadata: {}, tensorParams: new Map([['csr.int8', { scale: [0.5, 0.25], zeroPoint: 0 }]]) },
  };
}

describe('.kiln sparse layouts', () => {
  const { contents, dense } = sparseContents();
  const bytes = encodeKilnFile(contents, { createdAt: '2024-01-02T03:04:05.000Z', producer: 'kiln test' });

  it('round-trips packed tensors of every format and dtype exactly, as stored and unpacked', () => {
    const file = decodeKilnFile(bytes);
    for (const [name, t] of dense) expect(sameBits(file.tensors.get(name)!, t)).toBe(true);
    expect([...file.sparse.keys()]).toEqual([...dense.keys()].filter((n) => n !== 'plain'));
    for (const [name, s] of file.sparse) {
      const written = contents.tensors.get(name) as SparseTensor;
      expect(s.format).toBe(written.format);
      expect(Array.from(s.rowPtr)).toEqual(Array.from(written.rowPtr));
      expect(Array.from(s.colIdx)).toEqual(Array.from(written.colIdx));
      expect(Array.from(s.values)).toEqual(Array.from(written.values));
    }
    expect(Object.fromEntries(file.tensorParams)).toEqual({ 'csr.int8': { scale: [0.5, 0.25], zeroPoint: 0 } });
    const { header } = split(bytes);
    for (const e of header.tensors) {
      expect(e.offset % 64).toBe(0);
      if (e.name === 'plain') {
        expect(e.layout).toBe('dense');
        continue;
      }
      expect(e.layout).toBe(e.name.startsWith('csr') ? 'sparse-csr' : 'sparse-bcsr');
      const sp = e.params!.sparse!;
      expect(sp.rowPtr.offset).toBe(0);
      expect(sp.colIdx.offset % 64).toBe(0);
      // Small rows: every step between indices fits a byte.
      expect((sp.colIdx as { dtype: string }).dtype).toBe('uint8-delta');
      expect(e.dims).toEqual(dense.get(e.name)!.dims);
    }
    // Same inputs, same bytes.
    expect(Buffer.from(encodeKilnFile(sparseContents().contents, { createdAt: '2024-01-02T03:04:05.000Z', producer: 'kiln test' })).equals(Buffer.from(bytes))).toBe(true);
    expect(() => encodeKilnFile({ ...contents, tensorParams: new Map([['csr.float32', { sparse: 1 }]]) })).toThrow(RangeError);
  });

  it('stores column indices as byte steps (with escapes for long gaps), uint16 or int32: the narrowest, exact either way', () => {
    // [label, columns, non-zero columns of the one row, expected form, expected colIdx.length]
    const cases: [string, number, number[], string, number][] = [
      ['steps <= 255', 256, [3, 200, 255], 'uint8-delta', 3],
      ['a step of 299: one escape', 300, [0, 299], 'uint8-delta', 3],
      ['a step of exactly 255 needs none, 256 one, 511 two', 1300, [254, 509, 765, 1276, 1277, 1278, 1279, 1280], 'uint8-delta', 1 + 1 + 2 + 3 + 4],
      ['steps of 600: 3 bytes each, uint16 is smaller', 3000, [0, 600, 1200, 1800, 2400], 'uint16', 5],
      ['wide rows, few indices: int32', 70000, [0, 35000, 69999], 'int32', 3],
    ];
    for (const [label, cols, nz, form, length] of cases) {
      const data = new Float32Array(2 * cols);
      nz.forEach((c, i) => (data[c] = i + 1));
      data[cols + cols - 1] = 9; // row 1: one index at its end
      const dense = new Tensor('float32', data, [2, cols]);
      const file = decodeKilnFile(encodeKilnFile({ model: null, tensors: new Map([['w', toSparse(dense, 'csr')]]) }));
      const colIdx = (file.entries.find((e) => e.name === 'w')!.params!.sparse as { colIdx: { dtype: string; length: number } }).colIdx;
      const rowOne = form === 'uint8-delta' ? Math.ceil(cols / 255) : 1; // row 1's single index after escapes
      expect([colIdx.dtype, colIdx.length], label).toEqual([form, length + rowOne]);
      expect(Array.from(file.tensors.get('w')!.data), label).toEqual(Array.from(dense.data));
    }
  });

  it('writes a dense-only file byte for byte as before sparse layouts existed', () => {
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 });
    const tensors = new Map<string, Tensor>(net.parameters().map((p) => [p.name, p.value]));
    tensors.set('codes', new Tensor('int8', new Int8Array([1, -2, 3]), [3]));
    const golden = encodeKilnFile(
      { model: { config: net.config() }, tensors, metadata: { a: 1 }, tensorParams: new Map([['codes', { scale: 0.5 }]]) },
      { createdAt: '2024-01-02T03:04:05.000Z', producer: 'kiln test' },
    );
    // Recorded from the writer before this change.
    expect(golden.length).toBe(902275);
    expect(createHash('sha256').update(golden).digest('hex')).toBe('26923eecb71786e84ff2aa28ecd793ea85f3c69cfbeb7913f992b9db91d998bb');
  });

  /** Edits the header (and data) of the sample file, recomputing every checksum. */
  const edited = (edit: (h: Header, data: Uint8Array) => void): Uint8Array => {
    const { header, data } = split(bytes);
    edit(header, data);
    return craft(header, data, true);
  };
  const entry = (h: Header, name: string): Entry => h.tensors.find((e) => e.name === name)!;
  const sp = (h: Header, name: string) => entry(h, name).params!.sparse!;
  const i32 = (data: Uint8Array, e: Entry, which: 'rowPtr' | 'colIdx') => {
    const a = e.params!.sparse![which];
    const at = data.byteOffset + e.offset + a.offset;
    const dtype = which === 'colIdx' ? (a as { dtype?: string }).dtype : 'int32';
    return dtype === 'uint8-delta' ? new Uint8Array(data.buffer, at, a.length) : dtype === 'uint16' ? new Uint16Array(data.buffer, at, a.length) : new Int32Array(data.buffer, at, a.length);
  };

  it('names each corrupt header field of a sparse entry', () => {
    expect(() => decodeKilnFile(edited(() => undefined))).not.toThrow();
    const cases: [string, (h: Header, d: Uint8Array) => void][] = [
      ['nnz 9007199254740992 is not an integer', (h) => (sp(h, 'csr.float32').nnz = 2 ** 53)],
      ['nnz -1', (h) => (sp(h, 'csr.float32').nnz = -1)],
      ["nnz 33 needs 132 bytes of column indices, more than the entry's 64 bytes", (h) => {
        sp(h, 'bcsr-4x1.int8').nnz = 33;
        sp(h, 'bcsr-4x1.int8').colIdx.dtype = 'int32';
      }],
      ["params.sparse.colIdx.dtype is \"int64\", not one of 'int32', 'uint16', 'uint8-delta'", (h) => (sp(h, 'csr.float32').colIdx.dtype = 'int64')],
      ['params.sparse.values.offset is', (h) => (sp(h, 'csr.float32').colIdx.dtype = 'int32')],
      ['nnz 1000000 is not an integer in [0, 65]', (h) => (sp(h, 'bcsr-1x4.float32').nnz = 1e6)],
      ['nnz 1e+300', (h) => (sp(h, 'csr.float32').nnz = 1e300)],
      ['params.sparse.colIdx.length is', (h) => (sp(h, 'csr.float32').colIdx.length = (sp(h, 'csr.float32').nnz as number) - 1)],
      ["'csr.float32': 1 column index steps follow the last row's indices", (h) => {
        // One more byte step than the indices need (the padding after them is 0: an escape).
        const c = sp(h, 'csr.float32').colIdx;
        if ((c.offset + c.length) % 64 === 0) throw new Error('the sample needs padding after its column indices');
        c.length += 1;
      }],
      ['params.sparse.rowPtr.length is 12, expected 11', (h) => (sp(h, 'csr.float32').rowPtr.length = 12)],
      ['params.sparse.colIdx.offset is 0, expected 64', (h) => (sp(h, 'csr.float32').colIdx.offset = 0)],
      ['params.sparse.values is not an {offset, length} object', (h) => (sp(h, 'csr.float32').values = [1, 2] as never)],
      ['block [1,4] is not [1, 1]', (h) => (sp(h, 'csr.float32').block = [1, 4])],
      ['block [2,2] is not one of', (h) => (sp(h, 'bcsr-1x4.float32').block = [2, 2])],
      ['has layout sparse-csr but no params.sparse object', (h) => delete entry(h, 'csr.float32').params],
      ['has layout sparse-bcsr but no params.sparse object', (h) => (entry(h, 'plain').layout = 'sparse-bcsr')],
      ["has layout \"sparse-coo\"", (h) => (entry(h, 'csr.float32').layout = 'sparse-coo')],
      ['a sparse layout holds float32 or int8', (h) => (entry(h, 'csr.float32').dtype = 'int32')],
      ['a scalar', (h) => (entry(h, 'csr.float32').dims = [])],
      ['unpack to', (h) => (entry(h, 'csr.float32').dims = [10, 2 ** 31 - 1])],
      [`more than the ${KILN_MAX_SPARSE_DENSE_BYTES}-byte limit`, (h) => (entry(h, 'csr.float32').dims = [10, 3, 2 ** 30, 3])],
      ['rowPtr.length is 11, expected 21', (h) => (entry(h, 'csr.float32').dims = [20, 3, 3, 3])],
      ['its sparse tensors unpack to', (h) => {
        entry(h, 'bcsr-4x1.int8').dims = [9, 71582788]; // 644 MB, under the limit alone
        entry(h, 'bcsr-8x1.float32').dims = [16, 2 ** 30 / 64]; // exactly the limit
      }],
      ['byteLength 1e+300 is not an integer', (h) => (entry(h, 'csr.float32').byteLength = 1e300)],
      ['byteLength', (h) => (entry(h, 'csr.float32').byteLength += 4)],
    ];
    for (const [message, edit] of cases) expect(() => decodeKilnFile(edited(edit)), message).toThrow(corrupt(message));
  });

  it('names each corrupt index array of a sparse entry (checksums valid)', () => {
    const cases: [string, (h: Header, d: Uint8Array) => void][] = [
      ["sparse tensor 'csr.float32': row pointers are not monotonic", (h, d) => {
        const r = i32(d, entry(h, 'csr.float32'), 'rowPtr');
        r[3] = r[4] + 1;
      }],
      ["sparse tensor 'csr.int8': row pointer 0 is 5", (h, d) => (i32(d, entry(h, 'csr.int8'), 'rowPtr')[0] = 5)],
      ["'csr.float32': rowPtr[10] = 2147483647 runs past", (h, d) => (i32(d, entry(h, 'csr.float32'), 'rowPtr')[10] = 2 ** 31 - 1)],
      ["'csr.float32': the last row pointer is", (h, d) => (i32(d, entry(h, 'csr.float32'), 'rowPtr')[10] -= 1)],
      // The sample's indices are stored as byte steps (uint8-delta): index k = index k-1 + step k,
      // the first of a row = step - 1.
      ["'csr.float32': column index 27 at position 0 (row 0) is outside the row: 27 columns", (h, d) => (i32(d, entry(h, 'csr.float32'), 'colIdx')[0] = 28)],
      ["'csr.float32': column index 254 at position 0 (row 0) is outside the row", (h, d) => (i32(d, entry(h, 'csr.float32'), 'colIdx')[0] = 255)],
      ["'bcsr-1x4.float32': column index 5 at position 0 (block row 0) is outside the block row: 5 block columns of 4", (h, d) => (i32(d, entry(h, 'bcsr-1x4.float32'), 'colIdx')[0] = 6)],
      // A step byte 0 advances 255 without an index: all-zero steps run out before the row's indices do.
      ["'csr.float32': its 140 column index steps end before row 0's 14 indices do", (h, d) => i32(d, entry(h, 'csr.float32'), 'colIdx').fill(0, 1)],
    ];
    for (const [message, edit] of cases) expect(() => decodeKilnFile(edited(edit)), message).toThrow(corrupt(message));
  });

  it("a sparse weight whose dims do not match its layer's is refused on load", async () => {
    const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, widthMultiplier: 0.25, seed: 1 });
    (net.parameters()[0].value.data as Float32Array).fill(0);
    const path = join(dir, 'shape.kiln');
    await save(net, path, { sparse: 'auto', inputShape: [1, 12, 12] });
    const fileBytes = new Uint8Array(await readFile(path));
    const { header, data } = split(fileBytes);
    const w = header.tensors.find((e) => e.name === '0.weight')!;
    expect(w.layout).not.toBe('dense');
    w.dims = [w.dims[0], 9]; // same rows and columns: structurally valid
    const file = decodeKilnFile(craft(header, data, true));
    expect(() => moduleFromKilnFile(file)).toThrow(corrupt("tensor '0.weight' has dims [8, 9], the model needs [8, 1, 3, 3]"));
  });

  it('seeded fuzz: 3000 mutated sparse files give a model or ERR_KILN_CORRUPT_MODEL, never anything else', async () => {
    const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, widthMultiplier: 0.25, seed: 2 });
    const rng = new Rng(4242);
    for (const p of net.parameters()) {
      const d = p.value.data as Float32Array;
      for (let i = 0; i < d.length; i++) if (rng.next() < 0.85) d[i] = 0;
    }
    // Every format in one model file (each tensor stored in a different one), plus an int8 file.
    const formats = ['csr', 'bcsr-1x4', 'bcsr-4x1', 'bcsr-8x1'] as const;
    const tensors = new Map<string, Tensor | SparseTensor>(net.parameters().map((p, i) => [p.name, p.value.dims.length > 1 ? toSparse(p.value, formats[i % 4]) : p.value]));
    const bases = [
      { bytes: encodeKilnFile({ model: { kind: 'module', config: net.config() }, tensors }), module: true },
      { bytes: bytes, module: false },
    ];
    expect(moduleFromKilnFile(decodeKilnFile(bases[0].bytes))).toBeDefined();
    const outcomes = { decoded: 0, rejected: 0 };
    const values = (v: number): unknown[] => [v + 1, v - 1, v * 2, 0, -1, 1, 64, 2 ** 31, 2 ** 31 - 1, 2 ** 53, 2 ** 53 + 2, 1e300, 0.5, '7', null, [], rng.int(1000)];
    const started = Date.now();
    for (let trial = 0; trial < 3000; trial++) {
      const base = bases[trial % 2];
      const { header, data } = split(base.bytes);
      const sparseEntries = header.tensors.filter((e) => e.layout !== 'dense');
      const e = sparseEntries[rng.int(sparseEntries.length)];
      const kind = rng.int(4);
      let file: Uint8Array;
      if (kind === 3) {
        // Characters of the entry's JSON text (header checksum recomputed, tensor checksums as they were).
        const text = JSON.stringify(header);
        const from = text.indexOf(JSON.stringify(e));
        const chars = text.split('');
        const alphabet = '0123456789-.e,:[]{}"';
        for (let k = 1 + rng.int(3); k > 0; k--) chars[from + rng.int(JSON.stringify(e).length)] = alphabet[rng.int(alphabet.length)];
        file = craftText(chars.join(''), data);
      } else if (kind === 0) {
        // A header field of the entry or its params.sparse, to a nearby or absurd value.
        const s = e.params!.sparse! as Record<string, unknown>;
        const fields: [Record<string, unknown>, string | number][] = [
          [e as unknown as Record<string, unknown>, 'byteLength'], [e as unknown as Record<string, unknown>, 'offset'], [s, 'nnz'],
          [e.dims as unknown as Record<string, unknown>, rng.int(e.dims.length)],
          [s.block as Record<string, unknown>, rng.int(2)],
          [s.rowPtr as Record<string, unknown>, 'offset'], [s.rowPtr as Record<string, unknown>, 'length'],
          [s.colIdx as Record<string, unknown>, 'offset'], [s.colIdx as Record<string, unknown>, 'length'], [s.colIdx as Record<string, unknown>, 'dtype'],
          [s.values as Record<string, unknown>, 'offset'], [s.values as Record<string, unknown>, 'length'],
        ];
        for (let k = 1 + rng.int(2); k > 0; k--) {
          const [obj, key] = fields[rng.int(fields.length)];
          const options = values(Number(obj[key as string]));
          obj[key as string] = options[rng.int(options.length)];
        }
      } else {
        // Bytes of the index arrays (row pointers and column indices), checksums recomputed.
        const sp = e.params!.sparse!;
        const start = e.offset;
        const end = e.offset + sp.colIdx.offset + sp.colIdx.length * ({ int32: 4, uint16: 2, 'uint8-delta': 1 }[sp.colIdx.dtype as string] ?? 4);
        for (let k = 1 + rng.int(3); k > 0 && end > start; k--) {
          const at = start + rng.int(end - start);
          if (kind === 1) data[at] ^= 1 << rng.int(8);
          else data[at] = rng.int(256);
        }
      }
      if (kind !== 3) file = craft(header, data, true);
      try {
        const decoded: KilnFile = decodeKilnFile(file!);
        if (base.module) moduleFromKilnFile(decoded);
        outcomes.decoded++;
      } catch (err) {
        expect(err).toMatchObject({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL' });
        outcomes.rejected++;
      }
    }
    console.log(`sparse .kiln fuzz: ${outcomes.decoded} decoded, ${outcomes.rejected} rejected (ERR_KILN_CORRUPT_MODEL) in ${Date.now() - started} ms`);
    expect(outcomes.rejected).toBeGreaterThan(2000);
    expect(outcomes.decoded).toBeGreaterThan(0); // e.g. an index edit that stays increasing and in range
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('save / load with sparse weights', () => {
  it("sparse: 'auto' stores 90%-sparse SeedCNN weights packed, smaller, and loads them exactly", async () => {
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 });
    const rng = new Rng(9);
    for (const p of net.parameters()) {
      if (p.value.dims.length < 2) continue;
      const d = p.value.data as Float32Array;
      for (let i = 0; i < d.length; i++) if (rng.next() < 0.9) d[i] = 0;
    }
    const densePath = join(dir, 'dense.kiln');
    const sparsePath = join(dir, 'sparse.kiln');
    await save(net, densePath, { inputShape: [1, 28, 28] });
    await save(net, sparsePath, { inputShape: [1, 28, 28], sparse: 'auto' });
    const denseFile = decodeKilnFile(new Uint8Array(await readFile(densePath)));
    expect(denseFile.entries.every((e) => e.layout === 'dense')).toBe(true);
    const sparseFile = decodeKilnFile(new Uint8Array(await readFile(sparsePath)));
    const packed = sparseFile.entries.filter((e) => e.layout !== 'dense').map((e) => e.name);
    // The weights, and any bias that is all zeros (Linear biases start at 0).
    expect(packed.filter((n) => n.endsWith('weight'))).toEqual(['0.weight', '3.weight', '7.weight', '9.weight']);
    for (const name of packed.filter((n) => n.endsWith('bias'))) expect(sparseFile.sparse.get(name)!.nnz).toBe(0);
    const loaded = await load(sparsePath);
    const want = new Map(net.parameters().map((p) => [p.name, p.value]));
    for (const p of loaded.parameters()) expect(sameBits(p.value, want.get(p.name)!)).toBe(true);
    const ratio = statSync(sparsePath).size / statSync(densePath).size;
    // CSR fp32 at 10% density: 5 bytes per non-zero (value + a 1-byte index step) for 4 per element, about 0.13 of the dense bytes.
    console.log(`SeedCNN MNIST, weights 90% zero: dense ${statSync(densePath).size} bytes, sparse ${statSync(sparsePath).size} bytes, ratio ${ratio.toFixed(3)}`);
    expect(ratio).toBeLessThan(0.14);
    expect(ratio).toBeGreaterThan(0.12);

    // kiln info: per tensor, layout, sparsity, dense and stored bytes.
    const rows = tensorRows(sparseFile);
    const w = rows.find((r) => r.name === '7.weight')!;
    expect(w).toMatchObject({ layout: 'sparse-csr', format: 'csr', dtype: 'float32', denseBytes: 1600 * 128 * 4 });
    expect(w.sparsity).toBeGreaterThan(0.89);
    expect(w.storedBytes).toBeLessThan(w.denseBytes * 0.135);
    expect(rows.find((r) => r.name === '0.bias')).toMatchObject({ layout: 'dense', format: null, storedBytes: 128 });
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    try {
      await infoCommand(sparsePath, {});
      await infoCommand(densePath, {});
      await infoCommand(sparsePath, { json: true });
    } finally {
      spy.mockRestore();
    }
    expect(written[0]).toMatch(/7\.weight\s+csr\s+9\d\.\d%\s+819,200\s+1\d\d,\d{3}/);
    expect(written[0]).toMatch(/\d of 8 tensors stored sparse: 1\d\d,\d{3} of 900,136 dense bytes/);
    expect(written[1]).not.toContain('stored sparse');
    expect((JSON.parse(written[2]) as { tensors: unknown[] }).tensors).toEqual(JSON.parse(JSON.stringify(rows)));

    // A session reads the sparse file as the dense one: same outputs, bit for bit.
    const x = new Tensor('float32', new Float32Array(2 * 28 * 28).map(() => rng.next()), [2, 1, 28, 28]);
    await expectSameLogits(densePath, sparsePath, x);
  });

  it('leaves dense weights dense, honours tensors/formats, checks the option; a Graph saves sparse too', async () => {
    const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, widthMultiplier: 0.25, seed: 3 });
    const path = join(dir, 'opt.kiln');
    await save(net, path, { sparse: 'auto' });
    expect(decodeKilnFile(new Uint8Array(await readFile(path))).entries.every((e) => e.layout === 'dense')).toBe(true);
    (net.parameters()[0].value.data as Float32Array).fill(0);
    (net.parameters()[2].value.data as Float32Array).fill(0);
    await save(net, path, { sparse: { tensors: ['3.weight'], formats: ['bcsr-4x1'] } });
    const file = decodeKilnFile(new Uint8Array(await readFile(path)));
    expect(file.entries.filter((e) => e.layout !== 'dense').map((e) => [e.name, e.layout, (e.params!.sparse as { block: number[] }).block])).toEqual([['3.weight', 'sparse-bcsr', [4, 1]]]);
    await expect(save(net, path, { sparse: 'always' as never })).rejects.toThrow(RangeError);
    await expect(save(net, path, { sparse: { tensors: ['nope'] } })).rejects.toThrow(RangeError);
    await expect(save(net, path, { sparse: { formats: ['coo' as never] } })).rejects.toThrow(RangeError);
    await expect(save(net, path, { sparse: { formats: [] } })).rejects.toThrow(TypeError);

    const graph = toGraph(net, [1, 12, 12]);
    const gpath = join(dir, 'graph.kiln');
    await save(graph, gpath, { sparse: 'auto' });
    const gfile = decodeKilnFile(new Uint8Array(await readFile(gpath)));
    expect(gfile.entries.some((e) => e.layout === 'sparse-csr' || e.layout === 'sparse-bcsr')).toBe(true);
    const back = await loadGraph(gpath);
    for (const [name, t] of graph.initializers) expect(sameBits(back.initializers.get(name)!, t)).toBe(true);
    expect(kilnStoredBytes(toSparse(new Tensor('float32', new Float32Array(100), [10, 10])))).toBe(64);
  });

  it('an int8 graph of a pruned model saves its int8 weights packed and runs the same', async () => {
    const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.5, seed: 4 });
    const rng = new Rng(17);
    for (const p of net.parameters()) {
      if (p.value.dims.length < 2) continue;
      const d = p.value.data as Float32Array;
      for (let i = 0; i < d.length; i++) if (rng.next() < 0.9) d[i] = 0;
    }
    const data = new Tensor('float32', new Float32Array(16 * 144).map((_, i) => 0.5 + 0.5 * Math.sin(i * 0.37)), [16, 1, 12, 12]);
    const { graph } = await quantize(net, data, { reportImages: 0 });
    const densePath = join(dir, 'q-dense.kiln');
    const sparsePath = join(dir, 'q-sparse.kiln');
    await save(graph, densePath);
    await save(graph, sparsePath, { sparse: 'auto' });
    const file = decodeKilnFile(new Uint8Array(await readFile(sparsePath)));
    const packedInt8 = [...file.sparse.values()].filter((t) => t.dtype === 'int8' && t.dims.length > 1);
    expect(packedInt8.length).toBeGreaterThanOrEqual(2);
    // int8 CSR at 10% density: 2 bytes per non-zero (code + 1-byte index step) for 1 per element.
    const weights = tensorRows(file).filter((r) => r.dtype === 'int8' && r.dims.length > 1);
    const stored = weights.reduce((a, r) => a + r.storedBytes, 0);
    const dense = weights.reduce((a, r) => a + r.denseBytes, 0);
    console.log(`int8 SeedCNN (x0.5, 12x12), weights 90% zero: int8 weights ${dense} -> ${stored} bytes (${(stored / dense).toFixed(3)}); file ${statSync(densePath).size} -> ${statSync(sparsePath).size} bytes`);
    expect(stored / dense).toBeLessThan(0.45); // small layers: row pointers and alignment weigh in
    expect(statSync(sparsePath).size).toBeLessThan(statSync(densePath).size);
    const back = await loadGraph(sparsePath);
    for (const [name, t] of graph.initializers) expect(sameBits(back.initializers.get(name)!, t)).toBe(true);
    const x = data.reshape([16, 1, 12, 12]);
    await expectSameLogits(densePath, sparsePath, x);
  });
});
