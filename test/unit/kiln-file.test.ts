import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { crc32, crc32Portable, decodeKilnFile, encodeKilnFile, readKilnFile, writeKilnFile } from '../../src/runtime/kiln-file.js';
import type { KilnFile, KilnFileContents } from '../../src/runtime/kiln-file.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { corrupt, craftKilnFile as craft } from './kiln-file-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bytesOf(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

type DenseContents = Omit<KilnFileContents, 'tensors'> & { tensors: ReadonlyMap<string, Tensor> };

/** Tensors of every dtype, odd and prime shapes, a scalar, an empty one, and a view into a larger buffer. */
function sampleContents(seed = 1): DenseContents {
  const rng = new Rng(seed);
  const f32 = new Float32Array(3 * 5 * 7).map(() => rng.normal());
  f32[4] = Number.NaN;
  f32[5] = -0;
  const big = new Float32Array(40).map(() => rng.normal());
  return {
    model: { config: { type: 'Sequential', layers: [{ type: 'Linear', inFeatures: 3, outFeatures: 2, bias: true }] }, inputShape: [1, 28, 28], note: 'ünïcode ✓' },
    tensors: new Map<string, Tensor>([
      ['0.weight', new Tensor('float32', f32, [3, 5, 7])],
      ['codes', new Tensor('int8', new Int8Array(13).map(() => rng.int(256) - 128), [13])],
      ['bytes', new Tensor('uint8', new Uint8Array(2 * 11).map(() => rng.int(256)), [2, 11])],
      ['index', new Tensor('int32', new Int32Array(3).map(() => rng.nextUint32() | 0), [1, 3, 1])],
      ['scalar', new Tensor('float32', new Float32Array([2.5]), [])],
      ['empty', new Tensor('float32', new Float32Array(0), [0, 4])],
      ['view', new Tensor('float32', big.subarray(3, 3 + 17), [17])],
    ]),
    metadata: { testAccuracy: '0.98', layers: [{ sparsity: 0.5 }], nested: { ok: true, none: null } },
    tensorParams: new Map([['codes', { scale: 0.0125, zeroPoint: -3 }]]),
  };
}

function expectSame(file: KilnFile, contents: DenseContents): void {
  expect(file.model).toEqual(contents.model);
  expect(file.metadata).toEqual(contents.metadata ?? {});
  expect([...file.tensors.keys()]).toEqual([...contents.tensors.keys()]);
  for (const [name, t] of contents.tensors) {
    const got = file.tensors.get(name)!;
    expect(got.type).toBe(t.type);
    expect(got.dims).toEqual(t.dims);
    expect(bytesOf(got).equals(bytesOf(t))).toBe(true);
  }
  expect(Object.fromEntries(file.tensorParams)).toEqual(Object.fromEntries(contents.tensorParams ?? []));
}

/** Two decoded files hold the same thing. */
function sameFile(a: KilnFile, b: KilnFile): boolean {
  if (JSON.stringify([a.model, a.metadata, a.producer, a.createdAt, a.entries]) !== JSON.stringify([b.model, b.metadata, b.producer, b.createdAt, b.entries])) return false;
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name);
    if (!u || u.type !== t.type || !bytesOf(u).equals(bytesOf(t))) return false;
  }
  return a.tensors.size === b.tensors.size;
}

function validHeader(tensors: object[] = []): Record<string, unknown> {
  return { format: 'kiln', producer: 'test', createdAt: 'now', model: null, tensors, metadata: {} };
}

describe('.kiln file', () => {
  const contents: DenseContents = sampleContents();
  const createdAt = '2024-01-02T03:04:05.000Z';
  const bytes = encodeKilnFile(contents, { createdAt, producer: 'kiln test' });
  const original = decodeKilnFile(bytes);

  it('round-trips model, metadata, tensors (every dtype, bit for bit) and tensor params', async () => {
    expectSame(original, contents);
    expect(original.version).toBe(1);
    expect(original.producer).toBe('kiln test');
    expect(original.createdAt).toBe(createdAt);
    expect(Number.isNaN(original.tensors.get('0.weight')!.data[4])).toBe(true);
    expect(Object.is(original.tensors.get('0.weight')!.data[5], -0)).toBe(true);

    const path = join(dir, 'model.kiln');
    await writeKilnFile(path, contents);
    const fromPath = await readKilnFile(path);
    expectSame(fromPath, contents);
    expect(fromPath.producer).toMatch(/^kiln( \d+\.\d+\.\d+.*)?$/);
    expect(Date.parse(fromPath.createdAt)).not.toBeNaN();
    expectSame(await readKilnFile(new Uint8Array(await readFile(path))), contents);
  });

  it('lays the file out as documented: preamble, header, 64-byte-aligned data, nothing after', () => {
    expect(Buffer.from(bytes.subarray(0, 4)).toString('latin1')).toBe('KILN');
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const headerLength = view.getUint32(8, true);
    expect(view.getUint32(12, true)).toBe(zlib.crc32(bytes.subarray(16, 16 + headerLength)));
    const header = JSON.parse(Buffer.from(bytes.subarray(16, 16 + headerLength)).toString('utf8')) as { tensors: { name: string; offset: number; byteLength: number; checksum: number; layout: string }[] };
    const dataStart = Math.ceil((16 + headerLength) / 64) * 64;
    let end = 0;
    for (const e of header.tensors) {
      expect((dataStart + e.offset) % 64).toBe(0);
      expect(e.layout).toBe('dense');
      const t = contents.tensors.get(e.name)!;
      expect(Buffer.from(bytes.subarray(dataStart + e.offset, dataStart + e.offset + e.byteLength)).equals(bytesOf(t))).toBe(true);
      expect(e.checksum).toBe(zlib.crc32(bytesOf(t)));
      end = Math.max(end, e.offset + e.byteLength);
    }
    expect(bytes.length).toBe(dataStart + end);
    // Same inputs and timestamp, same bytes.
    expect(Buffer.from(encodeKilnFile(sampleContents(), { createdAt, producer: 'kiln test' })).equals(Buffer.from(bytes))).toBe(true);
  });

  it('handles a model without tensors', () => {
    const empty = decodeKilnFile(encodeKilnFile({ model: [1, 'two'], tensors: new Map() }));
    expect(empty.model).toEqual([1, 'two']);
    expect(empty.tensors.size).toBe(0);
    expect(empty.metadata).toEqual({});
  });

  it('writes atomically: no temporary file left behind, overwrites in place, failures leave nothing', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const path = join(sub, 'm.kiln');
    await writeFile(path, 'old contents');
    await writeKilnFile(path, contents);
    expectSame(await readKilnFile(path), contents);
    expect(readdirSync(sub)).toEqual(['m.kiln']);
    await expect(writeKilnFile(join(sub, 'missing-dir', 'm.kiln'), contents)).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining('missing-dir') });
    await expect(writeKilnFile(join(sub, 'bad.kiln'), { model: Number.NaN, tensors: new Map() })).rejects.toThrow(RangeError);
    expect(readdirSync(sub)).toEqual(['m.kiln']);
    await expect(readKilnFile(join(sub, 'nope.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining('nope.kiln') });
  });

  it('rejects a file truncated at any point', () => {
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => decodeKilnFile(bytes.subarray(0, cut))).toThrow(corrupt());
    }
    expect(() => decodeKilnFile(bytes.subarray(0, 10), 'x.kiln')).toThrow(corrupt('x.kiln: it holds 10 bytes'));
  });

  it('rejects flipped bits and bytes, or decodes the very same model (600 seeded mutations)', () => {
    const rng = new Rng(2024);
    let rejected = 0;
    for (let trial = 0; trial < 600; trial++) {
      const mutated = bytes.slice();
      const edits = 1 + rng.int(trial % 3 === 0 ? 8 : 1);
      for (let k = 0; k < edits; k++) {
        const at = rng.int(mutated.length);
        if (rng.next() < 0.5) mutated[at] ^= 1 << rng.int(8);
        else mutated[at] = rng.int(256);
      }
      let result: KilnFile | undefined;
      try {
        result = decodeKilnFile(mutated);
      } catch (err) {
        expect(err).toMatchObject({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL' });
        rejected++;
        continue;
      }
      // Only padding (or a byte rewritten to its own value) may change without an error.
      expect(sameFile(result, original)).toBe(true);
    }
    expect(rejected).toBeGreaterThan(400);
  });

  it('behind a valid header checksum, edited header text still decodes or is a clean KilnError (400 seeded edits)', () => {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const headerLength = view.getUint32(8, true);
    const text = Buffer.from(bytes.subarray(16, 16 + headerLength)).toString('utf8');
    const data = bytes.subarray(Math.ceil((16 + headerLength) / 64) * 64);
    const alphabet = '0123456789-.e,:[]{}"';
    const rng = new Rng(77);
    let decoded = 0;
    for (let trial = 0; trial < 400; trial++) {
      const chars = text.split('');
      for (let k = 1 + rng.int(3); k > 0; k--) chars[rng.int(chars.length)] = alphabet[rng.int(alphabet.length)];
      const file = craft(chars.join(''), data);
      try {
        decodeKilnFile(file);
        decoded++;
      } catch (err) {
        expect(err).toMatchObject({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL' });
      }
    }
    // Some edits land in strings or numbers that stay valid (metadata, model): those decode.
    expect(decoded).toBeGreaterThan(0);
  });

  it('rejects a flipped byte in every tensor and in the header', () => {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const dataStart = Math.ceil((16 + view.getUint32(8, true)) / 64) * 64;
    for (const e of original.entries.filter((x) => x.byteLength > 0)) {
      const mutated = bytes.slice();
      mutated[dataStart + e.offset + e.byteLength - 1] ^= 0x80;
      expect(() => decodeKilnFile(mutated)).toThrow(corrupt(`checksum mismatch for tensor '${e.name}'`));
    }
    const mutated = bytes.slice();
    mutated[40] ^= 1;
    expect(() => decodeKilnFile(mutated)).toThrow(corrupt('header checksum mismatch'));
  });

  it('rejects absurd dimensions without allocating them', () => {
    const before = process.memoryUsage().arrayBuffers;
    const entry = { name: 'w', dtype: 'float32', layout: 'dense', offset: 0, checksum: 0 };
    expect(() => decodeKilnFile(craft(validHeader([{ ...entry, dims: [2 ** 40], byteLength: 2 ** 42 }])))).toThrow(corrupt('dimension 1099511627776'));
    expect(() => decodeKilnFile(craft(validHeader([{ ...entry, dims: [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1], byteLength: 4 }])))).toThrow(corrupt('need more bytes than the 0-byte data section'));
    expect(() => decodeKilnFile(craft(validHeader([{ ...entry, dims: [2 ** 20, 2 ** 20], byteLength: 2 ** 42 }]), new Uint8Array(64)))).toThrow(corrupt('need more bytes'));
    expect(() => decodeKilnFile(craft('{}', new Uint8Array(0), (v) => v.setUint32(8, 0xffffffff, true)))).toThrow(corrupt('header length 4294967295'));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('names what is wrong in a crafted header', () => {
    const data = new Uint8Array(128).map((_, i) => i);
    const crc = (from: number, to: number) => zlib.crc32(data.subarray(from, to));
    const w = { name: 'w', dtype: 'float32', layout: 'dense', dims: [2, 2], offset: 0, byteLength: 16, checksum: crc(0, 16) };
    const v = { name: 'v', dtype: 'uint8', layout: 'dense', dims: [8], offset: 64, byteLength: 8, checksum: crc(64, 72) };
    // The base case decodes, so each failure below is the one edit's doing.
    const ok = decodeKilnFile(craft(validHeader([w, v]), data.subarray(0, 72)));
    expect(Array.from(ok.tensors.get('v')!.data)).toEqual([64, 65, 66, 67, 68, 69, 70, 71]);

    const cases: [unknown, string, Uint8Array?][] = [
      [{ ...validHeader([w, v]), format: 'onnx' }, 'format'],
      [{ ...validHeader([w, v]), producer: 3 }, 'producer'],
      [{ ...validHeader([w, v]), createdAt: null }, 'createdAt'],
      [{ format: 'kiln', producer: '', createdAt: '', tensors: [], metadata: {} }, 'no model'],
      [{ ...validHeader([w, v]), metadata: [] }, 'metadata is not a JSON object'],
      [{ ...validHeader(), tensors: {} }, 'tensors is not an array'],
      [[1, 2], 'not a JSON object'],
      ['{"format": "kiln", ', 'not valid UTF-8 JSON'],
      [validHeader([w, 7 as unknown as object]), 'tensors[1] is not a JSON object'],
      [validHeader([w, { ...v, name: '' }]), 'tensors[1].name'],
      [validHeader([w, { ...v, name: 'w' }]), "tensor name 'w' appears twice"],
      [validHeader([w, { ...v, dtype: 'float16' }]), "unknown dtype"],
      [validHeader([w, { ...v, layout: 'packed-s8' }]), 'does not support'],
      [validHeader([w, { ...v, dims: 8 }]), 'dims is not an array'],
      [validHeader([w, { ...v, dims: new Array(17).fill(1) }]), 'at most 16'],
      [validHeader([w, { ...v, dims: [2.5] }]), 'dimension 2.5'],
      [validHeader([w, { ...v, dims: [-8] }]), 'dimension -8'],
      [validHeader([w, { ...v, dims: ['8'] }]), 'dimension "8"'],
      [validHeader([w, { ...v, byteLength: 9 }]), 'byteLength 9 does not match'],
      [validHeader([w, { ...v, offset: 65 }]), 'offset 65'],
      [validHeader([w, { ...v, offset: -64 }]), 'offset -64'],
      [validHeader([w, { ...v, offset: '64' }]), 'offset "64"'],
      [validHeader([w, { ...v, offset: 128 }]), 'runs past the end of the data section'],
      [validHeader([w, { ...v, offset: 2 ** 40 }]), 'runs past the end'],
      [validHeader([w, { ...v, offset: 2 ** 60 }]), 'not a non-negative multiple of 64'],
      [validHeader([w, { ...v, offset: 0 }]), "overlaps tensor 'w'"],
      [validHeader([w, { ...v, checksum: -1 }]), 'checksum -1'],
      [validHeader([w, { ...v, checksum: (v.checksum ^ 1) >>> 0 }]), "checksum mismatch for tensor 'v'"],
      [validHeader([w, { ...v, params: 3 }]), 'params is not a JSON object'],
      [validHeader([w, v]), 'the data section holds 128 bytes but the tensor table describes 72', data],
      [validHeader([w]), 'the data section holds 72 bytes but the tensor table describes 16'],
    ];
    for (const [header, message, payload] of cases) {
      expect(() => decodeKilnFile(craft(header, payload ?? data.subarray(0, 72)))).toThrow(corrupt(message));
    }
    const bad = craft(validHeader());
    bad[0] = 0x4a;
    expect(() => decodeKilnFile(bad)).toThrow(corrupt("does not start with 'KILN'"));
    expect(() => decodeKilnFile(craft(validHeader(), undefined, (view) => view.setUint32(4, 2, true)))).toThrow(corrupt('format version 2'));
    const badUtf8 = craft('{"format":"kiln"   }');
    badUtf8[30] = 0xff;
    new DataView(badUtf8.buffer).setUint32(12, zlib.crc32(badUtf8.subarray(16, 16 + 20)), true);
    expect(() => decodeKilnFile(badUtf8)).toThrow(corrupt('not valid UTF-8'));
  });

  it('validates what it writes', () => {
    const t = new Tensor('float32', [1, 2]);
    const encode = (c: unknown, o?: unknown) => () => encodeKilnFile(c as KilnFileContents, o as never);
    expect(encode(undefined)).toThrow(TypeError);
    expect(encode({ model: {}, tensors: { w: t } })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map([['', t]]) })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map([['w', new Float32Array(2)]]) })).toThrow(TypeError);
    expect(encode({ model: { p: Number.NaN }, tensors: new Map() })).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringContaining('contents.model.p') }));
    expect(encode({ model: { f: () => 1 }, tensors: new Map() })).toThrow(TypeError);
    expect(encode({ model: [undefined], tensors: new Map() })).toThrow(TypeError);
    expect(encode({ model: { big: 1n }, tensors: new Map() })).toThrow(TypeError);
    expect(encode({ model: { d: new Date() }, tensors: new Map() })).toThrow(TypeError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(encode({ model: cycle, tensors: new Map() })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map(), metadata: [] })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map([['w', t]]), tensorParams: new Map([['v', {}]]) })).toThrow(RangeError);
    expect(encode({ model: {}, tensors: new Map([['w', t]]), tensorParams: new Map([['w', 3]]) })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map() }, { createdAt: new Date(Number.NaN) })).toThrow(TypeError);
    expect(encode({ model: {}, tensors: new Map() }, { producer: 1 })).toThrow(TypeError);
    // Properties set to undefined are dropped, as JSON.stringify does; shared (non-cyclic) objects are fine.
    const shared = { a: 1 };
    expect(decodeKilnFile(encodeKilnFile({ model: { x: undefined, s: [shared, shared] }, tensors: new Map() })).model).toEqual({ s: [shared, shared] });
    expect(() => decodeKilnFile('x' as never)).toThrow(TypeError);
    return expect(readKilnFile(3 as never)).rejects.toThrow(TypeError);
  });

  it('crc32 matches zlib, with and without zlib.crc32', () => {
    expect(crc32Portable(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Portable(new Uint8Array(0))).toBe(0);
    const rng = new Rng(5);
    for (const n of [1, 3, 64, 257, 4099]) {
      const data = new Uint8Array(n).map(() => rng.int(256));
      expect(crc32Portable(data)).toBe(zlib.crc32(data));
      expect(crc32(data)).toBe(zlib.crc32(data));
    }
  });
});
