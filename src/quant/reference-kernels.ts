/**
 * Naive float64 loops shared by the reference interpreter (src/quant/reference.ts): convolution,
 * matrix product and max pooling over plain number arrays. The same loop serves float and int8
 * nodes: for an int8 node the inputs are integers (q - zero_point) and every sum is an exact
 * integer (far below 2^53), so the float64 accumulator is the exact int32 accumulator.
 */

/** Conv / pool geometry in the IR's canonical attributes (2-D, NCHW). */
export interface Window2d {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  /** Pools: output sizes rounded up (ONNX ceil_mode), dropping a window that would start in the end padding. */
  ceilMode?: boolean;
}

export function windowOf(attrs: Record<string, unknown>, kernel?: readonly number[]): Window2d {
  const pair = (v: unknown, d: number): [number, number] => (Array.isArray(v) && v.length === 2 ? [Number(v[0]), Number(v[1])] : [d, d]);
  const k = (attrs.kernel_shape as number[] | undefined) ?? kernel;
  if (!k || k.length !== 2) throw new Error('a 2-D kernel_shape');
  const p = attrs.pads as number[] | undefined;
  return {
    kernel: [k[0], k[1]],
    strides: pair(attrs.strides, 1),
    dilations: pair(attrs.dilations, 1),
    pads: p && p.length === 4 ? [p[0], p[1], p[2], p[3]] : [0, 0, 0, 0],
    ceilMode: Number(attrs.ceil_mode ?? 0) === 1,
  };
}

export function outputSize(size: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, ceilMode = false): number {
  const span = size + padBegin + padEnd - dilation * (kernel - 1) - 1;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padBegin) out--;
  return out;
}

/**
 * Grouped 2-D convolution without bias: acc[n][o][y][x] = Σ (x[...] - xOffset) * w[o][c][ky][kx]
 * (padding contributes 0, i.e. the zero point for a quantized input).
 * @returns the accumulators and the output dims [N, O, OH, OW]
 */
export function conv2d(
  x: ArrayLike<number>,
  xDims: readonly number[],
  xOffset: number,
  w: ArrayLike<number>,
  wDims: readonly number[],
  group: number,
  win: Window2d,
): { acc: Float64Array; dims: number[] } {
  const [n, c, h, wd] = xDims;
  const [o, cg, kh, kw] = wDims;
  const og = o / group;
  if (!Number.isInteger(og) || cg * group !== c) throw new Error(`Conv channels: input ${c}, weight [${wDims.join(', ')}], group ${group}`);
  const oh = outputSize(h, kh, win.strides[0], win.dilations[0], win.pads[0], win.pads[2]);
  const ow = outputSize(wd, kw, win.strides[1], win.dilations[1], win.pads[1], win.pads[3]);
  const acc = new Float64Array(n * o * oh * ow);
  const [sy, sx] = win.strides;
  const [dy, dx] = win.dilations;
  const [py, px] = [win.pads[0], win.pads[1]];
  const taps = cg * kh * kw;
  const pixels = oh * ow;
  // Float64 copies keep the hot loop on one array type; each output is a dot product of a weight
  // row with an im2col row (x shifted by its zero point, padding 0), so the inner loop is long.
  const ws = Float64Array.from(w);
  const cols = new Float64Array(pixels * taps);
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < group; g++) {
      cols.fill(0);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let t = (oy * ow + ox) * taps;
          for (let ic = 0; ic < cg; ic++) {
            const xBase = (b * c + g * cg + ic) * h * wd;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sy - py + ky * dy;
              for (let kx = 0; kx < kw; kx++, t++) {
                const ix = ox * sx - px + kx * dx;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd) cols[t] = x[xBase + iy * wd + ix] - xOffset;
              }
            }
          }
        }
      }
      for (let oc = g * og; oc < (g + 1) * og; oc++) {
        const wBase = oc * taps;
        const accBase = (b * o + oc) * pixels;
        for (let p = 0; p < pixels; p++) {
          const cBase = p * taps;
          let sum = 0;
          for (let t = 0; t < taps; t++) sum += ws[wBase + t] * cols[cBase + t];
          acc[accBase + p] = sum;
        }
      }
    }
  }
  return { acc, dims: [n, o, oh, ow] };
}

/**
 * acc[m][j] = Σ_k (a[m][k] - aOffset) * op(w)[k][j], op(w) = wᵀ when transB (w is [N, K]) else w ([K, N]).
 * `transA` transposes a ([K, M] storage).
 */
export function matmul(
  a: ArrayLike<number>,
  aDims: readonly number[],
  aOffset: number,
  w: ArrayLike<number>,
  wDims: readonly number[],
  transA: boolean,
  transB: boolean,
): { acc: Float64Array; m: number; n: number } {
  const [m, k] = transA ? [aDims[1], aDims[0]] : [aDims[0], aDims[1]];
  const [kw, n] = transB ? [wDims[1], wDims[0]] : [wDims[0], wDims[1]];
  if (kw !== k) throw new Error(`Gemm inner dimensions: ${k} and ${kw}`);
  // Row-major float64 copies: A as [m][k] shifted by its zero point, op(W) as [n][k].
  const as = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) as[i * k + p] = (transA ? a[p * m + i] : a[i * k + p]) - aOffset;
  const ws = new Float64Array(n * k);
  for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) ws[j * k + p] = transB ? w[j * k + p] : w[p * n + j];
  const acc = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += as[i * k + p] * ws[j * k + p];
      acc[i * n + j] = sum;
    }
  }
  return { acc, m, n };
}

/** Max pooling, NCHW. Padded positions never win; a window covering no input yields 0. */
export function maxPool2d(x: ArrayLike<number>, xDims: readonly number[], win: Window2d): { out: Float64Array; dims: number[] } {
  const [n, c, h, w] = xDims;
  const oh = outputSize(h, win.kernel[0], win.strides[0], win.dilations[0], win.pads[0], win.pads[2], win.ceilMode);
  const ow = outputSize(w, win.kernel[1], win.strides[1], win.dilations[1], win.pads[1], win.pads[3], win.ceilMode);
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let best = -Infinity;
        for (let ky = 0; ky < win.kernel[0]; ky++) {
          const iy = oy * win.strides[0] - win.pads[0] + ky * win.dilations[0];
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < win.kernel[1]; kx++) {
            const ix = ox * win.strides[1] - win.pads[1] + kx * win.dilations[1];
            if (ix < 0 || ix >= w) continue;
            const v = x[(p * h + iy) * w + ix];
            if (v > best) best = v;
          }
        }
        out[(p * oh + oy) * ow + ox] = best === -Infinity ? 0 : best;
      }
    }
  }
  return { out, dims: [n, c, oh, ow] };
}

/**
 * Average pooling, NCHW; `countIncludePad` divides by the whole window (the padded frame), else by
 * its inside part. `mean` turns a window's exact sum and divisor into the output (QLinearAveragePool
 * passes its own rounding); by default their float64 quotient, 0 for a window over padding only.
 */
export function avgPool2d(
  x: ArrayLike<number>,
  xDims: readonly number[],
  win: Window2d,
  countIncludePad: boolean,
  mean: (sum: number, divisor: number) => number = (sum, divisor) => (divisor === 0 ? 0 : sum / divisor),
): { out: Float64Array; dims: number[] } {
  const [n, c, h, w] = xDims;
  const oh = outputSize(h, win.kernel[0], win.strides[0], win.dilations[0], win.pads[0], win.pads[2], win.ceilMode);
  const ow = outputSize(w, win.kernel[1], win.strides[1], win.dilations[1], win.pads[1], win.pads[3], win.ceilMode);
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let sum = 0;
        let inside = 0;
        let window = 0;
        for (let ky = 0; ky < win.kernel[0]; ky++) {
          const iy = oy * win.strides[0] - win.pads[0] + ky * win.dilations[0];
          for (let kx = 0; kx < win.kernel[1]; kx++) {
            const ix = ox * win.strides[1] - win.pads[1] + kx * win.dilations[1];
            // The padded frame counts toward the divisor; positions past it (ceil_mode) never do.
            if (iy < h + win.pads[2] && ix < w + win.pads[3]) window++;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            sum += x[(p * h + iy) * w + ix];
            inside++;
          }
        }
        out[(p * oh + oy) * ow + ox] = mean(sum, countIncludePad ? window : inside);
      }
    }
  }
  return { out, dims: [n, c, oh, ow] };
}
