import { describe, expect, it } from 'vitest';

import { DataLoader, synthetic } from '../../src/data/index.js';
import type { Batch, Dataset } from '../../src/data/index.js';

/** n images of shape [c, h, w] whose every pixel holds the image's index; label = index % k. */
function indexed(n: number, shape: [number, number, number] = [1, 2, 2], k = 3): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    images.fill(i, i * size, (i + 1) * size);
    labels[i] = i % k;
  }
  return { name: 'indexed', images, labels, length: n, imageShape: shape, numClasses: k };
}

/** The image index each batch row came from, read back from the pixels, after checking the batch. */
function rows(batch: Batch, set: Dataset): number[] {
  const [c, h, w] = set.imageShape;
  const size = c * h * w;
  const n = batch.labels.length;
  expect(batch.input.dims).toEqual([n, c, h, w]);
  expect(batch.indices?.length).toBe(n);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = batch.input.data[i * size];
    for (let j = 0; j < size; j++) if (batch.input.data[i * size + j] !== id) throw new Error(`row ${i} mixes images`);
    expect(batch.indices?.[i]).toBe(id);
    expect(batch.labels[i]).toBe(set.labels[id]);
    out.push(id);
  }
  return out;
}

function epochOrder(loader: DataLoader, set: Dataset): number[] {
  return [...loader].flatMap((b) => rows(b, set));
}

describe('DataLoader', () => {
  it('visits every image exactly once per epoch, in batches of batchSize', () => {
    const set = indexed(23);
    const loader = new DataLoader(set, { batchSize: 5, seed: 7 });
    expect(loader.length).toBe(5);
    for (let epoch = 0; epoch < 3; epoch++) {
      const batches = [...loader];
      expect(batches.map((b) => b.labels.length)).toEqual([5, 5, 5, 5, 3]);
      const seen = batches.flatMap((b) => rows(b, set));
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    }
    expect(loader.epochsStarted).toBe(3);
  });

  it('drops the short last batch with dropLast', () => {
    const set = indexed(23);
    const loader = new DataLoader(set, { batchSize: 5, dropLast: true, shuffle: false });
    expect(loader.length).toBe(4);
    expect(epochOrder(loader, set)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(new DataLoader(set, { batchSize: 24, dropLast: true }).length).toBe(0);
    expect([...new DataLoader(set, { batchSize: 24, dropLast: true })]).toEqual([]);
    const whole = new DataLoader(set, { batchSize: 24 });
    expect(whole.length).toBe(1);
    expect([...whole][0].labels.length).toBe(23);
    expect(new DataLoader(indexed(20), { batchSize: 5, dropLast: true }).length).toBe(4);
    expect(new DataLoader(indexed(0), { batchSize: 5 }).length).toBe(0);
  });

  it('keeps the data set order without shuffle', () => {
    const set = indexed(11);
    const loader = new DataLoader(set, { batchSize: 4, shuffle: false });
    expect(epochOrder(loader, set)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect(epochOrder(loader, set)).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });

  it('reshuffles every epoch, reproducibly from the seed', () => {
    const set = indexed(50);
    const a = new DataLoader(set, { batchSize: 8, seed: 3 });
    const ordersA = [0, 1, 2, 3].map(() => epochOrder(a, set));
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) expect(ordersA[i]).not.toEqual(ordersA[j]);
    expect(ordersA[0]).not.toEqual(Array.from({ length: 50 }, (_, i) => i));

    const b = new DataLoader(set, { batchSize: 8, seed: 3 });
    expect([0, 1, 2, 3].map(() => epochOrder(b, set))).toEqual(ordersA);
    // Any epoch can be replayed on its own, and order(k) is what it visits.
    expect([...a.epoch(2)].flatMap((x) => rows(x, set))).toEqual(ordersA[2]);
    expect(Array.from(a.order(1))).toEqual(ordersA[1]);
    // Batch size does not change the visiting order.
    expect(epochOrder(new DataLoader(set, { batchSize: 3, seed: 3 }), set)).toEqual(ordersA[0]);

    const c = new DataLoader(set, { batchSize: 8, seed: 4 });
    expect(epochOrder(c, set)).not.toEqual(ordersA[0]);
  });

  it('copies each batch into fresh arrays unless reuseBuffers', () => {
    const set = indexed(10);
    const fresh = [...new DataLoader(set, { batchSize: 4, shuffle: false })];
    expect(fresh[0].input.data.buffer).not.toBe(fresh[1].input.data.buffer);
    expect(fresh[0].input.data[0]).toBe(0);
    set.images.fill(99);
    expect(fresh[0].input.data[0]).toBe(0);

    const set2 = indexed(10);
    const shared = new DataLoader(set2, { batchSize: 4, seed: 1, reuseBuffers: true, augment: { maxShift: 0 } });
    const seen: number[] = [];
    let buffer: ArrayBufferLike | undefined;
    for (const batch of shared) {
      seen.push(...rows(batch, set2));
      buffer ??= batch.input.data.buffer;
      expect(batch.input.data.buffer).toBe(buffer);
    }
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  describe('augment', () => {
    // One 1x3x4 image with distinct values: row-major 1..12.
    const image: Dataset = {
      name: 'tiny',
      images: Float32Array.from({ length: 12 }, (_, i) => i + 1),
      labels: new Int32Array([0]),
      length: 1,
      imageShape: [1, 3, 4],
      numClasses: 1,
    };
    const grid = (data: Float32Array): number[][] => [0, 1, 2].map((y) => Array.from(data.subarray(y * 4, y * 4 + 4)));

    /** Naive reference: out[y][x] = in[y - dy][flip ? 3 - (x - dx) : x - dx] inside the image, else 0. */
    function shifted(dy: number, dx: number, flip: boolean): number[][] {
      return [0, 1, 2].map((y) =>
        [0, 1, 2, 3].map((x) => {
          const sy = y - dy;
          const sx = x - dx;
          if (sy < 0 || sy > 2 || sx < 0 || sx > 3) return 0;
          return image.images[sy * 4 + (flip ? 3 - sx : sx)];
        }),
      );
    }

    it('matches hand-worked shifts', () => {
      expect(shifted(1, -1, false)).toEqual([
        [0, 0, 0, 0],
        [2, 3, 4, 0],
        [6, 7, 8, 0],
      ]);
      expect(shifted(-1, 2, false)).toEqual([
        [0, 0, 5, 6],
        [0, 0, 9, 10],
        [0, 0, 0, 0],
      ]);
      expect(shifted(0, 1, true)).toEqual([
        [0, 4, 3, 2],
        [0, 8, 7, 6],
        [0, 12, 11, 10],
      ]);
    });

    it('applies random shifts in [-maxShift, maxShift] with zero fill, covering the range', () => {
      const loader = new DataLoader(image, { batchSize: 1, seed: 5, augment: { maxShift: 2 } });
      const seen = new Set<string>();
      for (let epoch = 0; epoch < 300; epoch++) {
        const [batch] = [...loader];
        const out = grid(batch.input.data);
        const matches: string[] = [];
        for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) if (JSON.stringify(shifted(dy, dx, false)) === JSON.stringify(out)) matches.push(`${dy},${dx}`);
        // Shifts of 3+ rows would blank the image and still match none: exactly one shift fits.
        expect(matches).toHaveLength(1);
        seen.add(matches[0]);
      }
      expect(seen.size).toBe(25);
    });

    it('flips about half the images with horizontalFlip', () => {
      const loader = new DataLoader(image, { batchSize: 1, seed: 2, augment: { maxShift: 1, horizontalFlip: true } });
      let flipped = 0;
      for (let epoch = 0; epoch < 200; epoch++) {
        const out = JSON.stringify(grid([...loader][0].input.data));
        const fits = (flip: boolean): boolean =>
          [-1, 0, 1].some((dy) => [-1, 0, 1].some((dx) => JSON.stringify(shifted(dy, dx, flip)) === out));
        expect(fits(false) !== fits(true)).toBe(true);
        if (fits(true)) flipped++;
      }
      expect(flipped).toBeGreaterThan(60);
      expect(flipped).toBeLessThan(140);
    });

    it('is reproducible per seed and epoch, leaves the data set untouched, and maxShift 0 is a copy', () => {
      const set = synthetic({ count: 40, imageShape: [2, 6, 5], numClasses: 4, seed: 1 });
      const before = set.images.slice();
      const run = (seed: number): Float32Array[] => [...new DataLoader(set, { batchSize: 16, seed, augment: { maxShift: 2 } })].map((b) => b.input.data);
      expect(run(1)).toEqual(run(1));
      expect(run(1)).not.toEqual(run(2));
      expect(set.images).toEqual(before);
      const plain = [...new DataLoader(set, { batchSize: 16, seed: 1 })].map((b) => b.input.data);
      const zero = [...new DataLoader(set, { batchSize: 16, seed: 1, augment: { maxShift: 0 } })].map((b) => b.input.data);
      expect(zero).toEqual(plain);
    });

    it('writes every element even into a reused buffer (sentinel check)', () => {
      const set = synthetic({ count: 9, imageShape: [3, 4, 4], numClasses: 3, seed: 1, signal: 1 });
      const loader = new DataLoader(set, { batchSize: 3, seed: 1, reuseBuffers: true, augment: { maxShift: 3 } });
      for (let epoch = 0; epoch < 20; epoch++) {
        for (const batch of loader) {
          for (const v of batch.input.data) if (!(v === 0 || v === 1)) throw new Error(`stale value ${v}`);
          batch.input.data.fill(Number.NaN);
        }
      }
    });
  });

  it('rejects bad arguments', () => {
    const set = indexed(4);
    const make = (options: unknown, dataset: unknown = set) => () => new DataLoader(dataset as Dataset, options as never);
    expect(make({ batchSize: 0 })).toThrow(RangeError);
    expect(make({ batchSize: 1.5 })).toThrow(TypeError);
    expect(make({})).toThrow(TypeError);
    expect(make(undefined)).toThrow(TypeError);
    expect(make({ batchSize: 2, shuffle: 'yes' })).toThrow(TypeError);
    expect(make({ batchSize: 2, dropLast: 1 })).toThrow(TypeError);
    expect(make({ batchSize: 2, seed: -1 })).toThrow(RangeError);
    expect(make({ batchSize: 2, augment: { maxShift: -1 } })).toThrow(RangeError);
    expect(make({ batchSize: 2, augment: { maxShift: 3 } })).toThrow(RangeError);
    expect(make({ batchSize: 2, augment: {} })).toThrow(TypeError);
    expect(make({ batchSize: 2, augment: { maxShift: 1, horizontalFlip: 1 } })).toThrow(TypeError);
    expect(make({ batchSize: 2 }, null)).toThrow(TypeError);
    expect(make({ batchSize: 2 }, { ...set, images: [1, 2] })).toThrow(TypeError);
    expect(make({ batchSize: 2 }, { ...set, length: 5 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
    expect(make({ batchSize: 2 }, { ...set, labels: new Int32Array([0, 1, 2, 3]), numClasses: 3 })).toThrow(RangeError);
    expect(make({ batchSize: 2 }, { ...set, labels: new Int32Array([0, -1, 0, 0]) })).toThrow(RangeError);
    const loader = new DataLoader(set, { batchSize: 2 });
    expect(() => loader.epoch(-1)).toThrow(RangeError);
    expect(() => loader.order(0.5)).toThrow(TypeError);
  });
});
