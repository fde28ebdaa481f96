/**
 * ONNX interchange: import any CNN exported elsewhere, export Kiln models for other runtimes, and
 * check Kiln against onnxruntime-node.
 */
export { importModel } from './import.js';
export type { ImportOptions } from './import.js';
export { exportModel, EXPORT_OPSET } from './export.js';
export type { ExportOptions } from './export.js';
export { compareWithOnnxRuntime, compareGraphWithModel, compareArrays } from './compare.js';
export type { CompareOptions, CompareProgress, ComparisonResult, OutputComparison, NodeComparison } from './compare.js';
export { benchmarkAgainstOrt, benchmarkInput } from './benchmark.js';
export type { OrtBenchmarkOptions, OrtBenchmarkRow } from './benchmark.js';
export { compareInt8WithOnnxRuntime, outputSteps } from './compare-int8.js';
export type { Int8CompareOptions, Int8ComparisonResult, Int8OutputComparison } from './compare-int8.js';
export { isInt8Graph } from '../graph/int8-ir.js';
