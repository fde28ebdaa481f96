/**
 * Kiln: train, compress and serve convolutional networks from Node.js on native kernels.
 *
 * @packageDocumentation
 */
export { Tensor, DTYPES, sizeOf } from './tensor.js';
export type { DType, DataTypeMap } from './tensor.js';
export { SparseTensor, toSparse, toDense, sparsityOf, validateSparse, sparseProblem, SPARSE_FORMATS, SPARSE_BLOCKS } from './sparse-tensor.js';
export type { SparseFormat, SparsePattern, SparseBlock, SparseDType, SparseParts } from './sparse-tensor.js';
export { KilnError, ErrorCode } from './errors.js';
export type { ErrorCodeValue } from './errors.js';
export { cpuInfo, setIsa, setNumThreads, ISAS } from './system.js';
export { allocFloat32 } from './memory.js';
export type { CpuInfo, Isa } from './system.js';

export * as nn from './nn/index.js';
export * as models from './nn/models.js';
export * as datasets from './data/index.js';
export { DataLoader } from './data/loader.js';
export type { Dataset, Batch } from './data/dataset.js';

export { train, evaluate, Trainer, defaultMnistRecipe } from './train/index.js';
export type { TrainOptions } from './train/index.js';
export * as optim from './train/index.js';

export { save, load, loadGraph } from './runtime/model-io.js';
export type { SaveOptions, SparseSaveOptions } from './runtime/model-io.js';
export { quantize, convertToInt8, prepareForQuantization } from './quant/ptq.js';
export type { QuantizeOptions, QuantizeResult, QuantizeProgress, QuantizationReport, LayerReport, ConvertOptions, CalibrationData } from './quant/ptq.js';
export { quantizeDynamic } from './quant/dynamic.js';
export type { QuantizeDynamicOptions } from './quant/dynamic.js';
export { runInt8Reference } from './quant/reference.js';
export { quantizeAwareTrain, prepareQat, convertQat, QatModel } from './quant/qat.js';
export type { QuantizeAwareTrainOptions, QatResult, PrepareQatOptions, ConvertQatOptions } from './quant/qat.js';
export { prune } from './prune/prune.js';
export { analyzeSensitivity } from './prune/sensitivity.js';
export type { SensitivityOptions, SensitivityReport } from './prune/sensitivity.js';
export type { PruneOptions, PruneResult, PruneReport } from './prune/prune.js';
export * as pruning from './prune/index.js';
export { distill } from './distill/distill.js';
export type { DistillOptions, DistillResult } from './distill/distill.js';
export type { HintOptions } from './distill/hint.js';
export type { Scheduled, ValueSchedule } from './distill/schedule.js';
export type { TeacherSource } from './distill/teacher.js';
export * as distillation from './distill/index.js';
export { compress } from './compress/compress.js';
export type { CompressOptions, CompressResult } from './compress/compress.js';
export type { CompressProgress } from './compress/progress.js';
export { parseRecipe, readRecipe, RECIPE_DEFAULTS } from './compress/recipe.js';
export type { Recipe, Stage, DistillStage, PruneStage, FineTuneStage, QuantizeStage, PackStage, MeasureSettings } from './compress/recipe.js';
export { RECIPE_SCHEMA } from './compress/recipe-schema.js';
export { InferenceSession } from './runtime/session.js';
export type { BatchingOptions, BatchReport, ProfileOptions, ProfileStep, SessionFeeds, SessionOptions, SessionOutputs, SessionProfile } from './runtime/session.js';
export * as onnx from './onnx/index.js';

export type { Graph, GraphNode, ValueInfo } from './graph/ir.js';
export { toGraph } from './graph/from-module.js';
export { optimizeGraph } from './graph/passes/index.js';
export { shrinkGraph, shrinkByImportance, planShrink, planZeroFilters, maskGraph, modelSize } from './prune/shrink/index.js';
export type { Removals, ShrinkReport, ShrinkPlan, ShrinkPlanOptions, ShrinkGroup, ModelSize, ZeroFilterPlanOptions } from './prune/shrink/index.js';
export { Module } from './nn/module.js';
export type { Parameter, LayerConfig } from './nn/module.js';
export { renderReport, readRunRecord } from './report/index.js';
export { RUN_RECORD_FORMAT, RUN_RECORD_VERSION } from './compress/record.js';
export type { RunRecord, StageRecord, StageKind, AttemptRecord, CurvePoint, LatencyCell, LayerRecord, SensitivityRecord } from './compress/record.js';
export { createServer, ServeMetrics, SERVE_DEFAULTS } from './serve/index.js';
export type { KilnServer, ServableModel, ServeOptions } from './serve/index.js';
