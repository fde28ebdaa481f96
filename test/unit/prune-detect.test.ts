/**
 * detectPattern reads a weight's pattern from its zeros: each pattern Kiln prunes to is
 * recognised as itself (the most specific one first), and random zeros are never taken for a
 * structured pattern.
 */
import { describe, expect, it } from 'vitest';

import { seedCNN } from '../../src/nn/models.js';
import { detectPattern } from '../../src/prune/detect.js';
import { Pruner } from '../../src/prune/pruner.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(3);
/** [outputs, reduction] of non-zero random values. */
const dense = (outputs: number, reduction: number): Float32Array => Float32Array.from({ length: outputs * reduction }, () => 0.1 + rng.uniform(0, 1));

describe('detectPattern', () => {
  it('dense, filter, N:M, blocks, unstructured', () => {
    expect(detectPattern(dense(8, 16), 8, 16)).toBe('dense');

    const filter = dense(8, 16);
    for (const o of [1, 4, 6]) filter.fill(0, o * 16, (o + 1) * 16);
    expect(detectPattern(filter, 8, 16)).toBe('filter');

    const nm = (n: number, m: number): Float32Array => {
      const w = dense(8, 16);
      // Zero m - n of each group of m, at varying positions.
      for (let g = 0; g < w.length / m; g++) for (let j = 0; j < m - n; j++) w[g * m + ((g + j) % m)] = 0;
      return w;
    };
    expect(detectPattern(nm(2, 4), 8, 16)).toBe('2:4');
    expect(detectPattern(nm(1, 4), 8, 16)).toBe('1:4');
    expect(detectPattern(nm(4, 8), 8, 16)).toBe('4:8');

    const blocks = (rows: number, cols: number): Float32Array => {
      const w = dense(16, 16);
      for (let r0 = 0; r0 < 16; r0 += rows) {
        for (let c0 = 0; c0 < 16; c0 += cols) {
          if (rng.uniform(0, 1) < 0.5) continue;
          for (let r = r0; r < r0 + rows; r++) for (let c = c0; c < c0 + cols; c++) w[r * 16 + c] = 0;
        }
      }
      return w;
    };
    expect(detectPattern(blocks(8, 1), 16, 16)).toBe('block8x1');
    expect(detectPattern(blocks(4, 1), 16, 16)).toBe('block4x1');
    expect(detectPattern(blocks(1, 4), 16, 16)).toBe('block1x4');
  });

  it('random zeros at 50%, 90% and 97% are unstructured (not taken for N:M or blocks by chance)', () => {
    for (const s of [0.5, 0.9, 0.97]) {
      const w = dense(64, 64);
      // Exactly round(s * size) zeros at random positions.
      const order = Array.from({ length: w.length }, (_, i) => i).sort(() => rng.uniform(-1, 1));
      for (const i of order.slice(0, Math.round(s * w.length))) w[i] = 0;
      expect(detectPattern(w, 64, 64), String(s)).toBe('unstructured');
    }
  });

  it("a conv pruned by Kiln's pruner reads back as its pattern (units over input channels at one kernel position), not as the OIHW memory order", () => {
    for (const pattern of ['block1x4', '2:4', 'block4x1']) {
      const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.5, seed: 4 });
      new Pruner(net, { pattern, layers: ['3'] }).update(pattern === '2:4' ? 0.5 : 0.8);
      const w = net.parameters().find((p) => p.name === '3.weight')!.value;
      const [outputs, channels, kh, kw] = w.dims;
      expect(detectPattern(w.data, outputs, channels * kh * kw, kh * kw), pattern).toBe(pattern);
      if (pattern !== 'block4x1') expect(detectPattern(w.data, outputs, channels * kh * kw), pattern).toBe('unstructured');
    }
  });
});
