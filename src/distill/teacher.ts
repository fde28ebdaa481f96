/**
 * The teacher side of distillation: an InferenceSession over whatever the caller gave (Module,
 * Graph, .kiln/.onnx path or bytes, or a session), its logits per batch or cached for a data set,
 * and for hint distillation one intermediate value, made a graph output so the session returns it.
 * Every forward goes through `session.run`, which leaves the event loop for real work.
 */
import { imageBatches } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { ErrorCode, KilnError } from '../errors.js';
import { Module } from '../nn/module.js';
import type { Graph } from '../graph/ir.js';
import { inferShapes } from '../graph/shape-inference.js';
import { graphFrom, InferenceSession } from '../runtime/session.js';
import type { SessionOptions, SessionSource } from '../runtime/session.js';
import { Tensor } from '../tensor.js';
import { rangeError, shapeError, typeError } from '../validate.js';

/** A teacher: anything `InferenceSession.create` accepts, or a session (left open after distilling). */
export type TeacherSource = SessionSource | InferenceSession;

const CHUNK = 256;

/**
 * A session with the teacher's own input shape where it has one (the probe then checks it against
 * the data), else the data's: a Module without `inputShape`, or a .kiln file that does not store it.
 */
async function openSession(source: SessionSource, imageShape: readonly number[], featureValue: string | undefined): Promise<InferenceSession> {
  const create = async (options: SessionOptions): Promise<InferenceSession> => {
    if (featureValue === undefined) return InferenceSession.create(source, options);
    return InferenceSession.create(withOutput(await graphFrom(source, options.inputShape?.slice()), featureValue));
  };
  if (source instanceof Module) return create(source.inputShape ? {} : { inputShape: imageShape.slice() });
  try {
    return await create({});
  } catch (err) {
    const noShape = err instanceof TypeError && (err as { code?: string }).code === ErrorCode.INVALID_ARG && err.message.includes('for options.inputShape');
    if (!noShape) throw err;
    return create({ inputShape: imageShape.slice() });
  }
}

/**
 * A copy of `graph` that also outputs `value` (after the existing outputs, so the logits stay
 * first). The graph passes and the plan keep a graph output as such: no fusion swallows it.
 */
function withOutput(graph: Graph, value: string): Graph {
  if (graph.outputs.some((o) => o.name === value)) return graph;
  const computed = graph.nodes.flatMap((n) => n.outputs).filter(Boolean);
  if (!computed.includes(value)) {
    const some = computed.slice(0, 12).map((v) => `'${v}'`).join(', ');
    throw rangeError('options.hint.teacher', `a value the teacher's graph computes (${some}${computed.length > 12 ? ', ...' : ''})`, value);
  }
  const shape = inferShapes(graph).get(value) ?? ['N'];
  return { ...graph, outputs: [...graph.outputs, { name: value, dtype: 'float32', shape }] };
}

/** One teacher forward: logits [n, classes] and, for a hint, the feature [n, ...featureShape]. */
export interface TeacherOutputs {
  logits: Float32Array;
  feature?: Float32Array;
}

export class Teacher {
  /** `session.run` calls made for the training objective and the probe. */
  runs = 0;
  private constructor(
    readonly session: InferenceSession,
    private readonly owned: boolean,
    readonly numClasses: number,
    /** The hint value's name, when the teacher returns one. */
    readonly featureValue: string | undefined,
    /** The hint value's per-image shape [C, H, W] (empty without a hint). */
    readonly featureShape: readonly number[],
  ) {}

  /** Floats of one image's hint feature (0 without a hint). */
  get featureSize(): number {
    return this.featureValue === undefined ? 0 : this.featureShape.reduce((a, b) => a * b, 1);
  }

  /**
   * Opens the teacher and probes one image of `data`: the input shape must match the data's, and
   * the output must be [1, classes] logits. With `featureValue` (hint distillation) the session
   * also returns that value of the teacher's graph, which must be [1, C, H, W]; an open session
   * must already have it among its outputs.
   */
  static async open(source: TeacherSource, data: Dataset, featureValue?: string): Promise<Teacher> {
    let session: InferenceSession;
    let owned = false;
    if (source instanceof InferenceSession) {
      session = source;
      if (featureValue !== undefined && !session.outputNames.includes(featureValue)) {
        throw rangeError('options.hint.teacher', `one of the open teacher session's outputs (${session.outputNames.map((n) => `'${n}'`).join(', ')}; pass the model itself to read any value)`, featureValue);
      }
    } else if (source instanceof Module || typeof source === 'string' || source instanceof Uint8Array || (source !== null && typeof source === 'object' && 'nodes' in source)) {
      session = await openSession(source, data.imageShape, featureValue);
      owned = true;
    } else {
      throw typeError('teacher', 'a Module, Graph, .kiln/.onnx path or bytes, or an InferenceSession', source);
    }
    try {
      if (session.inputNames.length !== 1) throw shapeError('teacher inputs', 'one input (an image batch)', `${session.inputNames.length} inputs`);
      const want = session.inputShapes[0].slice(1);
      const have = data.imageShape;
      if (want.length !== 3 || want.some((d, i) => typeof d === 'number' && d !== have[i])) {
        throw shapeError('teacher input shape', `[${have.join(', ')}] like the training images`, `[${want.join(', ')}]`);
      }
      const size = have[0] * have[1] * have[2];
      const probe = await session.run({ [session.inputNames[0]]: new Tensor('float32', data.images.slice(0, size), [1, ...have]) });
      const out = probe[session.outputNames[0]];
      if (out.dims.length !== 2 || out.dims[0] !== 1) throw shapeError('teacher output', '[N, classes] logits', `[${out.dims.join(', ')}]`);
      let featureShape: number[] = [];
      if (featureValue !== undefined) {
        const f = probe[featureValue];
        if (f.dims.length !== 4) throw shapeError(`the teacher's '${featureValue}' (options.hint.teacher)`, 'an [N, C, H, W] activation', `[${f.dims.join(', ')}]`);
        featureShape = f.dims.slice(1);
      }
      const teacher = new Teacher(session, owned, out.dims[1], featureValue, featureShape);
      teacher.runs = 1;
      return teacher;
    } catch (err) {
      if (owned) session.release();
      throw err;
    }
  }

  /** Logits (and the hint feature) for a batch of images (copied: the session may reuse its output). */
  async run(input: Tensor<'float32'>): Promise<TeacherOutputs> {
    this.runs++;
    const out = await this.session.run({ [this.session.inputNames[0]]: input });
    const t = out[this.session.outputNames[0]];
    if (t.dims[1] !== this.numClasses) {
      throw new KilnError(ErrorCode.SHAPE_MISMATCH, `The teacher returned [${t.dims.join(', ')}] logits, not ${this.numClasses} classes`);
    }
    if (this.featureValue === undefined) return { logits: t.data.slice() };
    return { logits: t.data.slice(), feature: out[this.featureValue].data.slice() };
  }

  /** Logits [n, classes] for a batch of images. */
  async logits(input: Tensor<'float32'>): Promise<Float32Array> {
    return (await this.run(input)).logits;
  }

  /** Logits for every image of `data`, in order, in chunks of 256 images. */
  async logitsOf(data: Dataset): Promise<Float32Array> {
    return (await this.outputsOf(data, false)).logits;
  }

  /**
   * Logits, and with `withFeature` the hint feature, for every image of `data` in order (chunks of
   * 256 images). The caller decides whether the features fit in memory (`featureSize`).
   */
  async outputsOf(data: Dataset, withFeature: boolean): Promise<TeacherOutputs> {
    const logits = new Float32Array(data.length * this.numClasses);
    const size = this.featureSize;
    const feature = withFeature && size > 0 ? new Float32Array(data.length * size) : undefined;
    for (const { start, images } of imageBatches(data, CHUNK)) {
      const out = await this.run(images);
      logits.set(out.logits, start * this.numClasses);
      if (feature) feature.set(out.feature!, start * size);
    }
    return feature ? { logits, feature } : { logits };
  }

  /** Releases the session when this object created it. */
  close(): void {
    if (this.owned) this.session.release();
  }
}
