/**
 * Splitting a comparison's inputs into chunks of rows along the batch axis, so both runtimes run
 * them chunk by chunk: the caller sees progress on long comparisons, and neither runtime holds the
 * activations of thousands of images at once. Outputs are concatenated back along the batch axis.
 */
import type { Graph } from '../graph/ir.js';
import type { InferenceSession } from '../runtime/session.js';
import { castElements } from '../runtime/edge-types.js';
import { type DType, Tensor } from '../tensor.js';
import type { CompareProgress } from './compare.js';

/** Rows per chunk: a few milliseconds of SeedCNN work, enough to amortise a run's overhead. */
export const CHUNK_ROWS = 256;

/**
 * Row ranges [begin, end) covering `batch`; a single range when the graph cannot be split (an input
 * or output whose leading dimension is not the symbolic batch, or feeds that disagree on it).
 */
export function rowRanges(graph: Graph, feeds: Record<string, Tensor<DType>>, batch: number, rows = CHUNK_ROWS): [number, number][] {
  const symbolicLead = (shape: readonly unknown[]): boolean => typeof shape[0] === 'string';
  const splittable =
    graph.inputs.every((i) => symbolicLead(i.shape)) &&
    graph.outputs.every((o) => symbolicLead(o.shape)) &&
    Object.values(feeds).every((t) => t.dims[0] === batch);
  if (!splittable || batch <= rows) return [[0, batch]];
  const ranges: [number, number][] = [];
  for (let b = 0; b < batch; b += rows) ranges.push([b, Math.min(batch, b + rows)]);
  return ranges;
}

/** The feeds' rows [begin, end) (views, no copies). */
export function sliceFeeds<T extends DType>(feeds: Record<string, Tensor<T>>, [begin, end]: [number, number]): Record<string, Tensor<T>> {
  const out: Record<string, Tensor<T>> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const per = t.dims[0] === 0 ? 0 : t.data.length / t.dims[0]!;
    out[name] = new Tensor(t.type, t.data.subarray(begin * per, end * per) as never, [end - begin, ...t.dims.slice(1)]);
  }
  return out;
}

/** Concatenates each named output's chunks (flat arrays, batch-major) into one array. */
export function concatChunks(chunks: Record<string, Float32Array>[]): Record<string, Float32Array> {
  if (chunks.length === 1) return chunks[0]!;
  const out: Record<string, Float32Array> = {};
  for (const name of Object.keys(chunks[0]!)) {
    const parts = chunks.map((c) => c[name]!);
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    out[name] = all;
  }
  return out;
}

/** Rows of a chunk of feeds (their shared leading dimension). */
export function chunkRows(chunk: Record<string, Tensor<DType>>): number {
  return Object.values(chunk)[0]?.dims[0] ?? 1;
}

/** Adds up the rows one runtime has finished and reports them to `onProgress` (if any). */
export function rowCounter(runtime: CompareProgress['runtime'], total: number, onProgress: ((p: CompareProgress) => void) | undefined): (rows: number) => void {
  let done = 0;
  return (rows) => {
    done += rows;
    onProgress?.({ runtime, done, total });
  };
}

/**
 * Every chunk through a Kiln session, `onRows` after each; each output concatenated along the batch
 * axis (a single chunk keeps its outputs' own dims, which need not lead with the batch). Outputs of
 * other types than float32 (a float16 or float64 model) come back as their float32 values, exactly
 * what Kiln computed.
 */
export async function runKilnChunks(
  session: InferenceSession,
  chunks: Record<string, Tensor<DType>>[],
  batch: number,
  onRows: (rows: number) => void,
): Promise<Record<string, Tensor<'float32'>>> {
  const parts: Record<string, Float32Array>[] = [];
  let dims: Record<string, readonly number[]> = {};
  for (const chunk of chunks) {
    const out = await session.run<DType>(chunk);
    parts.push(Object.fromEntries(Object.entries(out).map(([k, t]) => [k, asFloat32(t.data, t.type)])));
    dims = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.dims]));
    onRows(chunkRows(chunk));
  }
  return Object.fromEntries(
    Object.entries(concatChunks(parts)).map(([k, data]) => [k, new Tensor('float32', data, chunks.length === 1 ? dims[k]! : [batch, ...dims[k]!.slice(1)])]),
  );
}

/** Elements of any dtype as float32 values (the array itself when it is float32 already). */
export function asFloat32(data: Tensor<DType>['data'], type: DType): Float32Array {
  return type === 'float32' ? (data as Float32Array) : castElements(data as never, type, 'float32');
}
