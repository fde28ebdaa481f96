/**
 * Finds the ONNX backend node tests in an onnx source tree and names the operator each one tests.
 *
 * A node test is a folder `test_<name>/` holding `model.onnx` and `test_data_set_N/` folders of
 * `input_K.pb` / `output_K.pb` TensorProtos. The tests are not shipped with Kiln (nor with recent
 * onnx wheels): the user points the runner at a checkout, e.g. onnx 1.23.0.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { decodeModel } from '../../src/onnx/proto.js';

/** One node test on disk. */
export interface NodeTest {
  /** Folder name, e.g. `test_conv_with_strides_padding`. */
  name: string;
  /** Absolute folder of the test. */
  dir: string;
  /** The operator the test is about (see {@link testOperator}). */
  op: string;
  /** Whether the model is a function-expanded variant (`_expanded`, `_expanded_ver18`, ...). */
  expanded: boolean;
}

/** Where the node tests sit inside an onnx source tree. */
const NODE_TESTS_SUBDIR = join('onnx', 'backend', 'test', 'data', 'node');

/** Matches the suffix of function-expanded variants; the rest of the name is their plain sibling. */
const EXPANDED_SUFFIX = /_expanded(_ver\d+)?$/;

/**
 * The node-test folder for a path the user gave: an onnx checkout's root, or the node folder
 * itself. Throws with the paths it tried when neither holds tests.
 */
export function nodeTestsDir(onnxDir: string): string {
  for (const candidate of [join(onnxDir, NODE_TESTS_SUBDIR), onnxDir]) {
    if (existsSync(candidate) && readdirSync(candidate).some((n) => n.startsWith('test_'))) return candidate;
  }
  throw new Error(`No ONNX node tests under ${onnxDir} (looked in ${join(onnxDir, NODE_TESTS_SUBDIR)} and ${onnxDir})`);
}

/** Operator types of a model's graph nodes, in graph order (empty when the model does not decode). */
export function modelOperators(modelPath: string): string[] {
  try {
    return (decodeModel(readFileSync(modelPath)).graph?.node ?? []).map((n) => n.opType ?? '');
  } catch {
    return [];
  }
}

/**
 * The operator a test is about. A plain test's model holds the operator itself (its first node
 * that is not a Constant feeding it). An expanded test's model holds the function body instead, so
 * it takes the operator of its plain sibling (same name without the `_expanded` suffix), or of
 * its own graph when there is no sibling.
 */
export function testOperator(dir: string, name: string, siblingOp: (plainName: string) => string | undefined): string {
  if (EXPANDED_SUFFIX.test(name)) {
    const op = siblingOp(name.replace(EXPANDED_SUFFIX, ''));
    if (op !== undefined) return op;
  }
  const ops = modelOperators(join(dir, 'model.onnx'));
  return ops.find((op) => op !== 'Constant') ?? ops[0] ?? '?';
}

/** Every node test under `onnxDir`, sorted by name, optionally only those whose name matches `filter`. */
export function discoverNodeTests(onnxDir: string, filter?: RegExp): NodeTest[] {
  const root = nodeTestsDir(onnxDir);
  const names = readdirSync(root)
    .filter((n) => n.startsWith('test_') && statSync(join(root, n)).isDirectory() && existsSync(join(root, n, 'model.onnx')))
    .sort();
  const plainOps = new Map<string, string>();
  const opOf = (name: string): string | undefined => {
    if (!names.includes(name)) return undefined;
    let op = plainOps.get(name);
    if (op === undefined) {
      op = testOperator(join(root, name), name, () => undefined);
      plainOps.set(name, op);
    }
    return op;
  };
  return names
    .filter((name) => filter === undefined || filter.test(name))
    .map((name) => ({ name, dir: join(root, name), op: testOperator(join(root, name), name, opOf), expanded: EXPANDED_SUFFIX.test(name) }));
}

/** The `test_data_set_N` folders of a test, in numeric order. */
export function dataSets(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^test_data_set_\d+$/.test(n))
    .sort((a, b) => Number(a.slice(14)) - Number(b.slice(14)))
    .map((n) => join(dir, n));
}

/** The `<prefix>_K.pb` files of a data set, in numeric order of K. */
export function protoFiles(dataSetDir: string, prefix: 'input' | 'output'): string[] {
  const re = new RegExp(`^${prefix}_(\\d+)\\.pb$`);
  return readdirSync(dataSetDir)
    .filter((n) => re.test(n))
    .sort((a, b) => Number(re.exec(a)![1]) - Number(re.exec(b)![1]))
    .map((n) => join(dataSetDir, n));
}
