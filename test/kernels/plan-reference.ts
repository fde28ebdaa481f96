/**
 * Naive float64 references for the plan ops (test oracle). Tensors are full NCHW-style arrays
 * with the batch first. Products also return the sum of |terms| per output (`mag`), the scale
 * of the float32 rounding error, for tolerances.
 */
export interface Arr {
  data: Float64Array;
  shape: number[];
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function arr(shape: number[], data?: ArrayLike<number>): Arr {
  return { shape, data: data ? Float64Array.from(data) : new Float64Array(size(shape)) };
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

export interface Conv2dParams {
  strides: number[];
  pads: number[]; // top, left, bottom, right
  dilations: number[];
  group: number;
}

export function conv2d(x: Arr, w: Arr, b: Arr | undefined, p: Conv2dParams): { out: Arr; mag: Float64Array } {
  const [n, c, h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + p.pads[0] + p.pads[2] - p.dilations[0] * (kh - 1) - 1) / p.strides[0]) + 1;
  const ow = Math.floor((wd + p.pads[1] + p.pads[3] - p.dilations[1] * (kw - 1) - 1) / p.strides[1]) + 1;
  const out = arr([n, o, oh, ow]);
  const mag = new Float64Array(out.data.length);
  const og = o / p.group;
  for (let b0 = 0; b0 < n; b0++)
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b ? b.data[oc] : 0;
          let m = Math.abs(s);
          for (let ci = 0; ci < cg; ci++)
            for (let i = 0; i < kh; i++) {
              const iy = y * p.strides[0] - p.pads[0] + i * p.dilations[0];
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = xx * p.strides[1] - p.pads[1] + j * p.dilations[1];
                if (ix < 0 || ix >= wd) continue;
                const t = x.data[((b0 * c + g * cg + ci) * h + iy) * wd + ix] * w.data[((oc * cg + ci) * kh + i) * kw + j];
                s += t;
                m += Math.abs(t);
              }
            }
          const idx = ((b0 * o + oc) * oh + y) * ow + xx;
          out.data[idx] = s;
          mag[idx] = m;
        }
    }
  return { out, mag };
}

export function convTranspose2d(x: Arr, w: Arr, b: Arr | undefined, p: Conv2dParams & { outputPadding: number[] }): { out: Arr; mag: Float64Array } {
  const [n, cin, h, wd] = x.shape;
  const [, cog, kh, kw] = w.shape;
  const cout = cog * p.group;
  const cig = cin / p.group;
  const oh = p.strides[0] * (h - 1) + p.outputPadding[0] + (kh - 1) * p.dilations[0] + 1 - p.pads[0] - p.pads[2];
  const ow = p.strides[1] * (wd - 1) + p.outputPadding[1] + (kw - 1) * p.dilations[1] + 1 - p.pads[1] - p.pads[3];
  const out = arr([n, cout, oh, ow]);
  const mag = new Float64Array(out.data.length);
  for (let b0 = 0; b0 < n; b0++)
    for (let co = 0; co < cout; co++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          const idx = ((b0 * cout + co) * oh + y) * ow + xx;
          out.data[idx] = b ? b.data[co] : 0;
          mag[idx] = Math.abs(out.data[idx]);
        }
  for (let b0 = 0; b0 < n; b0++)
    for (let ci = 0; ci < cin; ci++) {
      const g = Math.floor(ci / cig);
      for (let j = 0; j < cog; j++) {
        const co = g * cog + j;
        for (let iy = 0; iy < h; iy++)
          for (let ix = 0; ix < wd; ix++)
            for (let ki = 0; ki < kh; ki++)
              for (let kj = 0; kj < kw; kj++) {
                const y = iy * p.strides[0] - p.pads[0] + ki * p.dilations[0];
                const xx = ix * p.strides[1] - p.pads[1] + kj * p.dilations[1];
                if (y < 0 || y >= oh || xx < 0 || xx >= ow) continue;
                const t = x.data[((b0 * cin + ci) * h + iy) * wd + ix] * w.data[((ci * cog + j) * kh + ki) * kw + kj];
                const idx = ((b0 * cout + co) * oh + y) * ow + xx;
                out.data[idx] += t;
                mag[idx] += Math.abs(t);
              }
      }
    }
  return { out, mag };
}

/** Batched matmul with numpy broadcasting over leading dims; operands of rank >= 2. */
export function matmul(a: Arr, b: Arr): { out: Arr; mag: Float64Array } {
  const ra = a.shape.length, rb = b.shape.length;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[rb - 1];
  const ab = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const pa = [...new Array<number>(rank - ab.length).fill(1), ...ab];
  const pb = [...new Array<number>(rank - bb.length).fill(1), ...bb];
  const ob = pa.map((d, i) => Math.max(d, pb[i]));
  const out = arr([...ob, m, n]);
  const mag = new Float64Array(out.data.length);
  const count = size(ob);
  const sa = strides(pa), sb = strides(pb);
  void ra;
  for (let t = 0; t < count; t++) {
    let rest = t, ia = 0, ib = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const i = rest % ob[d];
      rest = Math.floor(rest / ob[d]);
      if (pa[d] !== 1) ia += i * sa[d];
      if (pb[d] !== 1) ib += i * sb[d];
    }
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0, mg = 0;
        for (let p = 0; p < k; p++) {
          const v = a.data[ia * m * k + i * k + p] * b.data[ib * k * n + p * n + j];
          s += v;
          mg += Math.abs(v);
        }
        out.data[t * m * n + i * n + j] = s;
        mag[t * m * n + i * n + j] = mg;
      }
  }
  return { out, mag };
}

export interface PoolParams {
  kernel: number[];
  strides: number[];
  pads: number[]; // top, left, bottom, right
  dilations: number[];
  ceil: boolean;
  max: boolean;
  includePad: boolean;
}

export function poolOutput(inSize: number, pb: number, pe: number, k: number, s: number, d: number, ceil: boolean): number {
  const avail = inSize + pb + pe - (d * (k - 1) + 1);
  let out = Math.floor((ceil ? avail + s - 1 : avail) / s) + 1;
  if (ceil && (out - 1) * s >= inSize + pb) out--;
  return out;
}

export function pool2d(x: Arr, p: PoolParams): Arr {
  const [n, c, h, w] = x.shape;
  const oh = poolOutput(h, p.pads[0], p.pads[2], p.kernel[0], p.strides[0], p.dilations[0], p.ceil);
  const ow = poolOutput(w, p.pads[1], p.pads[3], p.kernel[1], p.strides[1], p.dilations[1], p.ceil);
  const out = arr([n, c, oh, ow]);
  for (let pl = 0; pl < n * c; pl++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let best = -Infinity, sum = 0, inside = 0, ph = 0, pw = 0;
        for (let i = 0; i < p.kernel[0]; i++) {
          const iy = y * p.strides[0] - p.pads[0] + i * p.dilations[0];
          if (iy >= -p.pads[0] && iy < h + p.pads[2]) ph++;
        }
        for (let j = 0; j < p.kernel[1]; j++) {
          const ix = xx * p.strides[1] - p.pads[1] + j * p.dilations[1];
          if (ix >= -p.pads[1] && ix < w + p.pads[3]) pw++;
        }
        for (let i = 0; i < p.kernel[0]; i++) {
          const iy = y * p.strides[0] - p.pads[0] + i * p.dilations[0];
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < p.kernel[1]; j++) {
            const ix = xx * p.strides[1] - p.pads[1] + j * p.dilations[1];
            if (ix < 0 || ix >= w) continue;
            const v = x.data[(pl * h + iy) * w + ix];
            best = Math.max(best, v);
            sum += v;
            inside++;
          }
        }
        const div = p.includePad ? ph * pw : inside;
        out.data[(pl * oh + y) * ow + xx] = p.max ? best : div === 0 ? 0 : sum / div;
      }
  return out;
}

/** Numpy broadcast of equal-rank shapes. */
export function broadcastShape(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const pa = [...new Array<number>(r - a.length).fill(1), ...a];
  const pb = [...new Array<number>(r - b.length).fill(1), ...b];
  return pa.map((d, i) => Math.max(d, pb[i]));
}

export function binary(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape);
  const r = shape.length;
  const pa = [...new Array<number>(r - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array<number>(r - b.shape.length).fill(1), ...b.shape];
  const sa = strides(pa), sb = strides(pb);
  const out = arr(shape);
  for (let t = 0; t < out.data.length; t++) {
    let rest = t, ia = 0, ib = 0;
    for (let d = r - 1; d >= 0; d--) {
      const i = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
      if (pa[d] !== 1) ia += i * sa[d];
      if (pb[d] !== 1) ib += i * sb[d];
    }
    out.data[t] = f(a.data[ia], b.data[ib]);
  }
  return out;
}

export function transpose(x: Arr, perm: number[]): Arr {
  const shape = perm.map((p) => x.shape[p]);
  const s = strides(x.shape);
  const out = arr(shape);
  for (let t = 0; t < out.data.length; t++) {
    let rest = t, src = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const i = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
      src += i * s[perm[d]];
    }
    out.data[t] = x.data[src];
  }
  return out;
}

export function concat(xs: Arr[], axis: number): Arr {
  const shape = xs[0].shape.slice();
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const out = arr(shape);
  const outer = size(shape.slice(0, axis));
  let o = 0;
  for (let i = 0; i < outer; i++)
    for (const x of xs) {
      const slab = size(x.shape.slice(axis));
      for (let j = 0; j < slab; j++) out.data[o++] = x.data[i * slab + j];
    }
  return out;
}

export function softmax(x: Arr, axis: number, log: boolean): Arr {
  const out = arr(x.shape.slice());
  const outer = size(x.shape.slice(0, axis));
  const dim = x.shape[axis];
  const inner = size(x.shape.slice(axis + 1));
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let max = -Infinity;
      for (let j = 0; j < dim; j++) max = Math.max(max, x.data[(o * dim + j) * inner + i]);
      let sum = 0;
      for (let j = 0; j < dim; j++) sum += Math.exp(x.data[(o * dim + j) * inner + i] - max);
      for (let j = 0; j < dim; j++) {
        const v = x.data[(o * dim + j) * inner + i] - max;
        out.data[(o * dim + j) * inner + i] = log ? v - Math.log(sum) : Math.exp(v) / sum;
      }
    }
  return out;
}

export function pad(x: Arr, pads: number[], mode: 'constant' | 'reflect' | 'edge' | 'wrap', value: number): Arr {
  const r = x.shape.length;
  const shape = x.shape.map((d, i) => d + pads[i] + pads[r + i]);
  const s = strides(x.shape);
  const out = arr(shape);
  for (let t = 0; t < out.data.length; t++) {
    let rest = t, src = 0, constant = false;
    for (let d = r - 1; d >= 0; d--) {
      const o = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
      let i = o - pads[d];
      const n = x.shape[d];
      if (i < 0 || i >= n) {
        if (mode === 'constant') constant = true;
        else if (mode === 'edge') i = i < 0 ? 0 : n - 1;
        else if (mode === 'wrap') i = ((i % n) + n) % n;
        else i = i < 0 ? -i : 2 * (n - 1) - i;
      }
      src += i * s[d];
    }
    out.data[t] = constant ? value : x.data[src];
  }
  return out;
}

export function lrn(x: Arr, sizeN: number, alpha: number, beta: number, bias: number): Arr {
  const [n, c] = x.shape;
  const sp = size(x.shape.slice(2));
  const out = arr(x.shape.slice());
  const before = Math.floor((sizeN - 1) / 2), after = Math.ceil((sizeN - 1) / 2);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let s = 0; s < sp; s++) {
        let sq = 0;
        for (let k = Math.max(0, ch - before); k <= Math.min(c - 1, ch + after); k++) sq += x.data[(b * c + k) * sp + s] ** 2;
        const i = (b * c + ch) * sp + s;
        out.data[i] = x.data[i] / (bias + (alpha / sizeN) * sq) ** beta;
      }
  return out;
}
