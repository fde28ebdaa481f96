/**
 * The measured half of the quantization report: per layer (and per quantized Add), the clipping
 * fraction of its fp32 output on the calibration batches (values the int8 node saturates) and the
 * SQNR of its int8 output against fp32, the int8 graph run on the reference interpreter (src/quant/reference.ts), so the
 * figure is cumulative: errors of earlier layers included.
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { Graph } from '../graph/ir.js';
import type { Tensor } from '../tensor.js';
import type { CalibrationImages } from './calibration-data.js';
import type { LayerReport, QuantizationReport } from './ptq-report.js';
import { storageRange } from './qparams.js';
import { runInt8Reference } from './reference.js';

export interface MeasureContext {
  inputName: string;
  batches: number;
  /** The fp32 graph's values for calibration batch b (every layer output included). */
  runBatch: (b: number) => Promise<Record<string, Tensor>>;
  reportImages: number;
  images: CalibrationImages;
  onProgress?: (p: { phase: 'measure'; done: number; total: number }) => void;
}

/** What a measured node reports: its output in both graphs and where the figures go. */
type MeasuredOutput = Pick<LayerReport, 'node' | 'output' | 'outputScale' | 'outputZeroPoint' | 'outputDtype' | 'clippingFraction' | 'sqnrDb'>;

/** Images per reference-interpreter call (bounds the memory of its intermediate values). */
const REFERENCE_CHUNK = 16;

export async function measureLayers(graph: Graph, report: QuantizationReport, ctx: MeasureContext): Promise<void> {
  // Quantized Adds are measured like layers (same output fields).
  const layers: MeasuredOutput[] = [...report.layers, ...(report.adds ?? [])];
  const clipped = layers.map(() => 0);
  const seen = layers.map(() => 0);
  const fp32 = layers.map((): Float32Array[] => []);
  let kept = 0;
  const keep = Math.min(ctx.reportImages, ctx.images.count);
  for (let b = 0; b < ctx.batches; b++) {
    const values = await ctx.runBatch(b);
    const batch = values[ctx.inputName].dims[0];
    const take = Math.max(0, Math.min(batch, keep - kept));
    layers.forEach((layer, i) => {
      const data = values[layer.output].data as Float32Array;
      if (take > 0) fp32[i].push(data.slice(0, (data.length / batch) * take));
      if (layer.outputScale === undefined) return;
      const { qmin, qmax } = storageRange(layer.outputDtype as 'uint8' | 'int8');
      const lo = qmin - 0.5;
      const hi = qmax + 0.5;
      const s = layer.outputScale;
      const zp = layer.outputZeroPoint!;
      let n = 0;
      for (let k = 0; k < data.length; k++) {
        const q = data[k] / s + zp;
        if (q < lo || q > hi) n++;
      }
      clipped[i] += n;
      seen[i] += data.length;
    });
    kept += take;
    ctx.onProgress?.({ phase: 'measure', done: b + 1, total: ctx.batches });
  }
  layers.forEach((layer, i) => {
    if (layer.outputScale !== undefined && seen[i] > 0) layer.clippingFraction = clipped[i] / seen[i];
  });
  report.measuredWith = `clippingFraction: fp32 outputs on ${report.calibration.images ?? '?'} calibration images; no sqnrDb (reportImages 0)`;
  if (kept === 0) return;

  const int8Value = new Map(graph.nodes.map((n) => [n.name, n.outputs[0]]));
  const names = layers.map((l) => int8Value.get(l.node)!);
  const signal = layers.map(() => 0);
  const noise = layers.map(() => 0);
  const offsets = layers.map(() => ({ chunk: 0, at: 0 }));
  for (let start = 0; start < kept; start += REFERENCE_CHUNK) {
    const n = Math.min(REFERENCE_CHUNK, kept - start);
    let out: Record<string, Tensor>;
    try {
      out = runInt8Reference(graph, { [ctx.inputName]: ctx.images.slice(start, n) }, { values: names });
    } catch (err) {
      // A float op the reference does not know: the report goes without SQNR figures and says why.
      if (!(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
      report.measuredWith = `clippingFraction: fp32 outputs on ${report.calibration.images ?? '?'} calibration images; no sqnrDb: ${err.message}`;
      return;
    }
    layers.forEach((layer, i) => {
      const t = out[names[i]];
      const zp = layer.outputZeroPoint ?? 0;
      const s = layer.outputScale ?? 1;
      const dequantized = t.type === 'float32';
      // Walk the stored fp32 chunks in step with this reference chunk.
      const o = offsets[i];
      for (let k = 0; k < t.size; k++) {
        while (o.at >= fp32[i][o.chunk].length) {
          o.chunk++;
          o.at = 0;
        }
        const ref = fp32[i][o.chunk][o.at++];
        const approx = dequantized ? t.data[k] : (t.data[k] - zp) * s;
        signal[i] += ref * ref;
        noise[i] += (ref - approx) * (ref - approx);
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  layers.forEach((layer, i) => {
    layer.sqnrDb = noise[i] === 0 ? Infinity : 10 * Math.log10(signal[i] / noise[i]);
  });
  report.measuredWith =
    `clippingFraction: fp32 outputs on ${report.calibration.images ?? '?'} calibration images; ` +
    `sqnrDb: the int8 graph on the reference interpreter (src/quant/reference.ts) against fp32 on the first ${kept} calibration images, errors of earlier layers included`;
}
