/** The per-layer quantization report: what `quantize`, `convertToInt8` and `quantizeAwareTrain` return. */
import type { QuantKind } from './qparams.js';

/** One quantized Conv / Gemm / MatMul. */
export interface LayerReport {
  /** Name of the node in the float graph. */
  node: string;
  /** The float op it replaced ('Conv', 'Gemm', 'MatMul'). */
  op: string;
  /** Its input and output value names in the prepared float graph. */
  input: string;
  output: string;
  /** The int8 op that replaced it ('QLinearConv', 'QLinearGemm'). */
  int8Op: string;
  /** A MatMul's bias Add folded into the int8 Gemm's bias (`output` is then the Add's). */
  fusedNode?: string;
  /** Input quantization (absent for dynamic layers, which quantize their input per call). */
  inputScale?: number;
  inputZeroPoint?: number;
  /** Quantized output parameters; absent when the layer dequantizes its output (a float32 output). */
  outputScale?: number;
  outputZeroPoint?: number;
  outputDtype: QuantKind | 'float32';
  /** Weight scales: one per output channel (perChannel) or one for the tensor. */
  weightScaleMin: number;
  weightScaleMax: number;
  perChannel: boolean;
  /** Fused activation kept by the int8 node ('Relu') if any. */
  activation?: string;
  /**
   * Fraction of the layer's fp32 output values on the calibration data that fall outside the
   * quantized output range (saturated by the int8 layer). Absent for float outputs and until measured.
   */
  clippingFraction?: number;
  /**
   * SQNR (dB) of the layer's output in the int8 graph (dequantized) against the same value in the
   * fp32 graph, on calibration images: cumulative, errors of the earlier layers included.
   */
  sqnrDb?: number;
}

/** One Add of two activations run as a QLinearAdd (no weights; its output range is calibrated). */
export interface AddReport {
  /** Name of the Add node in the float graph. */
  node: string;
  /** Its two input values and its output (the fused Relu's output when there is one), float graph names. */
  inputs: [string, string];
  output: string;
  inputScales: [number, number];
  inputZeroPoints: [number, number];
  outputScale: number;
  outputZeroPoint: number;
  outputDtype: QuantKind;
  /** 'Relu' when a Relu after the Add was fused (`fusedNode` names it) or the Add carried one. */
  activation?: string;
  fusedNode?: string;
  /** As for {@link LayerReport}: the fraction of fp32 outputs the int8 Add saturates, measured by `quantize`. */
  clippingFraction?: number;
  /** As for {@link LayerReport}: SQNR (dB) of the int8 output against fp32, errors of earlier layers included. */
  sqnrDb?: number;
}

/** An elementwise function run as a QLinearLookup: a 256-entry table between two quantized values. */
export interface LookupReport {
  /** The float graph's node (a Sigmoid for SiLU, whose Mul is `fusedNode`). */
  node: string;
  /** 'HardSwish', 'SiLU', 'Sigmoid', ... */
  function: string;
  input: string;
  output: string;
  fusedNode?: string;
}

/** A node left in float32 (with Dequantize/Quantize around it where it borders int8 nodes). */
export interface Fp32Node {
  node: string;
  op: string;
  reason: string;
}

export interface QuantizationReport {
  /** 'static' (calibrated PTQ or QAT) or 'dynamic'. */
  mode: 'static' | 'dynamic';
  weights: { dtype: 'int8'; symmetric: true; perChannel: boolean };
  /** Activation storage: 'uint8' asymmetric or 'int8' symmetric ('uint8' per call for dynamic). */
  activations: QuantKind;
  /** Where the activation ranges came from: a calibration method, 'qat', or 'ranges' (given). */
  calibration: { method: string; percentile?: number; batches?: number; images?: number };
  layers: LayerReport[];
  /** The Adds run as QLinearAdd (absent when there are none). */
  adds?: AddReport[];
  /** The elementwise functions run as QLinearLookup tables (absent when there are none). */
  lookups?: LookupReport[];
  fp32Nodes: Fp32Node[];
  /** How sqnrDb and clippingFraction were measured, when they were. */
  measuredWith?: string;
}

/** The report as stored in `graph.metadata.kiln_quantization` (JSON; Infinity written as a string). */
export function reportJson(report: QuantizationReport): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}
