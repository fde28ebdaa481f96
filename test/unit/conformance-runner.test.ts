/**
 * The ONNX conformance runner (bench/conformance): output comparison with ONNX's tolerance, the
 * classification of outcomes, and crash attribution in worker processes. Uses small node tests
 * written here, so it runs without an onnx source tree.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { compareOutput, elementMatches, expectedFromProto, numbersOf } from '../../bench/conformance/compare.js';
import { discoverNodeTests } from '../../bench/conformance/discover.js';
import { outcomeOfError } from '../../bench/conformance/outcome.js';
import { runInWorkers } from '../../bench/conformance/pool.js';
import { countOutcomes, reasonPattern, type TestRecord } from '../../bench/conformance/report.js';
import { runNodeTest } from '../../bench/conformance/run-test.js';
import { inAcceptanceSubset } from '../../bench/conformance/subset.js';
import { ErrorCode, KilnError, KilnRangeError } from '../../src/errors.js';
import { DataType, onnx, type ITensorProto } from '../../src/onnx/proto.js';
import { typedTensorFromProto } from '../../src/onnx/tensor-proto.js';
import { attr, floatTensor, model, node, valueInfo } from './onnx-model-builder.js';

const root = join(import.meta.dirname, '..', '..');
const tsLoader = ['--import', join(root, 'test/support/register-ts-source.mjs')];
const tests = mkdtempSync(join(tmpdir(), 'kiln-conformance-'));
// Tests written by single cases, apart from the folder the discovery case lists.
const typedTests = mkdtempSync(join(tmpdir(), 'kiln-conformance-typed-'));
afterAll(() => {
  rmSync(tests, { recursive: true, force: true });
  rmSync(typedTests, { recursive: true, force: true });
});

/** Writes a node test folder: model.onnx and test_data_set_0 with the given inputs and outputs. */
function writeNodeTest(name: string, bytes: Uint8Array, inputs: ITensorProto[], outputs: ITensorProto[], root = tests): string {
  const dir = join(root, name);
  const set = join(dir, 'test_data_set_0');
  mkdirSync(set, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), bytes);
  inputs.forEach((t, k) => writeFileSync(join(set, `input_${k}.pb`), onnx.TensorProto.encode(t).finish()));
  outputs.forEach((t, k) => writeFileSync(join(set, `output_${k}.pb`), onnx.TensorProto.encode(t).finish()));
  return dir;
}

/** A one-node model y = op(x) on a [2, 3] float tensor. */
function unaryModel(op: string): Uint8Array {
  return model({ opset: 13, inputs: [valueInfo('x', [2, 3])], outputs: [valueInfo('y', [2, 3])], nodes: [node(op, ['x'], ['y'])] });
}

const x = [-1, 2, -3, 4, -5, 6];
const reluPass = writeNodeTest('test_relu', unaryModel('Relu'), [floatTensor('x', [2, 3], x)], [floatTensor('y', [2, 3], x.map((v) => Math.max(v, 0)))]);
const reluWrong = writeNodeTest('test_relu_wrong', unaryModel('Relu'), [floatTensor('x', [2, 3], x)], [floatTensor('y', [2, 3], [0, 2, 0, 4, 0, 6.1])]);
const reluShape = writeNodeTest('test_relu_shape', unaryModel('Relu'), [floatTensor('x', [2, 3], x)], [floatTensor('y', [6], x.map((v) => Math.max(v, 0)))]);
// An expected output of a type Kiln cannot hold: the runner's limit, so an error, not a refusal.
const stringExpected = writeNodeTest('test_relu_string', unaryModel('Relu'), [floatTensor('x', [2, 3], x)], [
  { name: 'y', dims: [2, 3], dataType: DataType.STRING, stringData: x.map((v) => new TextEncoder().encode(String(v))) },
]);
// The expanded variant of a test takes its plain sibling's operator, not its own graph's.
writeNodeTest('test_relu_expanded', unaryModel('Abs'), [], []);
// An operator no CNN runtime implements, to see a refusal.
const refused = writeNodeTest('test_det', unaryModel('Det'), [floatTensor('x', [2, 3], x)], [floatTensor('y', [2, 3], x)]);

describe('comparison', () => {
  it('uses assert_allclose semantics for floats: rtol 1e-3 of the expected value, atol 1e-7, NaN equal to NaN', () => {
    expect(elementMatches(1000.9, 1000, 'float')).toBe(true);
    expect(elementMatches(1001.1, 1000, 'float')).toBe(false);
    expect(elementMatches(5e-8, 0, 'float')).toBe(true);
    expect(elementMatches(2e-7, 0, 'float')).toBe(false);
    expect(elementMatches(NaN, NaN, 'float')).toBe(true);
    expect(elementMatches(0, NaN, 'float')).toBe(false);
    expect(elementMatches(Infinity, Infinity, 'float')).toBe(true);
    expect(elementMatches(-Infinity, Infinity, 'float')).toBe(false);
  });

  it('wants integers exact and shapes equal', () => {
    expect(elementMatches(3.0001, 3, 'exact')).toBe(false);
    expect(compareOutput({ dims: [2], data: [1, 2] }, { kind: 'exact', dims: [2], values: [1, 2] })).toEqual({ ok: true, maxAbsError: 0 });
    expect(compareOutput({ dims: [1, 2], data: [1, 2] }, { kind: 'exact', dims: [2], values: [1, 2] }).ok).toBe(false);
    // int64 outputs (Shape, Size) arrive as BigInt64Arrays.
    expect(compareOutput({ dims: [2], data: BigInt64Array.of(3n, -4n) }, { kind: 'exact', dims: [2], values: [3, -4] })).toEqual({ ok: true, maxAbsError: 0 });
    expect(compareOutput({ dims: [2], data: BigInt64Array.of(3n, 4n) }, { kind: 'exact', dims: [2], values: [3, -4] }).ok).toBe(false);
    const off = compareOutput({ dims: [3], data: [1, 2, 3.5] }, { kind: 'float', dims: [3], values: [1, 2, 3] });
    expect(off.ok).toBe(false);
    expect(off.maxAbsError).toBe(0.5);
    expect(off.mismatch).toMatch(/1 of 3 elements off \(first at element 2: 3.5, expected 3/);
  });

  it('reads expected doubles and int64 at full precision', () => {
    const raw = new Uint8Array(16);
    new DataView(raw.buffer).setFloat64(0, 0.1, true);
    new DataView(raw.buffer).setFloat64(8, 1e300, true);
    expect(expectedFromProto({ dataType: DataType.DOUBLE, dims: [2], rawData: raw }, 'y')).toEqual({ kind: 'float', dtype: 'float64', dims: [2], values: Float64Array.of(0.1, 1e300) });
    const ints = expectedFromProto({ dataType: DataType.INT64, dims: [2], int64Data: [5, -(2 ** 40)] }, 'y');
    expect(ints).toEqual({ kind: 'exact', dtype: 'int64', dims: [2], values: Float64Array.of(5, -(2 ** 40)) });
  });

  it('reads feeds in their own type and output elements as the numbers they stand for', () => {
    const raw = new Uint8Array(16);
    new DataView(raw.buffer).setFloat64(0, 0.1, true);
    new DataView(raw.buffer).setFloat64(8, -3, true);
    const d = typedTensorFromProto({ dataType: DataType.DOUBLE, dims: [2], rawData: raw }, 'x');
    expect(d.type).toBe('float64');
    expect(Array.from(d.data as Float64Array)).toEqual([0.1, -3]);
    const big = typedTensorFromProto({ dataType: DataType.INT64, dims: [2], int64Data: [5, -(2 ** 40)] }, 'x');
    expect(big.data).toEqual(BigInt64Array.of(5n, -(2n ** 40n)));
    const half = typedTensorFromProto({ dataType: DataType.FLOAT16, dims: [1], int32Data: [0x3c00] }, 'x');
    expect([half.type, Array.from(numbersOf(half))]).toEqual(['float16', [1]]);
    expect(Array.from(numbersOf(big))).toEqual([5, -(2 ** 40)]);
    // Narrow formats: bfloat16 bits from int32_data, int4 packed two to a byte (low nibble first).
    const bf = typedTensorFromProto({ dataType: DataType.BFLOAT16, dims: [2], int32Data: [0x3f80, 0xc000] }, 'x');
    expect([bf.type, Array.from(numbersOf(bf))]).toEqual(['bfloat16', [1, -2]]);
    const i4 = typedTensorFromProto({ dataType: DataType.INT4, dims: [3], rawData: Uint8Array.of(0x8f, 0x07) }, 'x');
    expect([i4.type, Array.from(i4.data as Int8Array)]).toEqual(['int4', [-1, -8, 7]]);
    expect(() => typedTensorFromProto({ dataType: DataType.INT4, dims: [3], rawData: Uint8Array.of(0x8f) }, 'x')).toThrow(/Expected 2 data units/);
    expect(() => typedTensorFromProto({ dataType: DataType.FLOAT8E8M0, dims: [1], int32Data: [0] }, 'x')).toThrow(/no JavaScript tensor type for FLOAT8E8M0/);
  });

  it('runs a float64 test on float64 feeds and outputs', async () => {
    const doubles = (name: string, values: number[]): ITensorProto => ({ name, dims: [2, 3], dataType: DataType.DOUBLE, doubleData: values });
    const bytes = model({ opset: 13, inputs: [valueInfo('x', [2, 3], DataType.DOUBLE)], outputs: [valueInfo('y', [2, 3], DataType.DOUBLE)], nodes: [node('Relu', ['x'], ['y'])] });
    const dir = writeNodeTest('test_relu_double', bytes, [doubles('x', x)], [doubles('y', x.map((v) => Math.max(v, 0)))], typedTests);
    expect(await runNodeTest(dir)).toEqual({ category: 'pass', maxAbsError: 0 });
    // An output of another type than the expected one fails, whatever its numbers.
    const floatOut = model({ opset: 13, inputs: [valueInfo('x', [2, 3], DataType.DOUBLE)], outputs: [valueInfo('y', [2, 3])], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT)])] });
    const mismatch = writeNodeTest('test_cast_double_mismatch', floatOut, [doubles('x', x)], [doubles('y', x)], typedTests);
    expect((await runNodeTest(mismatch)).message).toMatch(/dtype float32, expected float64/);
  });
});

describe('classification', () => {
  it('counts a refusal as unsupported with its reason, anything else as an error with its code', () => {
    expect(outcomeOfError(new KilnError(ErrorCode.UNSUPPORTED_OP, 'no Det'))).toEqual({ category: 'unsupported', message: 'no Det' });
    expect(outcomeOfError(new KilnRangeError('bad shape', ErrorCode.SHAPE_MISMATCH))).toEqual({ category: 'error', message: 'ERR_KILN_SHAPE_MISMATCH: bad shape' });
    expect(outcomeOfError(new TypeError('x is undefined'))).toEqual({ category: 'error', message: 'TypeError: x is undefined' });
  });

  it('runs a node test: pass, fail on numbers or shape, unsupported for a refused operator', async () => {
    expect(await runNodeTest(reluPass)).toEqual({ category: 'pass', maxAbsError: 0 });
    const wrong = await runNodeTest(reluWrong);
    expect(wrong.category).toBe('fail');
    expect(wrong.message).toMatch(/output 'y': 1 of 6 elements off/);
    expect((await runNodeTest(reluShape)).message).toMatch(/shape \[2, 3\], expected \[6\]/);
    const unreadable = await runNodeTest(stringExpected);
    expect(unreadable.category).toBe('error');
    expect(unreadable.message).toMatch(/^runner: cannot read the expected output 'y': Kiln cannot hold STRING tensors/);
    const det = await runNodeTest(refused);
    expect(det.category).toBe('unsupported');
    expect(det.message).toMatch(/Det/);
  });

  it('names the operator of a test, an expanded one by its plain sibling, and picks the acceptance subset', () => {
    const found = discoverNodeTests(tests);
    expect(found.map((t) => [t.name, t.op, t.expanded])).toEqual([
      ['test_det', 'Det', false],
      ['test_relu', 'Relu', false],
      ['test_relu_expanded', 'Relu', true],
      ['test_relu_shape', 'Relu', false],
      ['test_relu_string', 'Relu', false],
      ['test_relu_wrong', 'Relu', false],
    ]);
    expect(inAcceptanceSubset('Relu') && inAcceptanceSubset('ReduceLogSumExp') && !inAcceptanceSubset('Det')).toBe(true);
    expect(discoverNodeTests(tests, /relu_(wrong|shape)/).length).toBe(2);
  });

  it('groups refusal messages by what does not vary', () => {
    expect(reasonPattern("Expected an ONNX opset in [7, 22] but received 25 for 'Conv_0' on int16")).toBe("Expected an ONNX opset in [N, N] but received N for '…' on int16");
    const records: TestRecord[] = [{ name: 'a', op: 'Relu', category: 'pass' }, { name: 'b', op: 'Relu', category: 'crash' }];
    expect(countOutcomes(records)).toEqual({ tests: 2, pass: 1, fail: 0, error: 0, unsupported: 0, crash: 1 });
  });
});

describe('worker processes', () => {
  it('counts a test that kills its worker, or overruns the timeout, as a crash and goes on with the next', async () => {
    const seen: string[] = [];
    const outcomes = await runInWorkers(
      [
        { name: 'test_relu', dir: reluPass },
        { name: 'test_abort', dir: reluPass },
        { name: 'test_relu_wrong', dir: reluWrong },
        { name: 'test_hang', dir: reluPass },
        { name: 'test_det', dir: refused },
      ],
      {
        jobs: 1,
        timeoutMs: 10_000,
        workerScript: join(root, 'test/support/conformance-fake-worker.ts'),
        execArgv: tsLoader,
        cwd: tests, // a core file of the aborted worker, where the system writes them, lands in the temporary folder
        onResult: (test) => seen.push(test.name),
      },
    );
    expect(outcomes.map((o) => o.category)).toEqual(['pass', 'crash', 'fail', 'crash', 'unsupported']);
    expect(outcomes[1]!.message).toMatch(/worker killed by SIGABRT/);
    expect(outcomes[3]!.message).toMatch(/timeout: still running after 10 s/);
    expect(seen).toEqual(['test_relu', 'test_abort', 'test_relu_wrong', 'test_hang', 'test_det']);
  });

  it('runs tests side by side in the real worker, each outcome in the order of the tests', async () => {
    const outcomes = await runInWorkers(
      [reluPass, reluWrong, refused].map((dir) => ({ name: dir, dir })),
      { jobs: 2, workerScript: join(root, 'bench/conformance/worker.ts'), execArgv: tsLoader },
    );
    expect(outcomes.map((o) => o.category)).toEqual(['pass', 'fail', 'unsupported']);
  });
});
