/**
 * Sparsity patterns over a weight seen as a matrix [outputs, reduction] (OIHW conv weights: one row
 * of in/groups*kh*kw per output channel; Linear weights [out, in]: one row of `in`). The reduction
 * dimension is contiguous in memory, so a 1x4 block is 4 consecutive weights of one output (one
 * `vpdpbusd` operand), and N:M groups are M consecutive weights of one output.
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

/**
 * Checks that a weight of `outputs` x `reduction` can be cut into the pattern's units.
 * @throws RangeError ERR_KILN_INVALID_ARG naming the layer when M (or a block side) does not divide its dimension
 */
export function checkPatternFits(pattern: Pattern, layer: string, outputs: number, reduction: number): void {
  if (pattern.kind === 'n:m') {
    if (reduction % pattern.m !== 0) {
      throw new KilnRangeError(`Expected a reduction size divisible by M = ${pattern.m} for pattern '${pattern.name}' on layer '${layer}' but received ${reduction} (its weights per output)`);
    }
    return;
  }
  if (outputs % pattern.rows !== 0) {
    throw new KilnRangeError(`Expected an output count divisible by ${pattern.rows} for pattern '${pattern.name}' on layer '${layer}' but received ${outputs}`);
  }
  if (pattern.cols !== 'row' && reduction % pattern.cols !== 0) {
    throw new KilnRangeError(`Expected a reduction size divisible by ${pattern.cols} for pattern '${pattern.name}' on layer '${layer}' but received ${reduction} (its weights per output)`);
  }
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
}

export function unitGrid(pattern: BlockPattern, outputs: number, reduction: number): UnitGrid {
  const rows = pattern.rows;
  const cols = pattern.cols === 'row' ? reduction : pattern.cols;
  const unitRows = outputs / rows;
  const unitCols = reduction / cols;
  return { rows, cols, unitRows, unitCols, count: unitRows * unitCols, size: rows * cols };
}

/** Calls `visit(index)` for every weight index of unit `u` (row-major units over the grid). */
export function forEachInUnit(grid: UnitGrid, reduction: number, u: number, visit: (index: number) => void): void {
  const r0 = Math.floor(u / grid.unitCols) * grid.rows;
  const c0 = (u % grid.unitCols) * grid.cols;
  for (let r = r0; r < r0 + grid.rows; r++) {
    const base = r * reduction + c0;
    for (let c = 0; c < grid.cols; c++) visit(base + c);
  }
}
