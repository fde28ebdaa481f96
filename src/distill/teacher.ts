/**
 * The teacher side of distillation: an InferenceSession over whatever the caller gave (Module,
 * Graph, .kiln/.onnx path or bytes, or a session), its logits per batch or cached for a data set.
 * Every forward goes through `session.run`, which leaves the event loop for real work.
 */
import { imageBatches } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { ErrorCode, KilnError } from '../errors.js';
import { Module } from '../nn/module.js';
import { InferenceSession } from '../runtime/session.js';
import type { SessionSource } from '../runtime/session.js';
import { Tensor } from '../tensor.js';
import { shapeError, typeError } from '../validate.js';

/** A teacher: anything `InferenceSession.create` accepts, or a session (left open after distilling). */
export type TeacherSource = SessionSource | InferenceSession;

const CHUNK = 256;

/**
 * A session with the teacher's own input shape where it has one (the probe then checks it against
 * the data), else the data's: a Module without `inputShape`, or a .kiln file that does not store it.
 */
async function openSession(source: SessionSource, imageShape: readonly number[]): Promise<InferenceSession> {
  if (source instanceof Module) return InferenceSession.create(source, source.inputShape ? {} : { inputShape: imageShape.slice() });
  try {
    return await InferenceSession.create(source);
  } catch (err) {
    const noShape = err instanceof TypeError && (err as { code?: string }).code === ErrorCode.INVALID_ARG && err.message.includes('for options.inputShape');
    if (!noShape) throw err;
    return InferenceSession.create(source, { inputShape: imageShape.slice() });
  }
}

export class Teacher {
  /** `session.run` calls made for the training objective and the probe. */
  runs = 0;
  private constructor(
    readonly session: InferenceSession,
    private readonly owned: boolean,
    readonly numClasses: number,
  ) {}

  /**
   * Opens the teacher and probes one image of `data`: the input shape must match the data's, and
   * the output must be [1, classes] logits.
   */
  static async open(source: TeacherSource, data: Dataset): Promise<Teacher> {
    let session: InferenceSession;
    let owned = false;
    if (source instanceof InferenceSession) session = source;
    else if (source instanceof Module || typeof source === 'string' || source instanceof Uint8Array || (source !== null && typeof source === 'object' && 'nodes' in source)) {
      session = await openSession(source, data.imageShape);
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
      const teacher = new Teacher(session, owned, out.dims[1]);
      teacher.runs = 1;
      return teacher;
    } catch (err) {
      if (owned) session.release();
      throw err;
    }
  }

  /** Logits [n, classes] for a batch of images (copied: the session may reuse its output). */
  async logits(input: Tensor<'float32'>): Promise<Float32Array> {
    this.runs++;
    const out = await this.session.run({ [this.session.inputNames[0]]: input });
    const t = out[this.session.outputNames[0]];
    if (t.dims[1] !== this.numClasses) {
      throw new KilnError(ErrorCode.SHAPE_MISMATCH, `The teacher returned [${t.dims.join(', ')}] logits, not ${this.numClasses} classes`);
    }
    return t.data.slice();
  }

  /** Logits for every image of `data`, in order, in chunks of 256 images. */
  async logitsOf(data: Dataset): Promise<Float32Array> {
    const all = new Float32Array(data.length * this.numClasses);
    for (const { start, images } of imageBatches(data, CHUNK)) all.set(await this.logits(images), start * this.numClasses);
    return all;
  }

  /** Releases the session when this object created it. */
  close(): void {
    if (this.owned) this.session.release();
  }
}
