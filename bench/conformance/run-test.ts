/**
 * Runs one ONNX node test through Kiln's public `InferenceSession`: build the session from
 * model.onnx, feed every data set's inputs by name, compare every output.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { InferenceSession } from '../../src/runtime/session.js';
import { onnx, type ITensorProto } from '../../src/onnx/proto.js';
import { typedTensorFromProto } from '../../src/onnx/tensor-proto.js';
import type { DType, Tensor } from '../../src/tensor.js';
import { compareOutput, expectedFromProto, numbersOf, type ExpectedTensor } from './compare.js';
import { dataSets, protoFiles } from './discover.js';
import { outcomeOfError, type TestOutcome } from './outcome.js';

function readTensorProto(path: string): ITensorProto {
  return onnx.TensorProto.decode(readFileSync(path));
}

/** Graph input and output names of a model, inputs without the initializers (old IR lists both). */
function graphNames(modelBytes: Uint8Array): { inputs: string[]; outputs: string[] } {
  const graph = onnx.ModelProto.decode(modelBytes).graph;
  const initializers = new Set((graph?.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph?.input ?? []).map((v) => v.name ?? '').filter((n) => !initializers.has(n)),
    outputs: (graph?.output ?? []).map((v) => v.name ?? ''),
  };
}

/**
 * An expected output, or why the runner cannot read it (a type Kiln cannot hold, such as STRING):
 * that is the runner's limit, not a refusal by Kiln, so it must not count as 'unsupported'.
 */
function expectedOutput(file: string, name: string): ExpectedTensor | string {
  try {
    return expectedFromProto(readTensorProto(file), `expected output '${name}'`);
  } catch (err) {
    return `runner: cannot read the expected output '${name}': ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Runs the test in folder `dir`. Anything thrown is classified (see outcomeOfError): refusals are
 * 'unsupported', other throws 'error'; numbers or shapes off the expected are 'fail'.
 */
export async function runNodeTest(dir: string): Promise<TestOutcome> {
  let session: InferenceSession | undefined;
  try {
    const modelBytes = readFileSync(join(dir, 'model.onnx'));
    const names = graphNames(modelBytes);
    // One thread: the runner already runs --jobs tests side by side.
    session = await InferenceSession.create(modelBytes, { intraOpNumThreads: 1 });
    let maxAbsError = 0;
    for (const set of dataSets(dir)) {
      const feeds: Record<string, Tensor<DType>> = {};
      protoFiles(set, 'input').forEach((file, k) => {
        const proto = readTensorProto(file);
        // The file's own name when it has one (optional inputs may be left out), else position.
        const name = proto.name && names.inputs.includes(proto.name) ? proto.name : names.inputs[k]!;
        // Of the file's own type: the session checks it against the model's declared input type.
        feeds[name] = typedTensorFromProto(proto, `input '${name}'`);
      });
      const outputs = await session.run<DType>(feeds);
      for (const [k, file] of protoFiles(set, 'output').entries()) {
        const name = names.outputs[k]!;
        const expected = expectedOutput(file, name);
        if (typeof expected === 'string') return { category: 'error', message: expected };
        const actual = outputs[name];
        if (actual === undefined) return { category: 'fail', message: `${set.slice(dir.length + 1)}: no output '${name}' (got ${Object.keys(outputs).join(', ')})` };
        if (expected.dtype !== undefined && actual.type !== expected.dtype) {
          return { category: 'fail', message: `${set.slice(dir.length + 1)} output '${name}': dtype ${actual.type}, expected ${expected.dtype}` };
        }
        const result = compareOutput({ dims: actual.dims, data: numbersOf(actual) }, expected);
        maxAbsError = Math.max(maxAbsError, result.maxAbsError);
        if (!result.ok) return { category: 'fail', message: `${set.slice(dir.length + 1)} output '${name}': ${result.mismatch}`, maxAbsError };
      }
    }
    return { category: 'pass', maxAbsError };
  } catch (err) {
    return outcomeOfError(err);
  } finally {
    session?.release();
  }
}
