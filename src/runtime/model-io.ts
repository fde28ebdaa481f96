/**
 * `save` / `load`: a trained Module to and from a `.kiln` file. The file's model JSON holds the
 * layer config (and the per-image input shape when known); its tensors are the parameters and
 * buffers, by their dotted names. `save` also takes a Graph (an int8 graph from `quantize`, an
 * imported ONNX graph): see graph-file.ts; `loadGraph` reads either kind back as a Graph.
 *
 * With `sparse: 'auto'`, `save` stores a weight as a packed sparse tensor (CSR or blocked CSR)
 * wherever that takes fewer bytes than the dense form; `load` unpacks it, so the module or graph
 * that comes back holds exactly the saved values (a -0 comes back as +0).
 */
import { ErrorCode, KilnError } from '../errors.js';
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import { Module } from '../nn/module.js';
import type { LayerConfig } from '../nn/module.js';
import { moduleFromConfig } from '../nn/registry.js';
import { SPARSE_FORMATS, toSparse } from '../sparse-tensor.js';
import type { SparseFormat, SparseTensor } from '../sparse-tensor.js';
import type { Tensor } from '../tensor.js';
import { dims as checkDims, options as checkOptions, rangeError, string, typeError } from '../validate.js';
import { graphFromKilnFile, graphToKiln } from './graph-file.js';
import { kilnStoredBytes, readKilnFile, writeKilnFile } from './kiln-file.js';

export { kilnStoredBytes } from './kiln-file.js';
import type { KilnFile } from './kiln-file.js';

export { graphFromKilnFile, type SavedGraphJson } from './graph-file.js';

/** The `model` value of a `.kiln` file written by {@link save}. */
export interface SavedModuleJson {
  kind: 'module';
  /** `module.config()`. */
  config: LayerConfig;
  /** Shape of one input image without the batch dimension, e.g. [1, 28, 28], when known. */
  inputShape?: number[];
}

export interface SaveOptions {
  /** Free-form JSON stored in the file: accuracy, provenance, training recipe... */
  metadata?: Record<string, unknown>;
  /**
   * Shape of one input without the batch dimension (e.g. [1, 28, 28]). Checked against the model
   * (`module.outputShape`) and stored so tools can show it. Default: the module's own
   * `inputShape` property if it has one, else not stored.
   */
  inputShape?: readonly number[];
  /**
   * Which tensors to store packed sparse: 'never' (the default: every tensor dense, a file any
   * Kiln reader takes), 'auto' (every float32 or int8 tensor whose packed form, in the smallest of
   * the formats, takes fewer file bytes than its dense form), or an object narrowing 'auto' to
   * some tensors and formats. Loading gives the same values back either way.
   */
  sparse?: 'never' | 'auto' | SparseSaveOptions;
}

/** `save`'s `sparse` option in full. */
export interface SparseSaveOptions {
  /** Names of the tensors that may be stored sparse (default: all). Each must exist. */
  tensors?: readonly string[];
  /** Formats to try (default: all of {@link SPARSE_FORMATS}); the smallest file wins. */
  formats?: readonly SparseFormat[];
}

/** Header JSON a sparse entry adds over a dense one (its params.sparse), roughly. */
const SPARSE_HEADER_BYTES = 192;


/**
 * The tensors to write: each one the `sparse` option allows is replaced by its smallest packed
 * form when that is smaller in the file than the dense form.
 */
function chooseStorage(tensors: Map<string, Tensor>, option: SaveOptions['sparse']): Map<string, Tensor | SparseTensor> {
  if (option === undefined || option === 'never') return tensors;
  let names: ReadonlySet<string> | undefined;
  let formats: readonly SparseFormat[] = SPARSE_FORMATS;
  if (typeof option === 'string' && option !== 'auto') throw rangeError('options.sparse', "'never', 'auto' or { tensors?, formats? }", option);
  if (option !== 'auto') {
    const o = checkOptions<SparseSaveOptions>('options.sparse', option);
    if (o.tensors !== undefined) {
      if (!Array.isArray(o.tensors)) throw typeError('options.sparse.tensors', 'an array of tensor names', o.tensors);
      for (const name of o.tensors) if (!tensors.has(name)) throw rangeError('options.sparse.tensors', `names of the model's tensors (${[...tensors.keys()].join(', ')})`, name);
      names = new Set(o.tensors);
    }
    if (o.formats !== undefined) {
      if (!Array.isArray(o.formats) || o.formats.length === 0) throw typeError('options.sparse.formats', 'a non-empty array of sparse formats', o.formats);
      for (const f of o.formats) if (!SPARSE_FORMATS.includes(f)) throw rangeError('options.sparse.formats', `formats among ${SPARSE_FORMATS.join(', ')}`, f);
      formats = o.formats;
    }
  }
  const out = new Map<string, Tensor | SparseTensor>();
  for (const [name, t] of tensors) {
    let best: Tensor | SparseTensor = t;
    if ((names === undefined || names.has(name)) && (t.type === 'float32' || t.type === 'int8') && t.dims.length >= 1 && t.size > 0) {
      let bestBytes = kilnStoredBytes(t);
      for (const f of formats) {
        const s = toSparse(t, f);
        const bytes = kilnStoredBytes(s) + SPARSE_HEADER_BYTES;
        if (bytes < bestBytes) {
          best = s;
          bestBytes = bytes;
        }
      }
    }
    out.set(name, best);
  }
  return out;
}

function isGraph(v: unknown): v is Graph {
  return v !== null && typeof v === 'object' && Array.isArray((v as Graph).nodes) && (v as Graph).initializers instanceof Map;
}

/**
 * Saves a Module (its config, parameters and buffers) or a Graph (nodes, initializers as stored:
 * int8 weights, int32 biases, float scales, attributes). The file is written atomically (a
 * temporary file renamed over `path`), so a crash never leaves a half-written model.
 * @throws TypeError/RangeError for bad arguments, a shape error when `inputShape` does not fit the model.
 */
export async function save(module: Module | Graph, path: string, options?: SaveOptions): Promise<void> {
  if (isGraph(module)) {
    string('path', path);
    const opts = checkOptions<SaveOptions>('options', options);
    if (opts.inputShape !== undefined) throw typeError('options.inputShape', 'nothing for a Graph (its inputs carry their shapes)', opts.inputShape);
    const { model, tensors } = graphToKiln(module);
    await writeKilnFile(path, { model, tensors: chooseStorage(tensors, opts.sparse), metadata: opts.metadata ?? {} });
    return;
  }
  if (!(module instanceof Module)) throw typeError('module', 'a Module or a Graph', module);
  string('path', path);
  const opts = checkOptions<SaveOptions>('options', options);
  const ownShape = (module as { inputShape?: unknown }).inputShape;
  const shapeOption = opts.inputShape ?? (Array.isArray(ownShape) ? ownShape : undefined);
  const model: SavedModuleJson = { kind: 'module', config: module.config() };
  if (shapeOption !== undefined) {
    const inputShape = checkDims('options.inputShape', shapeOption);
    module.outputShape([1, ...inputShape]);
    model.inputShape = inputShape;
  }

  const tensors = new Map<string, Tensor>();
  for (const { name, value } of [...module.parameters().map((p) => ({ name: p.name, value: p.value })), ...module.buffers()]) {
    if (tensors.has(name)) throw rangeError('module', 'distinct parameter and buffer names', name);
    tensors.set(name, value);
  }
  await writeKilnFile(path, { model, tensors: chooseStorage(tensors, opts.sparse), metadata: opts.metadata ?? {} });
}

/**
 * Loads a Module saved by {@link save}, from a path or the file's bytes. The module comes back in
 * eval mode (call `.train()` to fine-tune it).
 * @throws KilnError `ERR_KILN_CORRUPT_MODEL` when the file is corrupt or its tensors do not match
 *   the model (a missing, extra or wrongly shaped tensor); `ERR_KILN_UNSUPPORTED_OP` for a layer
 *   type this version does not know; ERR_KILN_FILE_NOT_FOUND / ERR_KILN_NOT_A_FILE /
 *   ERR_KILN_PERMISSION naming the path when it cannot be read.
 */
export async function load(pathOrBytes: string | Uint8Array): Promise<Module> {
  const file = await readKilnFile(pathOrBytes);
  const source = typeof pathOrBytes === 'string' ? pathOrBytes : undefined;
  if ((file.model as { kind?: unknown } | null)?.kind === 'graph') {
    throw new KilnError(ErrorCode.INVALID_ARG, `Expected a .kiln file holding a Module for pathOrBytes but received one holding a Graph${source ? ` (${source})` : ''}: read it with loadGraph() or InferenceSession.create()`);
  }
  return moduleFromKilnFile(file, source);
}

/**
 * Loads a `.kiln` file as a Graph: a saved Graph (e.g. an int8 graph from `quantize`) as stored, or
 * a saved Module lowered with its stored input shape (or `inputShape`).
 * @throws KilnError ERR_KILN_CORRUPT_MODEL when the file or its graph is corrupt (an int8 tensor of
 *   the wrong dtype or length, a non-positive scale, an out-of-range zero point...)
 */
export async function loadGraph(pathOrBytes: string | Uint8Array, inputShape?: readonly number[]): Promise<Graph> {
  const file = await readKilnFile(pathOrBytes);
  return graphFromAnyKilnFile(file, typeof pathOrBytes === 'string' ? pathOrBytes : undefined, inputShape);
}

/** The Graph of a decoded `.kiln` file of either kind (a Module is lowered with its input shape). */
export function graphFromAnyKilnFile(file: KilnFile, source?: string, inputShape?: readonly number[]): Graph {
  if ((file.model as { kind?: unknown } | null)?.kind === 'graph') return graphFromKilnFile(file, source);
  const module = moduleFromKilnFile(file, source);
  const stored = (file.model as { inputShape?: unknown } | null)?.inputShape;
  const shape = inputShape ?? (Array.isArray(stored) ? checkDims('inputShape stored in the .kiln file', stored) : undefined);
  if (!shape) throw typeError('inputShape', 'one image shape (the .kiln file does not store it)', undefined);
  return toGraph(module, shape);
}

/** Builds the Module held by an already decoded `.kiln` file (see {@link load}). */
export function moduleFromKilnFile(file: KilnFile, source?: string): Module {
  const fail = (what: string, cause?: unknown): never => {
    throw new KilnError(ErrorCode.CORRUPT_MODEL, `Invalid model in .kiln file${source === undefined ? '' : ` ${source}`}: ${what}`, { cause });
  };
  const model = file.model as Partial<SavedModuleJson> | null;
  if (model === null || typeof model !== 'object' || Array.isArray(model) || model.kind !== 'module') {
    fail(`expected a saved Module (model.kind 'module'), found ${JSON.stringify(file.model)?.slice(0, 60)}`);
  }
  let module: Module;
  try {
    module = moduleFromConfig(model!.config as LayerConfig);
  } catch (err) {
    // A layer type from a newer Kiln is unsupported, not corrupt: keep that code.
    if (err instanceof KilnError && err.code === ErrorCode.UNSUPPORTED_OP) throw err;
    return fail(`its layer config is invalid: ${(err as Error).message}`, err);
  }

  const expected = [...module.parameters().map((p) => ({ name: p.name, value: p.value })), ...module.buffers()];
  const used = new Set<string>();
  for (const { name, value } of expected) {
    const stored = file.tensors.get(name);
    if (stored === undefined) fail(`it has no tensor '${name}', which the model needs`);
    if (stored!.type !== 'float32') fail(`tensor '${name}' is ${stored!.type}, expected float32`);
    if (stored!.dims.length !== value.dims.length || stored!.dims.some((d, i) => d !== value.dims[i])) {
      fail(`tensor '${name}' has dims [${stored!.dims.join(', ')}], the model needs [${value.dims.join(', ')}]`);
    }
    used.add(name);
  }
  for (const name of file.tensors.keys()) if (!used.has(name)) fail(`it holds tensor '${name}', which the model does not use`);
  // Everything checked: now copy, so a bad file never leaves a half-loaded module behind.
  for (const { name, value } of expected) value.data.set(file.tensors.get(name)!.data as Float32Array);
  if (Array.isArray(model!.inputShape)) {
    try {
      const shape = checkDims('inputShape', model!.inputShape);
      module.outputShape([1, ...shape]);
      module.inputShape = Object.freeze(shape);
    } catch (err) {
      fail(`its input shape ${JSON.stringify(model!.inputShape)} does not fit the model: ${(err as Error).message}`, err);
    }
  }
  return module.eval();
}
