import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { mnist, synthetic } from '../../src/data/index.js';
import type { Dataset } from '../../src/data/index.js';

const IMAGE = 784;

/** Every digit image of the package, read independently of src/data/mnist.ts: the oracle. */
function packageDigits(): { keys: number[]; labels: number[] } {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  const keys: number[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const data = (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    for (let at = 0; at < data.length; at += IMAGE) {
      keys.push(imageKey(Float32Array.from(data.slice(at, at + IMAGE))));
      labels.push(d);
    }
  }
  return { keys, labels };
}

function imageKey(pixels: Float32Array): number {
  return crc32(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength));
}

function keysOf(set: Dataset): number[] {
  const keys: number[] = [];
  for (let i = 0; i < set.length; i++) keys.push(imageKey(set.images.subarray(i * IMAGE, (i + 1) * IMAGE)));
  return keys;
}

/** Bitwise equality of two typed arrays (vitest's deep equality is slow on millions of elements). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function classCounts(labels: ArrayLike<number>, k = 10): number[] {
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

describe('mnist', () => {
  const { train, test } = mnist();
  const oracle = packageDigits();

  it('splits the 10,000 package digits 8,000 / 2,000 as [1, 28, 28] images in [0, 1]', () => {
    expect(oracle.keys.length).toBe(10_000);
    for (const [set, n, name] of [[train, 8000, 'mnist-train'], [test, 2000, 'mnist-test']] as const) {
      expect(set.name).toBe(name);
      expect(set.length).toBe(n);
      expect(set.imageShape).toEqual([1, 28, 28]);
      expect(set.numClasses).toBe(10);
      expect(set.images.length).toBe(n * IMAGE);
      expect(set.labels.length).toBe(n);
      let min = Infinity;
      let max = -Infinity;
      for (const v of set.images) {
        if (!(v >= 0 && v <= 1)) throw new Error(`pixel ${v} out of [0, 1]`);
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
    }
  });

  it('is a partition of the package digits with the right label on every image', () => {
    const labelByKey = new Map<number, number>();
    oracle.keys.forEach((k, i) => labelByKey.set(k, oracle.labels[i]));
    // Distinct keys make the multiset comparison below a real partition check.
    expect(labelByKey.size).toBeGreaterThan(9990);
    const trainKeys = keysOf(train);
    const testKeys = keysOf(test);
    expect([...trainKeys, ...testKeys].sort((a, b) => a - b)).toEqual([...oracle.keys].sort((a, b) => a - b));
    expect(trainKeys.filter((k, i) => train.labels[i] !== labelByKey.get(k))).toEqual([]);
    expect(testKeys.filter((k, i) => test.labels[i] !== labelByKey.get(k))).toEqual([]);
  });

  it('keeps each class 80/20 (stratified)', () => {
    const all = classCounts(oracle.labels);
    const trainCounts = classCounts(train.labels);
    const testCounts = classCounts(test.labels);
    for (let c = 0; c < 10; c++) {
      expect(trainCounts[c] + testCounts[c]).toBe(all[c]);
      expect(Math.abs(testCounts[c] - 0.2 * all[c])).toBeLessThanOrEqual(1);
    }
  });

  it('is deterministic per seed and differs across seeds; the order is shuffled', () => {
    const again = mnist({ seed: 1 });
    expect(sameBytes(again.train.images, train.images)).toBe(true);
    expect(sameBytes(again.test.images, test.images)).toBe(true);
    expect(sameBytes(again.train.labels, train.labels)).toBe(true);
    expect(sameBytes(again.test.labels, test.labels)).toBe(true);
    const other = mnist({ seed: 2 });
    expect(other.train.length).toBe(8000);
    expect(keysOf(other.test).sort()).not.toEqual(keysOf(test).sort());
    // Not sorted by class: some neighbours differ in label.
    let changes = 0;
    for (let i = 1; i < train.length; i++) if (train.labels[i] !== train.labels[i - 1]) changes++;
    expect(changes).toBeGreaterThan(1000);
  });

  it('honours testFraction', () => {
    const half = mnist({ testFraction: 0.5, seed: 3 });
    expect(half.train.length).toBe(5000);
    expect(half.test.length).toBe(5000);
    const small = mnist({ testFraction: 0.01 });
    expect(small.test.length).toBe(100);
    for (const n of classCounts(small.test.labels)) expect(n).toBeGreaterThanOrEqual(9);
  });

  it('rejects bad options', () => {
    expect(() => mnist({ seed: -1 })).toThrow(RangeError);
    expect(() => mnist({ seed: 1.5 })).toThrow(TypeError);
    expect(() => mnist({ testFraction: 0 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => mnist({ testFraction: 1 })).toThrow(RangeError);
    expect(() => mnist({ testFraction: Number.NaN })).toThrow(RangeError);
    expect(() => mnist('x' as never)).toThrow(TypeError);
    expect(() => mnist({ directory: 3 as never })).toThrow(TypeError);
  });

  describe('with a broken digits folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-mnist-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('names the missing file in an ERR_KILN_DATASET error', () => {
      expect(() => mnist({ directory: join(dir, 'nowhere') })).toThrow(
        expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_DATASET', message: expect.stringContaining(join(dir, 'nowhere', '0.json')) }),
      );
    });

    it('refuses malformed files', () => {
      const write = (d: number, text: string): void => writeFileSync(join(dir, `${d}.json`), text);
      for (let d = 0; d < 10; d++) write(d, JSON.stringify({ data: new Array(IMAGE).fill(0.5) }));
      const ok = mnist({ directory: dir, testFraction: 0.5 });
      expect(ok.train.length + ok.test.length).toBe(10);
      const fresh = (): string => {
        const sub = mkdtempSync(join(dir, 'case-'));
        for (let d = 0; d < 10; d++) writeFileSync(join(sub, `${d}.json`), JSON.stringify({ data: new Array(IMAGE).fill(0.5) }));
        return sub;
      };
      const cases: [string, string][] = [
        ['{"data": [0.5', 'Could not read'],
        ['null', `'data' array`],
        [JSON.stringify({ data: new Array(IMAGE - 1).fill(0) }), `'data' array`],
        [JSON.stringify({ data: [...new Array(IMAGE - 1).fill(0), 2] }), 'pixel values in [0, 1]'],
        [JSON.stringify({ data: [...new Array(IMAGE - 1).fill(0), 'x'] }), 'pixel values in [0, 1]'],
      ];
      for (const [text, message] of cases) {
        const sub = fresh();
        writeFileSync(join(sub, '7.json'), text);
        expect(() => mnist({ directory: sub })).toThrow(expect.objectContaining({ code: 'ERR_KILN_DATASET', message: expect.stringContaining(message) }));
      }
    });
  });
});

describe('synthetic', () => {
  it('makes balanced, seeded images in [0, 1] of the requested shape', () => {
    const set = synthetic({ count: 103, imageShape: [3, 5, 7], numClasses: 10, seed: 4 });
    expect(set.length).toBe(103);
    expect(set.imageShape).toEqual([3, 5, 7]);
    expect(set.images.length).toBe(103 * 105);
    for (const v of set.images) if (!(v >= 0 && v <= 1)) throw new Error(`pixel ${v}`);
    const counts = classCounts(set.labels);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(synthetic({ count: 103, imageShape: [3, 5, 7], numClasses: 10, seed: 4 })).toEqual(set);
    expect(synthetic({ count: 103, imageShape: [3, 5, 7], numClasses: 10, seed: 5 }).images).not.toEqual(set.images);
  });

  it('carries a class signal a nearest-mean classifier learns, and none with signal 0', () => {
    const accuracy = (signal: number): number => {
      const fit = synthetic({ count: 400, imageShape: [1, 8, 8], numClasses: 4, seed: 1, signal });
      const check = synthetic({ count: 400, imageShape: [1, 8, 8], numClasses: 4, seed: 1, signal, name: 'same patterns' });
      // Same seed → same class patterns; the held-out half of `check` is scored against means of `fit`.
      const means = Array.from({ length: 4 }, () => new Float64Array(64));
      const counts = classCounts(fit.labels, 4);
      for (let i = 0; i < 200; i++) for (let j = 0; j < 64; j++) means[fit.labels[i]][j] += fit.images[i * 64 + j] / counts[fit.labels[i]];
      let right = 0;
      for (let i = 200; i < 400; i++) {
        let best = -1;
        let bestDist = Infinity;
        for (let c = 0; c < 4; c++) {
          let d = 0;
          for (let j = 0; j < 64; j++) d += (check.images[i * 64 + j] - means[c][j]) ** 2;
          if (d < bestDist) [best, bestDist] = [c, d];
        }
        if (best === check.labels[i]) right++;
      }
      return right / 200;
    };
    expect(accuracy(0.5)).toBeGreaterThan(0.95);
    expect(accuracy(0)).toBeLessThan(0.45);
  });

  it('with signal 1 gives one exact image per class', () => {
    const set = synthetic({ count: 20, imageShape: [1, 2, 3], numClasses: 2, seed: 9, signal: 1 });
    const first = [0, 1].map((c) => set.labels.indexOf(c));
    for (let i = 0; i < 20; i++) {
      const ref = first[set.labels[i]];
      expect(set.images.subarray(i * 6, i * 6 + 6)).toEqual(set.images.subarray(ref * 6, ref * 6 + 6));
    }
    for (const v of set.images) expect(v === 0 || v === 1).toBe(true);
  });

  it('rejects bad options', () => {
    const good = { count: 4, imageShape: [1, 2, 2], numClasses: 2, seed: 0 };
    expect(() => synthetic({ ...good, count: 0 })).toThrow(RangeError);
    expect(() => synthetic({ ...good, imageShape: [1, 2] })).toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
    expect(() => synthetic({ ...good, imageShape: [1, 0, 2] })).toThrow(RangeError);
    expect(() => synthetic({ ...good, numClasses: 1.5 })).toThrow(TypeError);
    expect(() => synthetic({ ...good, signal: 2 })).toThrow(RangeError);
    expect(() => synthetic({ ...good, count: 2 ** 20, imageShape: [3, 1024, 1024] })).toThrow(RangeError);
    expect(() => synthetic(undefined as never)).toThrow(TypeError);
  });
});
