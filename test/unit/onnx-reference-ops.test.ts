/**
 * Ops whose expected values come from the ONNX reference implementation
 * (onnx.reference.ReferenceEvaluator) rather than onnxruntime: antialiased linear and cubic
 * Resize downscales and tf_crop_and_resize with its roi and extrapolation value, 3-D
 * ConvTranspose and its output_shape beyond the natural size, Pad's wrap mode, ... The
 * fixtures (test/fixtures/onnx-reference/*.json) hold each single-node model, its input and the
 * reference output; test/fixtures/onnx-reference/make.py writes them. Every case runs on every
 * ISA path this CPU has (the dispatch override).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { ErrorCode } from '../../src/errors.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { attr, int64Tensor, model, node, randomTensor, valueInfo } from './onnx-model-builder.js';

interface Fixture {
  name: string;
  model: string;
  x: { shape: number[]; data: number[] };
  y: { shape: number[]; data: number[] };
}

const FIXTURES = join(__dirname, '..', 'fixtures', 'onnx-reference');
const load = (group: string): Fixture[] => (JSON.parse(readFileSync(join(FIXTURES, `${group}.json`), 'utf8')) as { cases: Fixture[] }).cases;

const isas = native.cpuInfo().supportedIsas;
const startIsa = native.cpuInfo().isa;
afterAll(() => native.setIsa(startIsa));

/** Kiln's output of the fixture's model, on `isa`. */
async function runKiln(f: Fixture, isa: string): Promise<Tensor> {
  native.setIsa(isa);
  try {
    const graph = await importModel(Buffer.from(f.model, 'base64'));
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    try {
      const out = await session.run({ x: new Tensor('float32', Float32Array.from(f.x.data), f.x.shape) });
      return Object.values(out)[0]!;
    } finally {
      session.release();
    }
  } finally {
    native.setIsa(startIsa);
  }
}

/** Largest |kiln - ref| / (1 + |ref|); NaN where exactly one of them is NaN, infinities must match. */
function worst(kiln: ArrayLike<number>, ref: number[]): number {
  let w = 0;
  for (let i = 0; i < ref.length; i++) {
    // (the fixtures print float32 values with 9 digits: fround gives them back exactly)
    const a = kiln[i]!, b = Math.fround(ref[i]!);
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) return Number.NaN;
      continue;
    }
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (a !== b) return Number.POSITIVE_INFINITY;
      continue;
    }
    w = Math.max(w, Math.abs(a - b) / (1 + Math.abs(b)));
  }
  return w;
}

function group(title: string, file: string, tolerance: number): void {
  describe(title, () => {
    const cases = load(file);
    it('has fixtures', () => expect(cases.length).toBeGreaterThan(0));
    for (const isa of isas) {
      for (const f of cases) {
        it(`${isa}: ${f.name}`, async () => {
          const y = await runKiln(f, isa);
          expect(y.dims).toEqual(f.y.shape);
          expect(worst(y.data as Float32Array, f.y.data)).toBeLessThanOrEqual(tolerance);
        });
      }
    }
  });
}

group('Resize against the ONNX reference (antialias, tf_crop_and_resize)', 'resize', 2e-5);
group('ConvTranspose against the ONNX reference (3-D, output_shape beyond the natural size)', 'conv-transpose', 2e-5);
group('Pad wrap (opset 19) against the ONNX reference', 'pad', 0);

describe('Pad wrap refusals', () => {
  const wrap = (pads: number[]) => model({
    opset: 19,
    inputs: [valueInfo('x', [1, 2, 5])],
    outputs: [valueInfo('y')],
    nodes: [node('Pad', ['x', 'pads'], ['y'], [attr.s('mode', 'wrap')])],
    initializers: [int64Tensor('pads', [pads.length], pads)],
  });
  it('refuses negative pads (onnxruntime wraps the cropped input, numpy takes none)', async () => {
    await expect((async () => InferenceSession.create(await importModel(wrap([0, 0, -1, 0, 0, 2]))))()).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringMatching(/negative pads/) });
  });
  it('runs, but export (opset 17) refuses it with the reason', async () => {
    const graph = await importModel(wrap([0, 0, 1, 0, 0, 2]));
    expect(() => exportModel(graph)).toThrow(/'wrap' needs opset 19/);
  });
});

describe('ConvTranspose output_shape a stride or more beyond the natural size', () => {
  it('is refused with the reason (onnxruntime and the ONNX reference refuse it too)', async () => {
    const bytes = model({
      opset: 18,
      inputs: [valueInfo('x', [1, 2, 4, 5])],
      outputs: [valueInfo('y')],
      nodes: [node('ConvTranspose', ['x', 'w'], ['y'], [attr.ints('strides', [2, 3]), attr.ints('output_shape', [12, 17])])],
      initializers: [randomTensor('w', [2, 3, 3, 2], 5)],
    });
    const open = async () => InferenceSession.create(await importModel(bytes));
    await expect(open()).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringMatching(/a stride or more beyond/) });
  });
});
