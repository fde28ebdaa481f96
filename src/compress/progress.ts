/** Progress events of `compress` (the CLI draws them as bars and lines). */
export interface CompressProgress {
  /** The stage's name, its try (1-based) and how many tries it has (1 + back-off variants). */
  stage: string;
  attempt: number;
  tries: number;
  /**
   * 'start' a try; 'train' after some batches; 'epoch' after an epoch; 'sensitivity' after a layer of
   * the sweep; 'calibrate' after a calibration batch; 'score' a try's held-out accuracy; 'measure' timing.
   */
  phase: 'start' | 'train' | 'epoch' | 'sensitivity' | 'calibrate' | 'score' | 'measure';
  epoch?: number;
  epochs?: number;
  batch?: number;
  batches?: number;
  loss?: number;
  /** Held-out accuracy (after an epoch, or a try's score). */
  accuracy?: number;
  /** 'score': whether the try fits the budget. */
  withinBudget?: boolean;
  /** Free text: what the try does ('sparsity 0.8 block1x4', 'PTQ entropy'). */
  detail?: string;
}
