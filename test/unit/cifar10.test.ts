import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CIFAR10_RECORD_BYTES, CIFAR10_STATS, cifar10, readCifar10Batch } from '../../src/data/index.js';
import { Rng } from '../../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-cifar-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** `count` random records in the official layout: label byte, then R, G, B planes of 32x32 bytes. */
function records(count: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const bytes = new Uint8Array(count * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < count; r++) {
    bytes[r * CIFAR10_RECORD_BYTES] = rng.int(10);
    for (let j = 1; j < CIFAR10_RECORD_BYTES; j++) bytes[r * CIFAR10_RECORD_BYTES + j] = rng.int(256);
  }
  return bytes;
}

/** A folder with data_batch_1..5 (b + 1 records each) and test_batch (2 records). */
function writeSet(dir: string): Map<string, Uint8Array> {
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, Uint8Array>();
  for (let b = 1; b <= 5; b++) files.set(`data_batch_${b}.bin`, records(b + 1, b));
  files.set('test_batch.bin', records(2, 99));
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  return files;
}

/** Naive decoding of one record's pixel (c, y, x), straight from the format description. */
function pixel(file: Uint8Array, record: number, c: number, y: number, x: number): number {
  return file[record * CIFAR10_RECORD_BYTES + 1 + c * 1024 + y * 32 + x];
}

describe('CIFAR-10 binary reader', () => {
  const dir = join(root, 'set');
  const files = writeSet(dir);

  it('readCifar10Batch decodes labels and CHW pixels / 255', () => {
    const file = files.get('data_batch_3.bin')!;
    const set = readCifar10Batch(join(dir, 'data_batch_3.bin'));
    expect(set.name).toBe('data_batch_3.bin');
    expect(set.length).toBe(4);
    expect(set.imageShape).toEqual([3, 32, 32]);
    expect(set.numClasses).toBe(10);
    expect(set.images.length).toBe(4 * 3072);
    for (let r = 0; r < 4; r++) {
      expect(set.labels[r]).toBe(file[r * CIFAR10_RECORD_BYTES]);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const got = set.images[((r * 3 + c) * 32 + y) * 32 + x];
            if (got !== Math.fround(pixel(file, r, c, y, x) / 255)) throw new Error(`record ${r} pixel ${c},${y},${x}: ${got}`);
          }
        }
      }
    }
  });

  it('cifar10 reads all five training files in order, and the test file', () => {
    const { train, test } = cifar10(dir);
    expect(train.name).toBe('cifar10-train');
    expect(train.length).toBe(2 + 3 + 4 + 5 + 6);
    expect(test.length).toBe(2);
    const expectedLabels = [1, 2, 3, 4, 5].flatMap((b) => {
      const f = files.get(`data_batch_${b}.bin`)!;
      return Array.from({ length: b + 1 }, (_, r) => f[r * CIFAR10_RECORD_BYTES]);
    });
    expect(Array.from(train.labels)).toEqual(expectedLabels);
    // First image of batch 2 sits after the 2 images of batch 1.
    expect(train.images[2 * 3072 + 1024 + 5]).toBe(Math.fround(pixel(files.get('data_batch_2.bin')!, 0, 1, 0, 5) / 255));
    expect(test.labels[1]).toBe(files.get('test_batch.bin')![CIFAR10_RECORD_BYTES]);
  });

  it('reads only the requested batches', () => {
    const { train } = cifar10(dir, { batches: [4, 2] });
    expect(train.length).toBe(5 + 3);
    expect(train.labels[0]).toBe(files.get('data_batch_4.bin')![0]);
    expect(train.labels[5]).toBe(files.get('data_batch_2.bin')![0]);
  });

  it('normalises per channel', () => {
    const file = files.get('test_batch.bin')!;
    const plain = readCifar10Batch(join(dir, 'test_batch.bin'));
    const standard = readCifar10Batch(join(dir, 'test_batch.bin'), { normalize: true });
    const custom = readCifar10Batch(join(dir, 'test_batch.bin'), { normalize: { mean: [0.5, 0.25, 0], std: [0.5, 2, 0.25] } });
    for (let c = 0; c < 3; c++) {
      for (const j of [0, 17, 1023]) {
        const v = pixel(file, 1, c, Math.floor(j / 32), j % 32);
        const at = 3072 + c * 1024 + j;
        expect(plain.images[at]).toBe(Math.fround(v / 255));
        expect(standard.images[at]).toBeCloseTo((v / 255 - CIFAR10_STATS.mean[c]) / CIFAR10_STATS.std[c], 5);
        expect(custom.images[at]).toBeCloseTo((v / 255 - [0.5, 0.25, 0][c]) / [0.5, 2, 0.25][c], 5);
      }
    }
  });

  it('finds the tarball folder cifar-10-batches-bin inside dir', () => {
    const outer = join(root, 'outer');
    writeSet(join(outer, 'cifar-10-batches-bin'));
    expect(cifar10(outer, { batches: [1] }).train.length).toBe(2);
  });

  it('reports missing and malformed files as ERR_KILN_DATASET', () => {
    const dataset = (message: string) => expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_DATASET', message: expect.stringContaining(message) });
    expect(() => cifar10(join(root, 'absent'))).toThrow(dataset(join(root, 'absent')));
    expect(() => readCifar10Batch(join(root, 'absent.bin'))).toThrow(dataset('absent.bin'));

    const broken = join(root, 'broken');
    writeSet(broken);
    rmSync(join(broken, 'data_batch_5.bin'));
    expect(() => cifar10(broken)).toThrow(dataset('data_batch_5.bin'));
    expect(cifar10(broken, { batches: [1, 2, 3, 4] }).train.length).toBe(14);

    const write = (name: string, bytes: Uint8Array): string => {
      writeFileSync(join(root, name), bytes);
      return join(root, name);
    };
    expect(() => readCifar10Batch(write('short.bin', records(2, 1).subarray(0, 2 * CIFAR10_RECORD_BYTES - 1)))).toThrow(dataset('multiple of 3073'));
    expect(() => readCifar10Batch(write('empty.bin', new Uint8Array(0)))).toThrow(dataset('holds 0'));
    const badLabel = records(3, 1);
    badLabel[2 * CIFAR10_RECORD_BYTES] = 10;
    expect(() => readCifar10Batch(write('label.bin', badLabel))).toThrow(dataset('label 10 of record 2'));
  });

  it('rejects bad options', () => {
    expect(() => cifar10(dir, { batches: [0] })).toThrow(RangeError);
    expect(() => cifar10(dir, { batches: [6] })).toThrow(RangeError);
    expect(() => cifar10(dir, { batches: [1, 1] })).toThrow(RangeError);
    expect(() => cifar10(dir, { batches: [] })).toThrow(TypeError);
    expect(() => cifar10(dir, { normalize: { mean: [0, 0], std: [1, 1, 1] } })).toThrow(TypeError);
    expect(() => cifar10(dir, { normalize: { mean: [0, 0, 0], std: [1, 0, 1] } })).toThrow(RangeError);
    expect(() => cifar10(dir, { normalize: 'yes' as never })).toThrow(TypeError);
    expect(() => cifar10(3 as never)).toThrow(TypeError);
    expect(() => readCifar10Batch(join(dir, 'test_batch.bin'), { name: 5 as never })).toThrow(TypeError);
  });
});
