/**
 * The run record of `compress` (`run.json`): what each stage did to the model and what it cost,
 * measured on held-out data in the same process. `kiln report` draws its page from this alone, so
 * everything a chart needs is here (curves, the sensitivity sweep, per-layer figures, confusion).
 */

/** Format tag and version of the record; a reader refuses other values. */
export const RUN_RECORD_FORMAT = 'kiln-compress-run';
export const RUN_RECORD_VERSION = 1;

export type StageKind = 'distill' | 'prune' | 'fine-tune' | 'quantize' | 'pack';

/** One epoch of a stage's training (distill, prune's fine-tune, fine-tune, QAT). */
export interface CurvePoint {
  /** 0-based epoch within the attempt. */
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  /** Held-out accuracy after the epoch (fraction). */
  valAccuracy?: number;
  lr: number;
  /** Pruning only: the share of zeros in the pruned layers at the epoch's end. */
  sparsity?: number;
}

/** Latency of one (batch, threads) cell, Kiln and ONNX Runtime timed interleaved in one process. */
export interface LatencyCell {
  batch: number;
  threads: number;
  /** Median milliseconds per `run` call (the whole batch). */
  kilnMs: number;
  /** ONNX Runtime on the stage's ONNX export (QDQ for int8); absent when ORT could not load it. */
  ortMs?: number;
}

/** One weighted layer of a stage's model. */
export interface LayerRecord {
  /** Node name in the graph (for Modules: the layer's name in toGraph's graph). */
  name: string;
  /** 'Conv', 'Gemm', 'QLinearConv', ... */
  op: string;
  /** Weight elements (dense count) and the share that are exactly zero. */
  weights: number;
  sparsity: number;
  /** Pattern detected in the weights ('dense', 'unstructured', 'block1x4', '2:4', ...). */
  pattern: string;
  /** Multiply-accumulates per image (dense count). */
  macs: number;
  /** int8 stages: SQNR (dB) of the layer's output against fp32 (quantization report). */
  sqnrDb?: number;
  /** Kernel the runtime chose ('dense', 'sparse ...'), when known. */
  kernel?: string;
}

/** What one try of a stage (its settings, or a backed-off variant) produced. */
export interface AttemptRecord {
  /** The stage's settings for this try (the recipe's, or a back-off variant merged over them). */
  settings: Record<string, unknown>;
  /** Held-out accuracy (fraction) of the model after this try. */
  accuracy: number;
  /** Whether accuracy >= baseline - maxAccuracyDrop. */
  withinBudget: boolean;
  curve: CurvePoint[];
  seconds: number;
}

/** One stage of the pipeline, the accepted try's figures; or the starting model (kind 'original'). */
export interface StageRecord {
  /** 'original', or the stage's name (its `name` in the recipe, default its kind). */
  name: string;
  kind: StageKind | 'original';
  /** Every try in order; the last within budget was kept (empty for 'original'). */
  attempts: AttemptRecord[];
  /** Index into `attempts` of the kept try; absent when no try fitted (the pipeline stopped). */
  accepted?: number;
  /** Figures of the stage's output model (the kept try's), or of the input when none was kept. */
  accuracy: number;
  /** baseline accuracy - accuracy (fraction; negative when it improved). */
  accuracyDrop: number;
  /** Size of the model saved as this stage leaves it (.kiln; dense before 'pack'). */
  fileBytes: number;
  parameters: number;
  /** Dense multiply-accumulates per image, and those with a non-zero weight. */
  macs: number;
  nonZeroMacs: number;
  precision: 'fp32' | 'int8';
  latency: LatencyCell[];
  layers: LayerRecord[];
  seconds: number;
}

/** Accuracy of each layer pruned alone, one-shot, at each tried sparsity (analyzeSensitivity). */
export interface SensitivityRecord {
  baseline: number;
  pattern: string;
  sparsities: number[];
  layers: { name: string; points: { sparsity: number; accuracy: number }[] }[];
}

export interface RunRecord {
  format: typeof RUN_RECORD_FORMAT;
  version: typeof RUN_RECORD_VERSION;
  /** Kiln package version, and the machine the figures come from. */
  kiln: string;
  machine: { cpu: string; isa: string; threads: number; node: string; platform: string };
  /** The recipe as run: defaults filled in, back-off variants explicit. */
  recipe: Record<string, unknown>;
  seed: number;
  dataset: { name: string; trainImages: number; heldOutImages: number; classes: number };
  startedAt: string;
  seconds: number;
  /** stages[0] is the original model; then one per recipe stage that ran. */
  stages: StageRecord[];
  sensitivity?: SensitivityRecord;
  result: {
    /** Name of the stage whose model is the output. */
    stage: string;
    accuracy: number;
    accuracyDrop: number;
    maxAccuracyDrop: number;
    /** false when a stage found no try within budget and the pipeline stopped early. */
    completed: boolean;
    /** Why it stopped early, when it did. */
    stoppedBecause?: string;
    /** Original / output: file size ratio. */
    smaller: number;
    /**
     * Per latency cell: the original and the output model on Kiln timed against each other in one
     * interleaved measurement at the end of the run (so machine load hits both alike), their ratio,
     * and ORT's time on the output stage's export over Kiln's (from that stage's measurement).
     */
    faster: { batch: number; threads: number; originalMs: number; outputMs: number; vsOriginal: number; vsOrt?: number }[];
    /** Confusion matrix of the output model on the held-out set: rows true class, columns predicted. */
    confusion: number[][];
  };
}
