/**
 * Pruning masks and criteria: every criterion and pattern gives exactly the sparsity and the
 * structure asked (N:M groups, whole blocks, whole filters), the lowest-scored units go first,
 * masks refuse another parameter, layer choice and bad input give clear errors.
 */
import { describe, expect, it } from 'vitest';

import { BatchNorm2d } from '../../src/nn/layers/batch-norm2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { prune } from '../../src/prune/prune.js';
import { Mask } from '../../src/prune/mask.js';
import { Pruner } from '../../src/prune/pruner.js';
import type { PrunerOptions } from '../../src/prune/pruner.js';
import { prunableLayers, selectLayers } from '../../src/prune/layers.js';
import type { PrunableLayer } from '../../src/prune/layers.js';

/** Half-width SeedCNN: conv 1->16, conv 16->32 (reduction 144), fc 800->64, fc 64->10. */
const net = (seed = 3): Sequential => seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.5, seed });

/** A fresh model pruned one-shot by a Pruner; returns the pruner and copies of the original weights. */
function pruned(options: PrunerOptions, sparsity: number, model = net()) {
  const pruner = new Pruner(model, options);
  const original = pruner.layers.map((l) => l.weight.value.data.slice());
  pruner.update(sparsity);
  return { pruner, original, model };
}

// Groups of `m` input channels at one kernel position of one output, as OIHW indices, written out
// from the dims (not through the pruner's own index helpers): the unit of 1xM blocks and N:M.
// A Linear after a Flatten: its inputs are c * H*W + s (H*W checked against the model in its own test).
function reductionGroups(l: PrunableLayer, m: number): number[][] {
  const dims = l.weight.value.dims;
  const spatial = dims.length === 4 ? dims[2] * dims[3] : l.spatial;
  const [outputs, inputs] = [dims[0], dims.slice(1).reduce((a, b) => a * b, 1)];
  const channels = inputs / spatial;
  const groups: number[][] = [];
  for (let o = 0; o < outputs; o++) {
    for (let s = 0; s < spatial; s++) {
      for (let c0 = 0; c0 < channels; c0 += m) {
        groups.push(Array.from({ length: m }, (_, j) => (o * channels + c0 + j) * spatial + s));
      }
    }
  }
  return groups;
}

const rows = (data: Float32Array, reduction: number): Float32Array[] =>
  Array.from({ length: data.length / reduction }, (_, o) => data.subarray(o * reduction, (o + 1) * reduction));

describe('Mask', () => {
  it('refuses a parameter other than its own, naming both (conv1 mask on conv2)', () => {
    const model = net();
    const [conv1, conv2] = prunableLayers(model);
    const mask = Mask.dense(conv1.weight);
    expect(() => mask.apply(conv2.weight)).toThrow(RangeError);
    try {
      mask.apply(conv2.weight);
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_KILN_SHAPE_MISMATCH');
      expect((err as Error).message).toContain("'0.weight' [16, 1, 3, 3]");
      expect((err as Error).message).toContain("'3.weight' [32, 16, 3, 3]");
    }
    // Same shape, other parameter: still refused.
    const twins = new Sequential(new Linear(4, 4), new Linear(4, 4));
    const [a, b] = prunableLayers(twins);
    expect(() => Mask.dense(a.weight).apply(b.weight)).toThrow(/'0.weight'.*'1.weight'/);
    expect(() => new Mask('x', [2, 2], new Uint8Array(3))).toThrow(RangeError);
  });

  it('zeroes exactly the pruned elements', () => {
    const [layer] = prunableLayers(new Sequential(new Linear(3, 2)));
    const keep = Uint8Array.from([1, 0, 1, 0, 0, 1]);
    new Mask(layer.weight.name, [2, 3], keep).apply(layer.weight);
    const w = layer.weight.value.data;
    keep.forEach((k, i) => expect(w[i] === 0).toBe(k === 0));
  });
});

describe('layer choice', () => {
  it('leaves the first Conv2d and the last Linear dense by default; names and predicates override', () => {
    const model = net();
    expect(prunableLayers(model).map((l) => [l.name, l.type, l.reduction])).toEqual([['0', 'Conv2d', 9], ['3', 'Conv2d', 144], ['7', 'Linear', 800], ['9', 'Linear', 64]]);
    expect(selectLayers(model).map((l) => l.name)).toEqual(['3', '7']);
    expect(selectLayers(model, ['9', '0.weight']).map((l) => l.name)).toEqual(['0', '9']);
    expect(selectLayers(model, (l) => l.type === 'Conv2d').map((l) => l.name)).toEqual(['0', '3']);
  });

  it('names an unknown layer and lists the prunable ones', () => {
    expect(() => selectLayers(net(), ['3', 'fc9'])).toThrow(RangeError);
    expect(() => selectLayers(net(), ['fc9'])).toThrow(/'fc9'.*'0' \(Conv2d 16x1x3x3\), '3' \(Conv2d 32x16x3x3\), '7' \(Linear 64x800\), '9' \(Linear 10x64\)/);
    expect(() => selectLayers(net(), () => false)).toThrow(/empty/);
  });
});

describe('criteria', () => {
  it('magnitude: exact per-layer sparsity, and every pruned |w| <= every kept |w| of its layer', () => {
    const { pruner, original } = pruned({ method: 'magnitude' }, 0.7);
    pruner.layers.forEach((l, i) => {
      const n = l.weight.value.data.length;
      expect(pruner.masks[i].zeros).toBe(Math.round(0.7 * n));
      let maxPruned = 0;
      let minKept = Infinity;
      original[i].forEach((w, j) => {
        if (pruner.masks[i].keep[j]) {
          minKept = Math.min(minKept, Math.abs(w));
          expect(l.weight.value.data[j]).toBe(w);
        } else {
          maxPruned = Math.max(maxPruned, Math.abs(w));
          expect(l.weight.value.data[j]).toBe(0);
        }
      });
      expect(maxPruned).toBeLessThanOrEqual(minKept);
    });
  });

  it('random: exact sparsity, the same mask for a seed, another for another seed, not the magnitude one', () => {
    const a = pruned({ method: 'random', seed: 4 }, 0.5).pruner;
    const b = pruned({ method: 'random', seed: 4 }, 0.5).pruner;
    const c = pruned({ method: 'random', seed: 5 }, 0.5).pruner;
    const m = pruned({ method: 'magnitude' }, 0.5).pruner;
    a.masks.forEach((mask, i) => {
      expect(mask.zeros).toBe(Math.round(0.5 * mask.keep.length));
      expect(mask.keep).toEqual(b.masks[i].keep);
      expect(mask.keep).not.toEqual(c.masks[i].keep);
      expect(mask.keep).not.toEqual(m.masks[i].keep);
    });
  });

  it('global: one threshold across layers, exact total sparsity', () => {
    const { pruner, original } = pruned({ method: 'global' }, 0.8);
    const total = pruner.masks.reduce((s, m) => s + m.keep.length, 0);
    expect(pruner.masks.reduce((s, m) => s + m.zeros, 0)).toBe(Math.round(0.8 * total));
    let maxPruned = 0;
    let minKept = Infinity;
    pruner.masks.forEach((m, i) => original[i].forEach((w, j) => (m.keep[j] ? (minKept = Math.min(minKept, Math.abs(w))) : (maxPruned = Math.max(maxPruned, Math.abs(w))))));
    expect(maxPruned).toBeLessThanOrEqual(minKept);
    // The layers end up at different sparsities (otherwise this would be per-layer pruning).
    expect(Math.abs(pruner.masks[0].sparsity - pruner.masks[1].sparsity)).toBeGreaterThan(0.05);
  });

  it('global: per-layer minimum and maximum sparsity hold, the total still exact', () => {
    const free = pruned({ method: 'global' }, 0.9).pruner.masks.map((m) => m.sparsity);
    // The conv (larger weights) is pruned less than 0.5 without limits...
    expect(free[0]).toBeLessThan(0.5);
    const { pruner } = pruned({ method: 'global', minSparsity: 0.5, maxSparsity: 0.95 }, 0.9);
    const [conv, fc] = pruner.masks;
    expect(conv.zeros).toBe(Math.round(0.5 * conv.keep.length));
    expect(fc.sparsity).toBeLessThanOrEqual(0.95);
    const total = conv.keep.length + fc.keep.length;
    expect(conv.zeros + fc.zeros).toBe(Math.round(0.9 * total));
    const capped = pruned({ method: 'global', maxSparsity: 0.85 }, 0.8).pruner;
    capped.masks.forEach((m) => expect(m.sparsity).toBeLessThanOrEqual(0.85));
  });

  for (const method of ['l1', 'l2'] as const) {
    it(`${method}: whole output filters (and their biases) pruned, the smallest norms first`, () => {
      const { pruner, original } = pruned({ method }, 0.5);
      expect(pruner.pattern.name).toBe('filter');
      pruner.layers.forEach((l, i) => {
        const norm = (r: Float32Array): number => (method === 'l1' ? r.reduce((s, w) => s + Math.abs(w), 0) : Math.sqrt(r.reduce((s, w) => s + w * w, 0)));
        const zeroRows: number[] = [];
        const keptNorms: number[] = [];
        const prunedNorms: number[] = [];
        rows(l.weight.value.data, l.reduction).forEach((r, o) => {
          const zeros = r.filter((w) => w === 0).length;
          expect(zeros === 0 || zeros === r.length).toBe(true);
          if (zeros === r.length) zeroRows.push(o);
          (zeros ? prunedNorms : keptNorms).push(norm(rows(original[i], l.reduction)[o]));
        });
        expect(zeroRows.length).toBe(l.outputs / 2);
        for (const o of zeroRows) expect(l.bias!.value.data[o]).toBe(0);
        expect(Math.max(...prunedNorms)).toBeLessThanOrEqual(Math.min(...keptNorms));
      });
    });
  }

  it('bn: prunes the filters whose following BatchNorm scale is smallest; refuses layers without one', () => {
    const model = new Sequential(new Conv2d(1, 4, 3, { seed: 1 }), new BatchNorm2d(4), new ReLU(), new Conv2d(4, 8, 3, { seed: 2 }), new BatchNorm2d(8), new ReLU(), new Flatten(), new Linear(8 * 4 * 4, 3, { seed: 3 }));
    const gamma = (model.layers[4] as BatchNorm2d).weight.value.data;
    gamma.set([0.9, -0.05, 0.7, 0.2, -0.6, 0.01, 1.1, 0.3]);
    const pruner = new Pruner(model, { method: 'bn', layers: ['3'] });
    pruner.update(0.5);
    const zeroRows = rows(pruner.layers[0].weight.value.data, 36).map((r, o) => (r.every((w) => w === 0) ? o : -1)).filter((o) => o >= 0);
    expect(zeroRows).toEqual([1, 3, 5, 7]);
    expect(() => new Pruner(model, { method: 'bn', layers: ['7'] })).toThrow(/BatchNorm2d/);
    expect(() => new Pruner(model, { method: 'bn', pattern: '2:4', layers: ['3'] })).toThrow(/'filter'/);
  });

  for (const [n, m] of [[2, 4], [1, 4], [4, 8]]) {
    it(`${n}:${m}: every group of ${m} input channels at one kernel position keeps its ${n} largest`, () => {
      const { pruner, original } = pruned({ pattern: `${n}:${m}` }, 1 - n / m);
      pruner.layers.forEach((l, i) => {
        const w = l.weight.value.data;
        expect(pruner.masks[i].sparsity).toBe(1 - n / m);
        for (const group of reductionGroups(l, m)) {
          expect(group.filter((j) => w[j] !== 0).length).toBeLessThanOrEqual(n);
          const kept = group.filter((j) => pruner.masks[i].keep[j]).map((j) => Math.abs(original[i][j]));
          const dropped = group.filter((j) => !pruner.masks[i].keep[j]).map((j) => Math.abs(original[i][j]));
          expect(kept.length).toBe(n);
          expect(Math.max(...dropped)).toBeLessThanOrEqual(Math.min(...kept));
        }
      });
    });
  }

  it('N:M whose M does not divide the reduction size: RangeError naming the layer', () => {
    const model = new Sequential(new Conv2d(1, 4, 3), new Conv2d(4, 6, 3), new Flatten(), new Linear(6 * 4 * 4, 10), new Linear(10, 2));
    // conv2 has 4 input channels per kernel position: fine for 2:4, not for 4:8; the Linear of 10 inputs fits neither.
    expect(() => new Pruner(model, { pattern: '2:4', layers: ['1'] })).not.toThrow();
    expect(() => new Pruner(model, { pattern: '4:8', layers: ['1'] })).toThrow(/input channel count divisible by M = 8.*'1'.*received 4 \(its input channels/);
    expect(() => new Pruner(model, { pattern: '2:4', layers: ['4'] })).toThrow(RangeError);
  });

  it("a Linear after a Flatten reduces over the flattened map's pixels: spatial = H*W of the map (SeedCNN 28x28: 5x5, 32x32: 6x6)", () => {
    const linears = (h: number) => prunableLayers(seedCNN({ inChannels: 1, height: h, width: h, numClasses: 10 })).filter((l) => l.type === 'Linear').map((l) => l.spatial);
    expect(linears(28)).toEqual([25, 1]);
    expect(linears(32)).toEqual([36, 1]);
    const noShape = new Sequential(new Flatten(), new Linear(12, 2));
    expect(prunableLayers(noShape)[0].spatial).toBe(1);
  });

  it('block1x4: zeros come in whole blocks of 4 input channels at one kernel position of one output, exact count', () => {
    const { pruner } = pruned({ pattern: 'block1x4' }, 0.8);
    expect(pruner.layers.map((l) => [l.type, l.spatial])).toEqual([['Conv2d', 9], ['Linear', 25]]);
    pruner.layers.forEach((l) => {
      const w = l.weight.value.data;
      let zeroBlocks = 0;
      for (const block of reductionGroups(l, 4)) {
        const zeros = block.filter((j) => w[j] === 0).length;
        expect(zeros === 0 || zeros === 4).toBe(true);
        if (zeros === 4) zeroBlocks++;
      }
      expect(zeroBlocks).toBe(Math.round(0.8 * (w.length / 4)));
    });
  });

  for (const h of [4, 8]) {
    it(`block${h}x1: zeros come in whole columns of ${h} consecutive outputs`, () => {
      const { pruner } = pruned({ pattern: `block${h}x1` }, 0.75);
      pruner.layers.forEach((l) => {
        const w = l.weight.value.data;
        let zeroBlocks = 0;
        for (let o = 0; o < l.outputs; o += h) {
          for (let c = 0; c < l.reduction; c++) {
            let zeros = 0;
            for (let r = o; r < o + h; r++) zeros += w[r * l.reduction + c] === 0 ? 1 : 0;
            expect(zeros === 0 || zeros === h).toBe(true);
            if (zeros === h) zeroBlocks++;
          }
        }
        expect(zeroBlocks).toBe(Math.round(0.75 * (w.length / h)));
      });
    });
  }

  it('recomputing at a higher sparsity keeps every pruned weight pruned (random included)', () => {
    for (const method of ['magnitude', 'random', 'global'] as const) {
      const pruner = new Pruner(net(), { method });
      pruner.update(0.3);
      const before = pruner.masks.map((m) => m.keep.slice());
      // Move the weights so a fresh ranking would differ.
      pruner.layers.forEach((l) => l.weight.value.data.forEach((w, i, a) => (a[i] = w === 0 ? 0 : 1 / (1 + i))));
      pruner.update(0.6);
      pruner.masks.forEach((m, i) => before[i].forEach((k, j) => k === 0 && expect(m.keep[j]).toBe(0)));
    }
  });
});

describe('bad input', () => {
  it('sparsity outside [0, 1), unknown layers, N:M mismatches, unknown options', async () => {
    for (const sparsity of [1, -0.1, 1.5, NaN]) {
      const err = await prune(net(), undefined, { sparsity, schedule: 'oneshot', epochs: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect((err as { code: string }).code).toBe('ERR_KILN_INVALID_ARG');
      expect((err as Error).message).toContain('options.sparsity');
    }
    await expect(prune(net(), undefined, { sparsity: 0.5, schedule: 'oneshot', epochs: 0, layers: ['conv9'] })).rejects.toThrow(/'conv9'.*prunable layers are '0'/);
    await expect(prune(net(), undefined, { pattern: '2:4', sparsity: 0.3, schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/options.sparsity/);
    await expect(prune(net(), undefined, { sparsity: 0.5, pattern: '3:2', schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/options.pattern/);
    await expect(prune(net(), undefined, { sparsity: 0.5, method: 'magnitude', minSparsity: 0.1, schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/minSparsity/);
    await expect(prune(net(), undefined, { sparsity: 0.5, schedule: 'agp', epochs: 0 })).rejects.toThrow(/options.epochs/);
    await expect(prune(net(), undefined, { sparsity: 0.5, sparsty: 1 } as never)).rejects.toThrow(/sparsty/);
    await expect(prune(net(), undefined, { method: 'magnitude' })).rejects.toThrow(TypeError);
  });

  it('one-shot with 0 epochs masks the weights and reports per-layer sparsity', async () => {
    const { report, masks } = await prune(net(), undefined, { sparsity: 0.5, pattern: '2:4', schedule: 'oneshot', epochs: 0 });
    expect(report.layers.map((l) => [l.name, l.sparsity])).toEqual([['3', 0.5], ['7', 0.5]]);
    expect(report.sparsity).toBe(0.5);
    expect(masks.map((m) => m.parameter)).toEqual(['3.weight', '7.weight']);
  });
});
