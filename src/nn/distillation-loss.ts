/**
 * Hinton's distillation loss on logits:
 *   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels).
 * Computed in JS with float64 sums: a batch is a few hundred to a few thousand logits, far below
 * the cost of a native round trip, and the T-scaled softmaxes are not what the native kernel does.
 */
import { Tensor } from '../tensor.js';
import { number, rangeError, shapeError, typeError } from '../validate.js';
import { checkLogits } from './losses.js';
import type { LossResult } from './losses.js';

export interface DistillationLossOptions {
  /** Softmax temperature T > 0 (finite). */
  temperature: number;
  /** Weight of the soft (teacher) term, in [0, 1]; 1 - alpha weighs the hard-label cross-entropy. */
  alpha: number;
}

/** Checks T > 0 finite and alpha in [0, 1]; `where` prefixes the option names in messages. */
export function checkDistillationOptions(options: unknown, where = 'options'): DistillationLossOptions {
  if (options === null || typeof options !== 'object') throw typeError(where, 'an object with temperature and alpha', options);
  const o = options as Partial<DistillationLossOptions>;
  const temperature = number(`${where}.temperature`, o.temperature, 0, Infinity);
  // number() accepts the closed bound 0, and T = 0 divides by zero.
  if (temperature === 0) throw rangeError(`${where}.temperature`, 'a number > 0', temperature);
  const alpha = number(`${where}.alpha`, o.alpha, 0, 1);
  return { temperature, alpha };
}

/**
 * Mean distillation loss over the batch and, when `withGrad` (default true), its gradient with
 * respect to the student logits: alpha * T * (softmax(s/T) - softmax(t/T)) + (1 - alpha) * (softmax(s) - onehot),
 * divided by N. The T^2 factor keeps the soft term's gradient scale independent of T.
 * @param student student logits [N, classes] (float32)
 * @param teacher teacher logits, the same shape (a Tensor or its data)
 * @param labels N class indices in [0, classes)
 * @throws RangeError ERR_KILN_SHAPE_MISMATCH when the teacher logits do not match the student's;
 *   RangeError ERR_KILN_INVALID_ARG for T <= 0 or alpha outside [0, 1]
 */
export function distillationLoss(
  student: Tensor<'float32'>,
  teacher: Tensor<'float32'> | Float32Array,
  labels: Int32Array,
  options: DistillationLossOptions,
  withGrad = true,
): LossResult {
  const [rows, cols] = checkLogits(student, labels);
  const t = teacher instanceof Tensor ? teacher.data : teacher;
  if (!(t instanceof Float32Array)) throw typeError('teacher', 'a float32 Tensor or Float32Array of logits', teacher);
  if (teacher instanceof Tensor && (teacher.dims.length !== 2 || teacher.dims[0] !== rows || teacher.dims[1] !== cols)) {
    throw shapeError('teacher logits', `[${rows}, ${cols}] like the student logits`, `[${teacher.dims.join(', ')}]`);
  }
  if (t.length !== rows * cols) throw shapeError('teacher logits', `${rows * cols} values (${rows} x ${cols})`, `${t.length}`);
  const { temperature: T, alpha } = checkDistillationOptions(options);
  const s = student.data;
  const losses = new Float32Array(rows);
  const grad = withGrad ? new Float32Array(rows * cols) : undefined;
  const ps = new Float64Array(cols);
  const pt = new Float64Array(cols);
  const p1 = new Float64Array(cols);
  let total = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const logZs = logSoftmax(s, o, cols, T, ps);
    const logZt = logSoftmax(t, o, cols, T, pt);
    const logZ1 = logSoftmax(s, o, cols, 1, p1);
    // KL = sum_j p_t (log p_t - log p_s), with log p = z/T - logZ.
    let kl = 0;
    for (let j = 0; j < cols; j++) {
      if (pt[j] > 0) kl += pt[j] * (t[o + j] / T - logZt - (s[o + j] / T - logZs));
    }
    const ce = logZ1 - s[o + labels[i]];
    const loss = alpha * T * T * kl + (1 - alpha) * ce;
    losses[i] = loss;
    total += loss;
    if (grad) {
      for (let j = 0; j < cols; j++) {
        const hard = p1[j] - (j === labels[i] ? 1 : 0);
        grad[o + j] = (alpha * T * (ps[j] - pt[j]) + (1 - alpha) * hard) / rows;
      }
    }
  }
  return { loss: total / rows, losses, ...(grad ? { grad: new Tensor('float32', grad, [rows, cols]) } : {}) };
}

/** Writes softmax(z[o..o+n) / T) into `p` and returns log of its normaliser (after the max shift, plus the max). */
function logSoftmax(z: Float32Array, o: number, n: number, T: number, p: Float64Array): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, z[o + j] / T);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    p[j] = Math.exp(z[o + j] / T - max);
    sum += p[j];
  }
  for (let j = 0; j < n; j++) p[j] /= sum;
  return max + Math.log(sum);
}
