/**
 * Sparsity patterns over a weight seen as a matrix [outputs, reduction] (OIHW conv weights: one row
 * of in/groups*kh*kw per output channel; Linear weights [out, in]: one row of `in`).
 *
 * Units along the reduction (1xC blocks, N:M groups) follow the order the int8 kernels reduce in,
 * kernel position outer and input channel inner (NHWC, as im2col rows and the sparse int8 conv read
 * the input): a conv's 1x4 block is 4 consecutive input channels at one (kh, kw), the 4 bytes one
 * `vpdpbusd` lane consumes, and an N:M group is M consecutive input channels at one kernel
 * position (as NVIDIA's 2:4 is). In OIHW memory those weights lie kh*kw apart. A Linear right after
 * a Flatten of a [C, H, W] map is read the same way, pixel outer and channel inner (the int8
 * lowering permutes it to the NHWC order of the pooled map): its units are 4 channels of one pixel,
 * H*W apart in its [out, C*H*W] weight. For another Linear (and a 1x1 conv) the two orders are the
 * same: consecutive weights of one output.
 */
import { KilnRangeError } from '../errors.js';
import { rangeError, typeError } from '../validate.js';

export const PATTERNS = ['unstructured', '2:4', '1:4', '4:8', 'block1x4', 'block4x1', 'block8x1', 'filter'] as const;
export type PatternName = (typeof PATTERNS)[number];

/** A pattern made of pruning units: `rows` outputs by `cols` consecutive reduction elements. */
export interface BlockPattern {
  kind: 'block';
  name: string;
  /** Outputs per unit (4 or 8 for 4x1 / 8x1 blocks, 1 otherwise). */
  rows: number;
  /** Reduction elements per unit (4 for 1x4 blocks, the whole row for 'filter', 1 when unstructured). */
  cols: number | 'row';
}

/** At most `n` non-zeros in every group of `m` consecutive reduction elements. */
export interface NmPattern {
  kind: 'n:m';
  name: string;
  n: number;
  m: number;
}

export type Pattern = BlockPattern | NmPattern;

/**
 * Parses a pattern name: 'unstructured', 'filter', 'blockRxC' (1x4, 4x1, 8x1 or any R x C where one
 * side is 1), or 'N:M' with 0 < N < M.
 * @throws RangeError ERR_KILN_INVALID_ARG for anything else
 */
export function parsePattern(value: unknown, name = 'options.pattern'): Pattern {
  if (typeof value !== 'string') throw typeError(name, `a pattern (${PATTERNS.join(', ')})`, value);
  if (value === 'unstructured') return { kind: 'block', name: value, rows: 1, cols: 1 };
  if (value === 'filter') return { kind: 'block', name: value, rows: 1, cols: 'row' };
  const block = /^block([1-9]\d*)x([1-9]\d*)$/.exec(value);
  if (block) {
    const [rows, cols] = [Number(block[1]), Number(block[2])];
    if (rows <= 64 && cols <= 64 && (rows === 1 || cols === 1)) return { kind: 'block', name: value, rows, cols };
  }
  const nm = /^([1-9]\d*):([1-9]\d*)$/.exec(value);
  if (nm) {
    const [n, m] = [Number(nm[1]), Number(nm[2])];
    if (n < m && m <= 64) return { kind: 'n:m', name: value, n, m };
  }
  throw rangeError(name, `a pattern (${PATTERNS.join(', ')}; blockRxC with R or C 1; N:M with N < M <= 64)`, value);
}

/** The sparsity an N:M pattern reaches: 1 - N/M; undefined for block patterns. */
export function patternSparsity(pattern: Pattern): number | undefined {
  return pattern.kind === 'n:m' ? 1 - pattern.n / pattern.m : undefined;
}

/** Weights of one output per input channel: kh*kw for an OIHW conv weight, 1 for a Linear's. */
export function spatialOf(dims: readonly number[]): number {
  return dims.slice(2).reduce((a, b) => a * b, 1);
}

/**
 * Checks that a weight of `outputs` x `reduction` (`spatial` kernel positions per input channel)
 * can be cut into the pattern's units: units along the reduction run over input channels, so M (or
 * the block width) must divide the input channels per kernel position.
 * @throws RangeError ERR_KILN_INVALID_ARG naming the layer when M (or a block side) does not divide its dimension
 */
export function checkPatternFits(pattern: Pattern, layer: string, outputs: number, reduction: number, spatial = 1): void {
  const channels = reduction / spatial;
  const what = spatial === 1 ? `${reduction} (its weights per output)` : `${channels} (its input channels per kernel position or pixel; units along the reduction run over input channels)`;
  const along = spatial === 1 ? 'a reduction size' : 'an input channel count';
  if (pattern.kind === 'n:m') {
    if (channels % pattern.m !== 0) {
      throw new KilnRangeError(`Expected ${along} divisible by M = ${pattern.m} for pattern '${pattern.name}' on layer '${layer}' but received ${what}`);
    }
    return;
  }
  if (outputs % pattern.rows !== 0) {
    throw new KilnRangeError(`Expected an output count divisible by ${pattern.rows} for pattern '${pattern.name}' on layer '${layer}' but received ${outputs}`);
  }
  if (pattern.cols !== 'row' && channels % pattern.cols !== 0) {
    throw new KilnRangeError(`Expected ${along} divisible by ${pattern.cols} for pattern '${pattern.name}' on layer '${layer}' but received ${what}`);
  }
}

/**
 * The OIHW offset, within one output's row, of position `q` of the reduction order (kernel position
 * outer, input channel inner).
 */
export function reductionOffset(q: number, reduction: number, spatial: number): number {
  if (spatial === 1) return q;
  const channels = reduction / spatial;
  return (q % channels) * spatial + Math.floor(q / channels);
}

/** Geometry of a block pattern's units on one weight. */
export interface UnitGrid {
  rows: number;
  cols: number;
  /** Units along the outputs and along the reduction. */
  unitRows: number;
  unitCols: number;
  count: number;
  /** Weights per unit. */
  size: number;
  /** Kernel positions per input channel (see reductionOffset). */
  spatial: number;
}

export function unitGrid(pattern: BlockPattern, outputs: number, reduction: number, spatial = 1): UnitGrid {
  const rows = pattern.rows;
  const cols = pattern.cols === 'row' ? reduction : pattern.cols;
  const unitRows = outputs / rows;
  const unitCols = reduction / cols;
  return { rows, cols, unitRows, unitCols, count: unitRows * unitCols, size: rows * cols, spatial };
}

/** Calls `visit(index)` for every weight index (OIHW / [out, in] memory) of unit `u` (row-major units over the grid). */
export function forEachInUnit(grid: UnitGrid, reduction: number, u: number, visit: (index: number) => void): void {
  const r0 = Math.floor(u / grid.unitCols) * grid.rows;
  const c0 = (u % grid.unitCols) * grid.cols;
  for (let r = r0; r < r0 + grid.rows; r++) {
    const base = r * reduction;
    if (grid.spatial === 1) {
      for (let c = 0; c < grid.cols; c++) visit(base + c0 + c);
    } else {
      for (let c = 0; c < grid.cols; c++) visit(base + reductionOffset(c0 + c, reduction, grid.spatial));
    }
  }
}
