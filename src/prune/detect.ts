/**
 * Which sparsity pattern a weight's zeros follow, read from the zeros alone (for `kiln info` on any
 * model, pruned by Kiln or elsewhere). The weight is seen as the matrix [outputs, reduction] the
 * patterns are defined on (patterns.ts).
 */

/** What `detectPattern` can answer: a pattern name of `PATTERNS`, or 'dense' for a weight without zeros. */
export type DetectedPattern = 'dense' | 'unstructured' | '1:4' | '2:4' | '4:8' | 'block8x1' | 'block4x1' | 'block1x4' | 'filter';

const NM: readonly (readonly [number, number])[] = [[1, 4], [2, 4], [4, 8]];
const BLOCKS: readonly (readonly [number, number, DetectedPattern])[] = [[8, 1, 'block8x1'], [4, 1, 'block4x1'], [1, 4, 'block1x4']];

/**
 * The most specific pattern the zeros of `data` (row-major [outputs, reduction]; `spatial` weights
 * per input channel, kh*kw for an OIHW conv, whose units along the reduction run over input
 * channels at one kernel position, as patterns.ts defines them) follow:
 * - 'filter': every zero lies in an all-zero output row;
 * - N:M (1:4, then 2:4, then 4:8): every group of M consecutive reduction elements has at most N
 *   non-zeros and at least 90% of the groups exactly N (so a very sparse unstructured weight,
 *   whose groups hold fewer, is not mistaken for one);
 * - 'block8x1' / 'block4x1' / 'block1x4': every zero lies in an all-zero block (rows x cols);
 * - 'unstructured' otherwise, 'dense' without zeros.
 */
export function detectPattern(data: ArrayLike<number>, outputs: number, reduction: number, spatial = 1): DetectedPattern {
  if (!(outputs > 0 && reduction > 0) || data.length !== outputs * reduction) return 'unstructured';
  if (!(spatial >= 1 && reduction % spatial === 0)) spatial = 1;
  // The q-th weight of a row in the reduction order (kernel position outer, channel inner).
  const channels = reduction / spatial;
  const at = (row: number, q: number): number => data[row * reduction + (spatial === 1 ? q : (q % channels) * spatial + Math.floor(q / channels))];
  let zeros = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
  if (zeros === 0) return 'dense';
  let rowZeros = 0;
  for (let o = 0; o < outputs; o++) {
    let all = true;
    for (let k = o * reduction; k < (o + 1) * reduction && all; k++) all = data[k] === 0;
    if (all) rowZeros += reduction;
  }
  if (rowZeros === zeros) return 'filter';
  for (const [n, m] of NM) {
    if (channels % m !== 0) continue;
    let fits = true;
    let exact = 0;
    const groups = data.length / m;
    const perRow = reduction / m;
    for (let g = 0; g < groups && fits; g++) {
      let nonZero = 0;
      const row = Math.floor(g / perRow), q0 = (g % perRow) * m;
      for (let q = q0; q < q0 + m; q++) if (at(row, q) !== 0) nonZero++;
      if (nonZero > n) fits = false;
      else if (nonZero === n) exact++;
    }
    if (fits && exact >= 0.9 * groups) return `${n}:${m}` as DetectedPattern;
  }
  for (const [rows, cols, name] of BLOCKS) {
    if (outputs % rows !== 0 || channels % cols !== 0) continue;
    let inBlocks = 0;
    for (let r0 = 0; r0 < outputs; r0 += rows) {
      for (let c0 = 0; c0 < reduction; c0 += cols) {
        let all = true;
        for (let r = r0; r < r0 + rows && all; r++) for (let c = c0; c < c0 + cols && all; c++) all = at(r, c) === 0;
        if (all) inBlocks += rows * cols;
      }
    }
    if (inBlocks === zeros) return name;
  }
  return 'unstructured';
}
