/**
 * An onnxruntime-node session behind the server's {@link ServableModel} interface, so the same HTTP
 * code serves ORT: the reference point of the serving load bench (`kiln serve --runtime onnxruntime`).
 * onnxruntime-node is imported only when such a model is opened (src/onnx/onnxruntime.ts).
 */
import type * as Ort from 'onnxruntime-node';

import { ErrorCode, KilnError } from '../errors.js';
import { loadOnnxRuntime } from '../onnx/onnxruntime.js';
import { type DataTypeMap, type DType, Tensor } from '../tensor.js';
import type { ServableModel } from './server.js';

/** ORT tensor types Kiln has a Tensor type for. */
const ORT_TYPES: Readonly<Record<string, DType>> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16',
  int32: 'int32', uint32: 'uint32', int64: 'int64', uint64: 'uint64', bool: 'bool',
};

export interface OrtModelOptions {
  /** ORT's intraOpNumThreads (0: its default, every core). */
  intraOpNumThreads?: number;
  /** ORT's session.intra_op.allow_spinning (default true, ORT's own default). */
  allowSpinning?: boolean;
}

/** Opens an ONNX model (path or bytes) in onnxruntime-node, ready to serve. */
export async function openOrtModel(source: string | Uint8Array, options: OrtModelOptions = {}): Promise<ServableModel & { release(): Promise<void> }> {
  const ort = await loadOnnxRuntime();
  const session = await ort.InferenceSession.create(source as string, {
    intraOpNumThreads: options.intraOpNumThreads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(options.allowSpinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  });
  const describe = (values: readonly Ort.InferenceSession.ValueMetadata[], what: string) =>
    values.map((v) => {
      if (!v.isTensor || ORT_TYPES[v.type] === undefined) {
        throw new KilnError(ErrorCode.UNSUPPORTED_OP, `The ${what} '${v.name}' is not a tensor of a type the server can send (${v.isTensor ? v.type : 'not a tensor'})`);
      }
      return { type: ORT_TYPES[v.type]!, shape: Object.freeze(v.shape.slice()) };
    });
  const inputs = describe(session.inputMetadata, 'input');
  const outputs = describe(session.outputMetadata, 'output');
  let pending = 0;
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputTypes: inputs.map((i) => i.type),
    inputShapes: inputs.map((i) => i.shape),
    outputTypes: outputs.map((o) => o.type),
    outputShapes: outputs.map((o) => o.shape),
    get pendingRuns() {
      return pending;
    },
    async run(feeds) {
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type as Ort.Tensor.Type, t.data as Ort.Tensor.DataType, t.dims.slice());
      pending++;
      try {
        const results = await session.run(ortFeeds);
        const out: Record<string, Tensor<DType>> = {};
        for (const [name, t] of Object.entries(results)) out[name] = new Tensor(ORT_TYPES[t.type]!, t.data as DataTypeMap[DType], t.dims.slice());
        return out;
      } finally {
        pending--;
      }
    },
    release: () => session.release(),
  };
}
