/** Classification metrics computed from logits in one pass (N x classes is small per batch). */

/** Number of rows whose largest logit is at the label (first index wins ties). */
export function countCorrect(logits: Float32Array, labels: Int32Array, rows: number, cols: number): number {
  let correct = 0;
  for (let i = 0; i < rows; i++) if (argmaxRow(logits, i, cols) === labels[i]) correct++;
  return correct;
}

/** Adds each row's (label, prediction) to a row-major confusion matrix [classes x classes]. */
export function addToConfusion(confusion: Int32Array, logits: Float32Array, labels: Int32Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) confusion[labels[i] * cols + argmaxRow(logits, i, cols)]++;
}

function argmaxRow(logits: Float32Array, row: number, cols: number): number {
  const base = row * cols;
  let best = 0;
  let bestValue = logits[base];
  for (let j = 1; j < cols; j++) {
    const v = logits[base + j];
    // NaN never wins, so a diverged row predicts class 0 rather than reading garbage.
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}
