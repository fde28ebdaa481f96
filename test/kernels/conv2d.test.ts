import { describe, expect, it } from 'vitest';

import { type Conv2dGeometry, native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import {
  expectClose, expectIdentical, expectInvalidArg, forEachIsa, randomArray, sentinel, type WindowCase, windowGeometry,
} from './kernel-helpers.js';

interface ConvCase extends WindowCase {
  name: string;
  batch: number;
  inChannels: number;
  outChannels: number;
  groups?: number;
  bias?: boolean;
  relu?: boolean;
}

function geometry(c: ConvCase): Conv2dGeometry {
  return {
    batch: c.batch,
    inChannels: c.inChannels,
    outChannels: c.outChannels,
    groups: c.groups ?? 1,
    ...windowGeometry(c, [1, 1]),
  };
}

interface Sizes {
  input: number;
  output: number;
  weight: number;
}

function sizes(g: Conv2dGeometry): Sizes {
  return {
    input: g.batch * g.inChannels * g.inHeight * g.inWidth,
    output: g.batch * g.outChannels * g.outHeight * g.outWidth,
    weight: g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW,
  };
}

/** Calls visit(inputIndex, weightIndex, outputIndex) for every multiply of the convolution. */
function forEachTap(g: Conv2dGeometry, visit: (i: number, w: number, o: number) => void): void {
  const cinG = g.inChannels / g.groups;
  const coutG = g.outChannels / g.groups;
  for (let n = 0; n < g.batch; n++) {
    for (let o = 0; o < g.outChannels; o++) {
      const grp = Math.floor(o / coutG);
      for (let oh = 0; oh < g.outHeight; oh++) {
        for (let ow = 0; ow < g.outWidth; ow++) {
          const oi = ((n * g.outChannels + o) * g.outHeight + oh) * g.outWidth + ow;
          for (let c = 0; c < cinG; c++) {
            for (let kh = 0; kh < g.kernelH; kh++) {
              const ih = oh * g.strideH - g.padTop + kh * g.dilationH;
              if (ih < 0 || ih >= g.inHeight) continue;
              for (let kw = 0; kw < g.kernelW; kw++) {
                const iw = ow * g.strideW - g.padLeft + kw * g.dilationW;
                if (iw < 0 || iw >= g.inWidth) continue;
                const ii = ((n * g.inChannels + grp * cinG + c) * g.inHeight + ih) * g.inWidth + iw;
                const wi = ((o * cinG + c) * g.kernelH + kh) * g.kernelW + kw;
                visit(ii, wi, oi);
              }
            }
          }
        }
      }
    }
  }
}

/** float64 forward, with the sum of term magnitudes per output as the rounding scale. */
function referenceForward(g: Conv2dGeometry, input: Float32Array, weight: Float32Array, bias: Float32Array | null, relu: boolean) {
  const s = sizes(g);
  const out = new Float64Array(s.output);
  const scale = new Float64Array(s.output);
  const plane = g.outHeight * g.outWidth;
  if (bias) {
    for (let i = 0; i < s.output; i++) {
      const b = bias[Math.floor(i / plane) % g.outChannels];
      out[i] = b;
      scale[i] = Math.abs(b);
    }
  }
  forEachTap(g, (ii, wi, oi) => {
    const t = input[ii] * weight[wi];
    out[oi] += t;
    scale[oi] += Math.abs(t);
  });
  if (relu) for (let i = 0; i < out.length; i++) out[i] = Math.max(0, out[i]);
  return { out, scale };
}

function referenceBackward(g: Conv2dGeometry, input: Float32Array, weight: Float32Array, gradOutput: Float32Array) {
  const s = sizes(g);
  const gi = new Float64Array(s.input);
  const giScale = new Float64Array(s.input);
  const gw = new Float64Array(s.weight);
  const gwScale = new Float64Array(s.weight);
  const gb = new Float64Array(g.outChannels);
  const gbScale = new Float64Array(g.outChannels);
  const plane = g.outHeight * g.outWidth;
  for (let i = 0; i < s.output; i++) {
    const o = Math.floor(i / plane) % g.outChannels;
    gb[o] += gradOutput[i];
    gbScale[o] += Math.abs(gradOutput[i]);
  }
  forEachTap(g, (ii, wi, oi) => {
    const go = gradOutput[oi];
    gi[ii] += weight[wi] * go;
    giScale[ii] += Math.abs(weight[wi] * go);
    gw[wi] += input[ii] * go;
    gwScale[wi] += Math.abs(input[ii] * go);
  });
  return { gi, giScale, gw, gwScale, gb, gbScale };
}

const FIXED: ConvCase[] = [
  { name: 'smallest', batch: 1, inChannels: 1, inHeight: 1, inWidth: 1, outChannels: 1, kernel: [1, 1] },
  { name: 'pointwise', batch: 2, inChannels: 5, inHeight: 7, inWidth: 3, outChannels: 4, kernel: [1, 1], bias: true },
  { name: 'pointwise grouped', batch: 3, inChannels: 6, inHeight: 5, inWidth: 5, outChannels: 4, kernel: [1, 1], groups: 2, bias: true, relu: true },
  { name: 'pointwise strided (needs columns)', batch: 2, inChannels: 3, inHeight: 7, inWidth: 6, outChannels: 5, kernel: [1, 1], stride: [2, 3] },
  { name: 'depthwise', batch: 2, inChannels: 7, inHeight: 9, inWidth: 8, outChannels: 7, kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], groups: 7, bias: true },
  { name: 'depthwise x2 dilated', batch: 1, inChannels: 3, inHeight: 11, inWidth: 7, outChannels: 6, kernel: [3, 3], pads: [2, 1, 0, 2], dilation: [2, 2], groups: 3 },
  { name: 'MNIST conv1', batch: 3, inChannels: 1, inHeight: 28, inWidth: 28, outChannels: 32, kernel: [3, 3], bias: true, relu: true },
  { name: 'MNIST conv2', batch: 2, inChannels: 32, inHeight: 13, inWidth: 13, outChannels: 64, kernel: [3, 3], bias: true, relu: true },
  { name: 'pointwise widening (thin weight gradient)', batch: 3, inChannels: 2, inHeight: 4, inWidth: 5, outChannels: 9, kernel: [1, 1], bias: true },
  { name: 'thin patch, images share a GEMM', batch: 18, inChannels: 1, inHeight: 6, inWidth: 6, outChannels: 16, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
  { name: 'images share a GEMM', batch: 17, inChannels: 3, inHeight: 5, inWidth: 5, outChannels: 5, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
  { name: 'plane split in tiles', batch: 2, inChannels: 64, inHeight: 15, inWidth: 15, outChannels: 3, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
  { name: 'one image in tiles', batch: 1, inChannels: 64, inHeight: 17, inWidth: 13, outChannels: 2, kernel: [3, 3], pads: [1, 0, 1, 2] },
  { name: 'rows wider than 128 columns', batch: 1, inChannels: 2, inHeight: 3, inWidth: 150, outChannels: 3, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
  { name: 'kernel larger than input', batch: 2, inChannels: 2, inHeight: 2, inWidth: 3, outChannels: 3, kernel: [5, 4], pads: [2, 2, 2, 1], bias: true },
  { name: 'primes, strides, dilation, asymmetric pads', batch: 3, inChannels: 5, inHeight: 13, inWidth: 11, outChannels: 7, kernel: [3, 2], stride: [3, 2], pads: [1, 0, 2, 3], dilation: [2, 3], bias: true, relu: true },
];

/** Random geometries with small sizes (the float64 reference runs in JS). */
function randomCases(count: number, seed: number): ConvCase[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const groups = pick([1, 1, 1, 2, 3]);
    const kernel: [number, number] = [pick([1, 2, 3, 5]), pick([1, 3, 4])];
    const stride: [number, number] = [pick([1, 1, 2, 3]), pick([1, 2])];
    const dilation: [number, number] = [pick([1, 1, 2]), pick([1, 3])];
    const pads: [number, number, number, number] = [rng.int(3), rng.int(3), rng.int(3), rng.int(2)];
    const c: ConvCase = {
      name: `random ${cases.length}`,
      batch: pick([1, 2, 3, 5]),
      inChannels: groups * pick([1, 2, 3, 5]),
      inHeight: pick([1, 2, 5, 7, 11]),
      inWidth: pick([1, 3, 4, 9, 13]),
      outChannels: groups * pick([1, 2, 7]),
      kernel,
      stride,
      pads,
      dilation,
      groups,
      bias: rng.next() < 0.5,
      relu: rng.next() < 0.3,
    };
    const g = geometry(c);
    if (g.outHeight >= 1 && g.outWidth >= 1) cases.push(c);
  }
  return cases;
}

const CASES = [...FIXED, ...randomCases(14, 20261124)];

interface Prepared {
  c: ConvCase;
  g: Conv2dGeometry;
  input: Float32Array;
  weight: Float32Array;
  bias: Float32Array | null;
  gradOutput: Float32Array;
}

function prepare(c: ConvCase, seed: number): Prepared {
  const g = geometry(c);
  const s = sizes(g);
  const rng = new Rng(seed);
  return {
    c,
    g,
    input: randomArray(rng, s.input),
    weight: randomArray(rng, s.weight),
    bias: c.bias ? randomArray(rng, g.outChannels) : null,
    gradOutput: randomArray(rng, s.output),
  };
}

function forward(p: Prepared): Float32Array {
  const output = sentinel(sizes(p.g).output);
  native.conv2dForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, relu: p.c.relu ?? false }, false);
  return output;
}

function backward(p: Prepared, want: { input: boolean; weight: boolean; bias: boolean }) {
  const s = sizes(p.g);
  const gradInput = want.input ? sentinel(s.input) : null;
  const gradWeight = want.weight ? sentinel(s.weight) : null;
  const gradBias = want.bias ? sentinel(p.g.outChannels) : null;
  native.conv2dBackward({ ...p.g, input: p.input, weight: p.weight, gradOutput: p.gradOutput, gradInput, gradWeight, gradBias }, false);
  return { gradInput, gradWeight, gradBias };
}

describe('conv2dForward', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s matches the float64 reference on every ISA', (_name, c, i) => {
    const p = prepare(c, 1000 + i);
    const ref = referenceForward(p.g, p.input, p.weight, p.bias, c.relu ?? false);
    forEachIsa((isa) => {
      expectClose(forward(p), ref.out, `${c.name} [${isa}]`, { scale: ref.scale });
    });
  });

  it('does not depend on the thread count', () => {
    const threads = native.cpuInfo().threads;
    try {
      for (const name of ['images share a GEMM', 'one image in tiles', 'MNIST conv2']) {
        const c = { ...FIXED.find((x) => x.name === name)!, batch: name === 'MNIST conv2' ? 1 : FIXED.find((x) => x.name === name)!.batch };
        const p = prepare(c, 7);
        native.setNumThreads(1);
        const one = forward(p);
        native.setNumThreads(Math.max(2, threads));
        expectIdentical(forward(p), one, name);
      }
    } finally {
      native.setNumThreads(threads);
    }
  });

  it('runs on a worker when async, with the same result', async () => {
    const p = prepare(FIXED.find((x) => x.name === 'MNIST conv2')!, 11);
    const output = sentinel(sizes(p.g).output);
    const pending = native.conv2dForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, relu: true }, true);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expectIdentical(output, forward(p), 'async');
  });
});

describe('conv2dMaxPoolForward', () => {
  // Conv case (no ReLU: the training layout), pool kernel, stride, dilation.
  const POOLED: { c: ConvCase; k: [number, number]; s: [number, number]; d?: [number, number] }[] = [
    { c: { name: 'MNIST conv1', batch: 3, inChannels: 1, inHeight: 28, inWidth: 28, outChannels: 32, kernel: [3, 3], bias: true }, k: [2, 2], s: [2, 2] },
    { c: { name: 'MNIST conv2', batch: 5, inChannels: 32, inHeight: 13, inWidth: 13, outChannels: 64, kernel: [3, 3], bias: true }, k: [2, 2], s: [2, 2] },
    { c: { name: 'odd sizes, overlapping windows', batch: 2, inChannels: 3, inHeight: 11, inWidth: 17, outChannels: 19, kernel: [2, 3] }, k: [3, 2], s: [1, 2] },
    { c: { name: 'prime channels, dilated pool', batch: 1, inChannels: 7, inHeight: 13, inWidth: 9, outChannels: 67, kernel: [3, 1], bias: true }, k: [2, 2], s: [3, 2], d: [2, 1] },
    { c: { name: 'padded strided conv (two steps)', batch: 2, inChannels: 4, inHeight: 9, inWidth: 10, outChannels: 5, kernel: [3, 3], stride: [2, 1], pads: [1, 1, 1, 1], bias: true }, k: [2, 2], s: [2, 2] },
  ];

  function pooled(p: Prepared, k: [number, number], s: [number, number], d: [number, number] = [1, 1]) {
    const outH = Math.floor((p.g.outHeight - d[0] * (k[0] - 1) - 1) / s[0]) + 1;
    const outW = Math.floor((p.g.outWidth - d[1] * (k[1] - 1) - 1) / s[1]) + 1;
    const pool = { poolKernelH: k[0], poolKernelW: k[1], poolStrideH: s[0], poolStrideW: s[1], poolDilationH: d[0], poolDilationW: d[1], poolOutHeight: outH, poolOutWidth: outW };
    const poolGeometry = {
      batch: p.g.batch, channels: p.g.outChannels, inHeight: p.g.outHeight, inWidth: p.g.outWidth, outHeight: outH, outWidth: outW,
      kernelH: k[0], kernelW: k[1], strideH: s[0], strideW: s[1], padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, dilationH: d[0], dilationW: d[1],
    };
    return { pool, poolGeometry, size: p.g.batch * p.g.outChannels * outH * outW };
  }

  it.each(POOLED.map((t, i) => [t.c.name, t, i] as const))('%s: bit for bit conv2dForward + maxPool2dForward on every ISA', (_name, t, i) => {
    const p = prepare(t.c, 3000 + i);
    p.input[7] = Number.NaN;  // a NaN must win its windows the same way in both paths
    const { pool, poolGeometry, size } = pooled(p, t.k, t.s, t.d);
    forEachIsa((isa) => {
      const conv = forward(p);
      const want = sentinel(size);
      const wantIdx = new Int32Array(size).fill(-7);
      native.maxPool2dForward({ ...poolGeometry, input: conv, output: want, indices: wantIdx }, false);
      const output = sentinel(size);
      const indices = new Int32Array(size).fill(-7);
      native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, indices, ...pool }, false);
      expectIdentical(output, want, `${t.c.name} [${isa}] values`);
      expect(Array.from(indices), `${t.c.name} [${isa}] indices`).toEqual(Array.from(wantIdx));
      const noIndices = sentinel(size);
      native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output: noIndices, indices: null, ...pool }, false);
      expectIdentical(noIndices, want, `${t.c.name} [${isa}] without indices`);
    });
  });

  it('runs on a worker when async, with the same result', async () => {
    const p = prepare(POOLED[1].c, 12);
    const { pool, size } = pooled(p, [2, 2], [2, 2]);
    const sync = sentinel(size);
    native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output: sync, ...pool }, false);
    const output = sentinel(size);
    const pending = native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, ...pool }, true);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expectIdentical(output, sync, 'async');
  });

  it('refuses a pool size that does not match the convolution output, and wrong lengths', () => {
    const p = prepare(POOLED[1].c, 13);
    const { pool, size } = pooled(p, [2, 2], [2, 2]);
    const args = { ...p.g, input: p.input, weight: p.weight, bias: p.bias, output: sentinel(size), ...pool };
    expectInvalidArg(() => native.conv2dMaxPoolForward({ ...args, poolOutWidth: pool.poolOutWidth + 1 }, false), 'RangeError', /poolOutHeight x poolOutWidth/);
    expectInvalidArg(() => native.conv2dMaxPoolForward({ ...args, poolStrideH: 0 }, false), 'RangeError', /poolStrideH/);
    expectInvalidArg(() => native.conv2dMaxPoolForward({ ...args, output: sentinel(size - 1) }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.conv2dMaxPoolForward({ ...args, indices: new Int32Array(size + 1) }, false), 'RangeError', /indices/);
    expectInvalidArg(() => native.conv2dMaxPoolForward({ ...args, output: p.input.subarray(0, size) }, false), 'RangeError');
  });
});

describe('conv2dBackward', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s matches the float64 reference on every ISA', (_name, c, i) => {
    const p = prepare(c, 2000 + i);
    const ref = referenceBackward(p.g, p.input, p.weight, p.gradOutput);
    forEachIsa((isa) => {
      const all = backward(p, { input: true, weight: true, bias: true });
      expectClose(all.gradInput!, ref.gi, `${c.name} gradInput [${isa}]`, { scale: ref.giScale });
      expectClose(all.gradWeight!, ref.gw, `${c.name} gradWeight [${isa}]`, { scale: ref.gwScale });
      expectClose(all.gradBias!, ref.gb, `${c.name} gradBias [${isa}]`, { scale: ref.gbScale });
    });
    // Each output alone (the others null) is the same as with all three.
    const all = backward(p, { input: true, weight: true, bias: true });
    expectIdentical(backward(p, { input: true, weight: false, bias: false }).gradInput!, all.gradInput!, `${c.name} gradInput alone`);
    expectIdentical(backward(p, { input: false, weight: true, bias: false }).gradWeight!, all.gradWeight!, `${c.name} gradWeight alone`);
    expectIdentical(backward(p, { input: false, weight: false, bias: true }).gradBias!, all.gradBias!, `${c.name} gradBias alone`);
  });

  it('sums the batch in an order that does not depend on the thread count', () => {
    const threads = native.cpuInfo().threads;
    try {
      for (const name of ['images share a GEMM', 'thin patch, images share a GEMM', 'one image in tiles', 'MNIST conv1', 'pointwise grouped', 'depthwise x2 dilated']) {
        const p = prepare(FIXED.find((x) => x.name === name)!, 8);
        native.setNumThreads(1);
        const one = backward(p, { input: true, weight: true, bias: true });
        native.setNumThreads(Math.max(2, threads));
        const many = backward(p, { input: true, weight: true, bias: true });
        expectIdentical(many.gradInput!, one.gradInput!, `${name} gradInput`);
        expectIdentical(many.gradWeight!, one.gradWeight!, `${name} gradWeight`);
        expectIdentical(many.gradBias!, one.gradBias!, `${name} gradBias`);
      }
    } finally {
      native.setNumThreads(threads);
    }
  });

  it('runs on a worker when async, with the same result', async () => {
    const p = prepare(FIXED.find((x) => x.name === 'images share a GEMM')!, 12);
    const s = sizes(p.g);
    const gradInput = sentinel(s.input);
    const gradWeight = sentinel(s.weight);
    const gradBias = sentinel(p.g.outChannels);
    await native.conv2dBackward({ ...p.g, input: p.input, weight: p.weight, gradOutput: p.gradOutput, gradInput, gradWeight, gradBias }, true);
    const sync = backward(p, { input: true, weight: true, bias: true });
    expectIdentical(gradInput, sync.gradInput!, 'gradInput');
    expectIdentical(gradWeight, sync.gradWeight!, 'gradWeight');
    expectIdentical(gradBias, sync.gradBias!, 'gradBias');
  });
});

describe('conv2d argument checks', () => {
  const c: ConvCase = { name: 'v', batch: 2, inChannels: 4, inHeight: 6, inWidth: 5, outChannels: 6, kernel: [3, 3], pads: [1, 1, 1, 1], groups: 2 };
  const p = prepare(c, 3);
  const s = sizes(p.g);
  const good = () => ({ ...p.g, input: p.input, weight: p.weight, bias: null, output: new Float32Array(s.output) });
  const goodBackward = () => ({ ...p.g, input: p.input, weight: p.weight, gradOutput: p.gradOutput, gradInput: new Float32Array(s.input) });

  it('refuses arrays whose length does not match the geometry', () => {
    expectInvalidArg(() => native.conv2dForward({ ...good(), input: new Float32Array(s.input - 1) }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), output: new Float32Array(s.output + 1) }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), weight: new Float32Array(s.weight * 2) }, false), 'RangeError', /weight/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), bias: new Float32Array(p.g.outChannels + 1) }, false), 'RangeError', /bias/);
    expectInvalidArg(() => native.conv2dBackward({ ...goodBackward(), gradOutput: new Float32Array(3) }, false), 'RangeError', /gradOutput/);
    expectInvalidArg(() => native.conv2dBackward({ ...goodBackward(), gradWeight: new Float32Array(1) }, false), 'RangeError', /gradWeight/);
    expectInvalidArg(() => native.conv2dBackward({ ...goodBackward(), gradBias: new Float32Array(1) }, false), 'RangeError', /gradBias/);
  });

  it('refuses wrong array types', () => {
    expectInvalidArg(() => native.conv2dForward({ ...good(), input: new Float64Array(s.input) as never }, false), 'TypeError', /input/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), output: Array.from({ length: s.output }) as never }, false), 'TypeError', /output/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), weight: undefined as never }, false), 'TypeError', /weight/);
  });

  it('refuses an output size inconsistent with the geometry', () => {
    expectInvalidArg(() => native.conv2dForward({ ...good(), outHeight: p.g.outHeight + 1 }, false), 'RangeError', /outHeight/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), outWidth: p.g.outWidth - 1 }, false), 'RangeError', /outWidth/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), kernelH: 20, outHeight: 1 }, false), 'RangeError', /kernelH/);
  });

  it('refuses groups that do not divide the channels, and bad counts', () => {
    expectInvalidArg(() => native.conv2dForward({ ...good(), groups: 3 }, false), 'RangeError', /groups/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), groups: 0 }, false), 'RangeError', /groups/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), strideH: 0 }, false), 'RangeError', /strideH/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), dilationW: 0 }, false), 'RangeError', /dilationW/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), kernelW: 0 }, false), 'RangeError', /kernelW/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), padTop: -1 }, false), 'RangeError', /padTop/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), batch: 1.5 }, false), 'TypeError', /batch/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), inChannels: Number.NaN }, false), 'TypeError', /inChannels/);
    expectInvalidArg(() => native.conv2dForward({ ...good(), inHeight: 2 ** 40 }, false), 'RangeError', /inHeight/);
  });

  it('refuses sizes whose product overflows', () => {
    const huge = { ...good(), batch: 2 ** 31 - 1, inChannels: 2 ** 31 - 1, outChannels: 2 ** 31 - 1, groups: 1, inHeight: 2 ** 31 - 1, outHeight: 2 ** 31 - 3 };
    expectInvalidArg(() => native.conv2dForward(huge, false), 'RangeError');
  });

  it('refuses an output that overlaps its input, and a non-boolean async flag', () => {
    const shared = new Float32Array(s.input + s.output);
    const input = shared.subarray(0, s.input);
    const output = shared.subarray(s.input - 1, s.input - 1 + s.output);
    expectInvalidArg(() => native.conv2dForward({ ...good(), input, output }, false), 'RangeError', /overlap/);
    expectInvalidArg(() => native.conv2dForward(good(), 'yes' as never), 'TypeError', /async/);
    expectInvalidArg(() => native.conv2dForward(null as never, false), 'TypeError');
  });

  it('keeps the process alive and working after refusals', () => {
    const args = good();
    native.conv2dForward(args, false);
    expect(args.output.every(Number.isFinite)).toBe(true);
  });
});

describe('small-patch direct convolution (pixels in lanes: 3x3 over 1..4 channels, 5x5 over 1, stride 1, unpadded)', () => {
  /** Shapes the small-patch kernel takes on AVX-512: odd and prime sizes, rows of 1, 16 and > 16 segments. */
  function smallCases(count: number, seed: number): ConvCase[] {
    const rng = new Rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];
    const cases: ConvCase[] = [
      { name: 'MNIST conv1, batch 1', batch: 1, inChannels: 1, inHeight: 28, inWidth: 28, outChannels: 32, kernel: [3, 3], bias: true, relu: true },
      { name: 'CIFAR conv1', batch: 3, inChannels: 3, inHeight: 32, inWidth: 32, outChannels: 32, kernel: [3, 3], bias: true, relu: true },
      { name: '5x5, one pixel out', batch: 2, inChannels: 1, inHeight: 5, inWidth: 5, outChannels: 3, kernel: [5, 5], bias: true },
    ];
    while (cases.length < count) {
      const five = rng.next() < 0.2;
      const k = five ? 5 : 3;
      cases.push({
        name: `small random ${cases.length}`,
        batch: pick([1, 1, 2, 3, 5]),
        inChannels: five ? 1 : 1 + rng.int(4),
        inHeight: k - 1 + pick([1, 2, 3, 6, 7, 12]),
        inWidth: k - 1 + pick([1, 2, 5, 15, 16, 17, 31, 33, 34]),
        outChannels: pick([1, 2, 3, 5, 7, 32, 33]),
        kernel: [k, k],
        bias: rng.next() < 0.6,
        relu: rng.next() < 0.5,
      });
    }
    return cases;
  }
  const SMALL = smallCases(16, 20261124);

  it.each(SMALL.map((c, i) => [c.name, c, i] as const))('%s matches the float64 reference on every ISA, the same bits on each', (_name, c, i) => {
    const p = prepare(c, 5000 + i);
    const ref = referenceForward(p.g, p.input, p.weight, p.bias, c.relu ?? false);
    const byIsa = new Map<string, Float32Array>();
    forEachIsa((isa) => {
      const out = forward(p);
      expectClose(out, ref.out, `${c.name} [${isa}]`, { scale: ref.scale });
      byIsa.set(isa, out);
    });
    // The same sum (acc = 0, one FMA per tap in im2col order, bias after) as the channels-in-lanes
    // kernel (AVX-512) and the packed GEMM (AVX2), which take this convolution with zero input
    // channels appended (Cin 5 or 2 is not a small patch): trailing taps add only zeros.
    const wide = c.kernel[0] === 5 ? 2 : 5;
    const rng = new Rng(9000 + i);
    const plane = c.inHeight * c.inWidth;
    const input = new Float32Array(c.batch * wide * plane);
    for (let n = 0; n < c.batch; n++) input.set(p.input.subarray(n * c.inChannels * plane, (n + 1) * c.inChannels * plane), n * wide * plane);
    const taps = c.kernel[0] * c.kernel[1];
    const weight = randomArray(rng, c.outChannels * wide * taps);
    for (let o = 0; o < c.outChannels; o++) weight.set(p.weight.subarray(o * c.inChannels * taps, (o + 1) * c.inChannels * taps), o * wide * taps);
    const widened: Prepared = { ...p, c: { ...c, inChannels: wide }, g: { ...p.g, inChannels: wide }, input, weight };
    forEachIsa((isa) => {
      if (isa === 'scalar') return;  // its GEMM does not fuse the multiply-add
      expectIdentical(byIsa.get(isa)!, forward(widened), `${c.name} [${isa}] vs ${wide} input channels`);
    });
  });

  /** Small integers: sums are exact, so windows hold many equal values (ties pick the first tap). */
  function withTies(p: Prepared, seed: number): Prepared {
    const rng = new Rng(seed);
    const ints = (a: Float32Array) => a.map(() => rng.int(3) - 1);
    return { ...p, input: ints(p.input), weight: ints(p.weight), bias: p.bias ? ints(p.bias) : null };
  }

  // 2x2/2 is fused into the kernel; other windows go through the channels-in-lanes kernel on
  // AVX-512 and a per-image staged convolution on AVX2.
  const POOLS: { k: [number, number]; s: [number, number] }[] = [{ k: [2, 2], s: [2, 2] }, { k: [3, 2], s: [1, 2] }];

  it.each(SMALL.map((c, i) => [c.name, c, i] as const))('%s with a fused max pool (2x2/2, 3x2/1x2): bit for bit conv + maxPool2dForward, indices too', (_name, c, i) => {
    const base = prepare(c, 6000 + i);
    for (const { k, s } of POOLS) {
      if (base.g.outHeight < k[0] || base.g.outWidth < k[1]) continue;
      for (const p of [base, withTies(base, 7000 + i)]) {
        p.input[Math.min(7, p.input.length - 1)] = Number.NaN;
        const outH = Math.floor((p.g.outHeight - k[0]) / s[0]) + 1, outW = Math.floor((p.g.outWidth - k[1]) / s[1]) + 1;
        const size = p.g.batch * p.g.outChannels * outH * outW;
        const pool = { poolKernelH: k[0], poolKernelW: k[1], poolStrideH: s[0], poolStrideW: s[1], poolDilationH: 1, poolDilationW: 1, poolOutHeight: outH, poolOutWidth: outW };
        const poolGeometry = {
          batch: p.g.batch, channels: p.g.outChannels, inHeight: p.g.outHeight, inWidth: p.g.outWidth, outHeight: outH, outWidth: outW,
          kernelH: k[0], kernelW: k[1], strideH: s[0], strideW: s[1], padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, dilationH: 1, dilationW: 1,
        };
        const plain = { ...p, c: { ...p.c, relu: false } };
        forEachIsa((isa) => {
          const label = `${c.name} pool ${k}/${s} [${isa}]`;
          const want = sentinel(size);
          const wantIdx = new Int32Array(size).fill(-7);
          native.maxPool2dForward({ ...poolGeometry, input: forward(plain), output: want, indices: wantIdx }, false);
          const output = sentinel(size);
          const indices = new Int32Array(size).fill(-7);
          native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, indices, ...pool }, false);
          expectIdentical(output, want, `${label} values`);
          expect(Array.from(indices), `${label} indices`).toEqual(Array.from(wantIdx));
          const noIndices = sentinel(size);
          native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output: noIndices, indices: null, ...pool }, false);
          expectIdentical(noIndices, want, `${label} without indices`);
        });
      }
    }
  });

  it('does not depend on the thread count, batch split in single images', () => {
    const threads = native.cpuInfo().threads;
    const c = { ...SMALL[1], batch: 11 };
    const p = prepare(c, 8);
    const outH = Math.floor(p.g.outHeight / 2), outW = Math.floor(p.g.outWidth / 2);
    const size = p.g.batch * p.g.outChannels * outH * outW;
    const pool = { poolKernelH: 2, poolKernelW: 2, poolStrideH: 2, poolStrideW: 2, poolDilationH: 1, poolDilationW: 1, poolOutHeight: outH, poolOutWidth: outW };
    const pooled = () => {
      const output = sentinel(size);
      const indices = new Int32Array(size).fill(-7);
      native.conv2dMaxPoolForward({ ...p.g, input: p.input, weight: p.weight, bias: p.bias, output, indices, ...pool }, false);
      return { output, indices };
    };
    try {
      native.setNumThreads(1);
      const one = forward(p);
      const onePooled = pooled();
      for (const n of [2, 3, Math.max(4, threads)]) {
        native.setNumThreads(n);
        expectIdentical(forward(p), one, `${n} threads`);
        const many = pooled();
        expectIdentical(many.output, onePooled.output, `${n} threads, pooled`);
        expect(Array.from(many.indices)).toEqual(Array.from(onePooled.indices));
      }
    } finally {
      native.setNumThreads(threads);
    }
  });
});
