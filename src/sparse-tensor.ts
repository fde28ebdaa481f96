/**
 * `SparseTensor`: a weight packed as compressed sparse rows, the form the `.kiln` file stores and
 * the sparse kernels read.
 *
 * Any weight is viewed as a 2-D matrix: rows = dims[0] (output channels / output features), cols =
 * the product of the other dims (the reduction: inChannels x kh x kw, or inFeatures). A rank-1
 * tensor is rows x 1.
 *
 * - `'csr'`: `rowPtr` (int32, rows + 1), `colIdx` (int32, one per non-zero, strictly increasing
 *   within a row), `values` (one per non-zero).
 * - `'bcsr'` with a block of `br` x `bc` elements (1x4 along the reduction: the unit one `vpdpbusd`
 *   consumes; 4x1 and 8x1 across rows for fp32 micro-kernels): the matrix is cut into
 *   ceil(rows/br) x ceil(cols/bc) blocks; `rowPtr` runs over block rows, `colIdx` holds block
 *   column indices, `values` holds `br * bc` elements per stored block, row-major inside the block.
 *   A block is stored when any of its elements is non-zero. Where rows or cols are not a multiple
 *   of the block, the last blocks stick out of the matrix: those positions are stored as 0.
 *
 * 'csr' is 'bcsr' with a 1x1 block, so both share one set of arrays and one validator.
 * Values are float32 or int8 (int8 codes as they are; their scales and zero points live where
 * they do for dense int8 weights: graph initializers or the file's tensor params).
 *
 * Zero means +0 or -0: `toSparse` drops both, so `toDense(toSparse(t))` equals `t` bit for bit
 * except that a -0 comes back as +0 (NaN payloads and every other value are kept exactly).
 */
import { ErrorCode, KilnError, KilnRangeError } from './errors.js';
import { Tensor } from './tensor.js';
import { typeError } from './validate.js';

export type SparsePattern = 'csr' | 'bcsr';
export type SparseDType = 'float32' | 'int8';
/** A block shape [rows, cols]. */
export type SparseBlock = readonly [number, number];
/**
 * The storage formats by name: 'csr' (unstructured), 'bcsr-1x4' (1 row x 4 reduction elements),
 * 'bcsr-4x1' and 'bcsr-8x1' (4 or 8 rows x 1 reduction element).
 */
export type SparseFormat = 'csr' | 'bcsr-1x4' | 'bcsr-4x1' | 'bcsr-8x1';
export const SPARSE_FORMATS: readonly SparseFormat[] = ['csr', 'bcsr-1x4', 'bcsr-4x1', 'bcsr-8x1'];
/** The block shapes a 'bcsr' tensor may have. */
export const SPARSE_BLOCKS: readonly SparseBlock[] = [[1, 4], [4, 1], [8, 1]];

/** The parts of a sparse tensor (what {@link SparseTensor}'s constructor takes). */
export interface SparseParts {
  dtype: SparseDType;
  /** The logical dense dims (rank >= 1). */
  dims: readonly number[];
  pattern: SparsePattern;
  /** [1, 1] for 'csr'; one of {@link SPARSE_BLOCKS} for 'bcsr'. */
  block: SparseBlock;
  rowPtr: Int32Array;
  colIdx: Int32Array;
  values: Float32Array | Int8Array;
}

const MAX_RANK = 16;

/** Blocked shape of a tensor: rows, cols, block rows and block cols. */
export function sparseGeometry(dims: readonly number[], block: SparseBlock): { rows: number; cols: number; blockRows: number; blockCols: number } {
  const rows = dims[0];
  let cols = 1;
  for (let k = 1; k < dims.length; k++) cols *= dims[k];
  return { rows, cols, blockRows: Math.ceil(rows / block[0]), blockCols: Math.ceil(cols / block[1]) };
}

function showDims(dims: readonly unknown[]): string {
  return `[${dims.map(String).join(', ')}]`;
}

/**
 * What is wrong with `parts`, or undefined when nothing is: every count, row pointer, index and
 * value length is checked, so a tensor that passes can be walked without bounds checks.
 * @param expectDims the dims the layer needs, when known: a mismatch is a problem.
 */
export function sparseProblem(parts: SparseParts, expectDims?: readonly number[]): string | undefined {
  if (parts === null || typeof parts !== 'object') return 'it is not an object';
  const { dtype, dims, pattern, block, rowPtr, colIdx, values } = parts;
  if (dtype !== 'float32' && dtype !== 'int8') return `dtype ${String(dtype)} is not float32 or int8`;
  if (pattern !== 'csr' && pattern !== 'bcsr') return `pattern ${String(pattern)} is not 'csr' or 'bcsr'`;
  if (!Array.isArray(block) || block.length !== 2) return 'block is not a [rows, cols] pair';
  if (pattern === 'csr' ? block[0] !== 1 || block[1] !== 1 : !SPARSE_BLOCKS.some((b) => b[0] === block[0] && b[1] === block[1])) {
    return `block ${showDims(block)} is not ${pattern === 'csr' ? '[1, 1] (csr)' : 'one of [1, 4], [4, 1], [8, 1]'}`;
  }
  if (!Array.isArray(dims) || dims.length < 1 || dims.length > MAX_RANK) return `dims is not an array of 1 to ${MAX_RANK} dimensions`;
  for (const d of dims) if (!Number.isInteger(d) || d < 0 || d > 2 ** 31 - 1) return `dims ${showDims(dims)} has a dimension that is not an integer in [0, 2^31-1]`;
  const { rows, cols, blockRows, blockCols } = sparseGeometry(dims, block);
  if (!Number.isSafeInteger(rows * cols)) return `dims ${showDims(dims)} hold more than 2^53 elements`;
  if (expectDims !== undefined && (expectDims.length !== dims.length || expectDims.some((d, i) => d !== dims[i]))) {
    return `dims ${showDims(dims)} do not match the layer's ${showDims(expectDims)}`;
  }
  if (!(rowPtr instanceof Int32Array)) return 'rowPtr is not an Int32Array';
  if (!(colIdx instanceof Int32Array)) return 'colIdx is not an Int32Array';
  if (!(dtype === 'float32' ? values instanceof Float32Array : values instanceof Int8Array)) return `values is not ${dtype === 'float32' ? 'a Float32Array' : 'an Int8Array'}`;
  const unit = pattern === 'csr' ? 'row' : 'block row';
  if (rowPtr.length !== blockRows + 1) return `row pointers hold ${rowPtr.length} entries, expected ${blockRows + 1} (${blockRows} ${unit}s + 1)`;
  if (rowPtr[0] !== 0) return `row pointer 0 is ${rowPtr[0]}, not 0`;
  const nnz = colIdx.length;
  // Row pointers first, so the index loop below stays inside colIdx.
  for (let r = 0; r < blockRows; r++) {
    const start = rowPtr[r];
    const end = rowPtr[r + 1];
    if (end < start) return `row pointers are not monotonic: rowPtr[${r + 1}] = ${end} < rowPtr[${r}] = ${start}`;
    if (end > nnz) return `rowPtr[${r + 1}] = ${end} runs past the ${nnz} stored column indices`;
  }
  if (rowPtr[blockRows] !== nnz) return `the last row pointer is ${rowPtr[blockRows]}, not the ${nnz} stored column indices`;
  for (let r = 0; r < blockRows; r++) {
    const start = rowPtr[r];
    const end = rowPtr[r + 1];
    for (let k = start; k < end; k++) {
      const c = colIdx[k];
      if (c < 0 || c >= blockCols) {
        return `column index ${c} at position ${k} (${unit} ${r}) is outside the ${unit === 'row' ? 'row' : 'block row'}: ${pattern === 'csr' ? `${cols} columns` : `${blockCols} block columns of ${block[1]}`}`;
      }
      if (k > start && c <= colIdx[k - 1]) return `column indices of ${unit} ${r} are not strictly increasing: ${colIdx[k - 1]} then ${c} at position ${k}`;
    }
  }
  const blockSize = block[0] * block[1];
  if (values.length !== nnz * blockSize) return `${values.length} values stored, expected ${nnz} ${pattern === 'csr' ? 'non-zeros' : `blocks x ${blockSize}`} = ${nnz * blockSize}`;
  // Positions of edge blocks outside the matrix hold 0, so a kernel may read whole blocks.
  if (blockSize > 1 && (rows % block[0] !== 0 || cols % block[1] !== 0)) {
    for (let r = 0; r < blockRows; r++) {
      for (let k = rowPtr[r]; k < rowPtr[r + 1]; k++) {
        for (let i = 0; i < block[0]; i++) {
          for (let j = 0; j < block[1]; j++) {
            if ((r * block[0] + i >= rows || colIdx[k] * block[1] + j >= cols) && values[k * blockSize + i * block[1] + j] !== 0) {
              return `block ${k} holds a non-zero value outside the ${rows} x ${cols} matrix`;
            }
          }
        }
      }
    }
  }
  return undefined;
}

/**
 * Checks a sparse tensor's structure (see {@link sparseProblem}).
 * @throws KilnError ERR_KILN_CORRUPT_MODEL naming what is wrong (and `what`, e.g. the tensor's name).
 */
export function validateSparse(parts: SparseParts, expectDims?: readonly number[], what = 'sparse tensor'): void {
  const problem = sparseProblem(parts, expectDims);
  if (problem !== undefined) throw new KilnError(ErrorCode.CORRUPT_MODEL, `Invalid ${what}: ${problem}`);
}

/** A validated, immutable-by-convention packed sparse tensor. */
export class SparseTensor implements SparseParts {
  readonly dtype: SparseDType;
  readonly dims: readonly number[];
  readonly pattern: SparsePattern;
  readonly block: SparseBlock;
  readonly rowPtr: Int32Array;
  readonly colIdx: Int32Array;
  readonly values: Float32Array | Int8Array;

  /** @throws RangeError (ERR_KILN_INVALID_ARG) naming what is wrong when the parts are inconsistent. */
  constructor(parts: SparseParts) {
    const problem = sparseProblem(parts);
    if (problem !== undefined) throw new KilnRangeError(`Invalid sparse tensor: ${problem}`);
    this.dtype = parts.dtype;
    this.dims = Object.freeze(parts.dims.slice());
    this.pattern = parts.pattern;
    this.block = Object.freeze([parts.block[0], parts.block[1]]) as SparseBlock;
    this.rowPtr = parts.rowPtr;
    this.colIdx = parts.colIdx;
    this.values = parts.values;
  }

  /** 'csr', or 'bcsr-RxC'. */
  get format(): SparseFormat {
    return (this.pattern === 'csr' ? 'csr' : `bcsr-${this.block[0]}x${this.block[1]}`) as SparseFormat;
  }

  /** Stored blocks (non-zeros for 'csr'). */
  get nnz(): number {
    return this.colIdx.length;
  }

  /** Elements of the dense tensor. */
  get size(): number {
    return this.dims.reduce((a, b) => a * b, 1);
  }

  /** Fraction of the dense elements that are not stored (1 for an all-zero tensor, 0 when empty). */
  get sparsity(): number {
    const size = this.size;
    return size === 0 ? 0 : 1 - Math.min(size, this.values.length) / size;
  }

  /** Bytes of the three arrays (without alignment padding). */
  get byteLength(): number {
    return this.rowPtr.byteLength + this.colIdx.byteLength + this.values.byteLength;
  }
}

function parseFormat(format: SparseFormat): { pattern: SparsePattern; block: SparseBlock } {
  switch (format) {
    case 'csr':
      return { pattern: 'csr', block: [1, 1] };
    case 'bcsr-1x4':
      return { pattern: 'bcsr', block: [1, 4] };
    case 'bcsr-4x1':
      return { pattern: 'bcsr', block: [4, 1] };
    case 'bcsr-8x1':
      return { pattern: 'bcsr', block: [8, 1] };
    default:
      throw new KilnRangeError(`Expected format to be one of ${SPARSE_FORMATS.map((f) => `'${f}'`).join(', ')} but received ${JSON.stringify(format)}`);
  }
}

/** Is element `i` of `data` zero (+0 or -0)? Float32 data is tested on its bits so NaN is not zero. */
function zeroTest(data: Float32Array | Int8Array): (i: number) => boolean {
  if (data instanceof Float32Array) {
    const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
    return (i) => (bits[i] & 0x7fffffff) === 0;
  }
  return (i) => data[i] === 0;
}

/**
 * Packs a float32 or int8 tensor (rank >= 1). Exact: zeros are dropped (a block is kept when any
 * of its elements is non-zero), values are copied bit for bit.
 * @param format 'csr' (default) or a blocked format.
 * @throws TypeError/RangeError (ERR_KILN_INVALID_ARG) for another dtype, a scalar, or an unknown format.
 */
export function toSparse(tensor: Tensor, format: SparseFormat = 'csr'): SparseTensor {
  if (!(tensor instanceof Tensor)) throw typeError('tensor', 'a Tensor', tensor);
  if (tensor.type !== 'float32' && tensor.type !== 'int8') throw new KilnRangeError(`Expected tensor to be float32 or int8 but received a ${tensor.type} tensor`);
  if (tensor.dims.length < 1) throw new KilnRangeError('Expected tensor to have rank >= 1 but received a scalar');
  const { pattern, block } = parseFormat(format);
  const [br, bc] = block;
  const { rows, cols, blockRows, blockCols } = sparseGeometry(tensor.dims, block);
  const data = tensor.data as Float32Array | Int8Array;
  const isZero = zeroTest(data);
  const rowPtr = new Int32Array(blockRows + 1);
  const cols32: number[] = [];
  let count = 0;
  for (let r = 0; r < blockRows; r++) {
    const r0 = r * br;
    const r1 = Math.min(rows, r0 + br);
    for (let c = 0; c < blockCols; c++) {
      const c0 = c * bc;
      const c1 = Math.min(cols, c0 + bc);
      let keep = false;
      for (let i = r0; i < r1 && !keep; i++) for (let j = c0; j < c1; j++) if (!isZero(i * cols + j)) { keep = true; break; }
      if (keep) {
        cols32.push(c);
        count++;
      }
    }
    rowPtr[r + 1] = count;
  }
  const colIdx = Int32Array.from(cols32);
  const blockSize = br * bc;
  const values = tensor.type === 'float32' ? new Float32Array(count * blockSize) : new Int8Array(count * blockSize);
  // Copy float32 through their bits so NaN payloads survive.
  const src = data instanceof Float32Array ? new Int32Array(data.buffer, data.byteOffset, data.length) : data;
  const dst = values instanceof Float32Array ? new Int32Array(values.buffer) : values;
  for (let r = 0; r < blockRows; r++) {
    for (let k = rowPtr[r]; k < rowPtr[r + 1]; k++) {
      const c = colIdx[k];
      for (let i = 0; i < br && r * br + i < rows; i++) {
        for (let j = 0; j < bc && c * bc + j < cols; j++) {
          const v = src[(r * br + i) * cols + c * bc + j];
          // Inside a kept block a -0 is stored as +0, as toDense would give it back anyway.
          dst[k * blockSize + i * bc + j] = data instanceof Float32Array && (v & 0x7fffffff) === 0 ? 0 : v;
        }
      }
    }
  }
  return new SparseTensor({ dtype: tensor.type, dims: tensor.dims, pattern, block, rowPtr, colIdx, values });
}

/** Unpacks a sparse tensor into its dense form (exact inverse of {@link toSparse}, -0 aside). */
export function toDense(sparse: SparseTensor): Tensor {
  if (!(sparse instanceof SparseTensor)) throw typeError('sparse', 'a SparseTensor', sparse);
  const { rows, cols, blockRows } = sparseGeometry(sparse.dims, sparse.block);
  const [br, bc] = sparse.block;
  const blockSize = br * bc;
  const size = rows * cols;
  const out = sparse.dtype === 'float32' ? new Float32Array(size) : new Int8Array(size);
  const dst = out instanceof Float32Array ? new Int32Array(out.buffer) : out;
  const values = sparse.values;
  const src = values instanceof Float32Array ? new Int32Array(values.buffer, values.byteOffset, values.length) : values;
  const { rowPtr, colIdx } = sparse;
  for (let r = 0; r < blockRows; r++) {
    for (let k = rowPtr[r]; k < rowPtr[r + 1]; k++) {
      const c = colIdx[k];
      for (let i = 0; i < br && r * br + i < rows; i++) {
        for (let j = 0; j < bc && c * bc + j < cols; j++) dst[(r * br + i) * cols + c * bc + j] = src[k * blockSize + i * bc + j];
      }
    }
  }
  return new Tensor(sparse.dtype, out, sparse.dims);
}

/** Fraction of a float32 or int8 tensor's elements that are zero (+0 or -0). */
export function sparsityOf(tensor: Tensor): number {
  if (!(tensor instanceof Tensor)) throw typeError('tensor', 'a Tensor', tensor);
  if (tensor.size === 0) return 0;
  const data = tensor.data;
  let zeros = 0;
  if (data instanceof Float32Array) {
    const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) === 0) zeros++;
  } else {
    for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
  }
  return zeros / tensor.size;
}
