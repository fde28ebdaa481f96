/**
 * onnxruntime-node, loaded the first time a function that runs it is called (the comparisons and
 * the benchmark against ORT). Importing it maps ORT's shared library (libonnxruntime, tens of MB)
 * into the process; a program that only trains or serves with Kiln should not pay for that, so
 * nothing imports 'onnxruntime-node' statically (test/unit/ort-lazy.test.ts checks `import 'kiln'`).
 */
import type * as Ort from 'onnxruntime-node';

export type OnnxRuntime = typeof Ort;

let loading: Promise<OnnxRuntime> | undefined;

/** The onnxruntime-node module, imported once. */
export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  loading ??= import('onnxruntime-node').catch((err: unknown) => {
    // Not cached: a later call tries again (and reports the same cause if it fails the same way).
    loading = undefined;
    throw err;
  });
  return loading;
}
