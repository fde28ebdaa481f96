/**
 * The data-movement ops in the places detection and segmentation models put them: a small conv
 * backbone, a nearest 2x Resize, a Concat with the skip connection and a conv head (plus a Slice
 * and a Split of the head's channels) against onnxruntime; Resize on every ISA path this CPU has
 * (the dispatch override) against onnxruntime; and the same model quantized (PTQ), where the
 * nearest Resize, the Slice and the Split pass the quantized value through and the Concat
 * requantizes its inputs (QLinearConcat), all on uint8 between the int8 convolutions; nearest
 * Resize, Slice, Split and QLinearConcat against the int8 reference interpreter bit for bit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { compareInt8WithOnnxRuntime } from '../../src/onnx/compare-int8.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, int64Tensor, model, node, randomData, randomTensor, valueInfo, type ModelSpec } from './onnx-model-builder.js';

const f32 = (name: string, v: number[]) => floatTensor(name, [v.length], v);

/** conv1 (3->8) relu, conv2 (8->16, stride 2) relu, Resize nearest 2x, Concat [up, conv1], conv3 1x1 head, Slice + Split of it. */
function detectionHead(size = 16): ModelSpec {
  const conv = (name: string, x: string, w: string, b: string, attrs = [attr.ints('pads', [1, 1, 1, 1]), attr.ints('kernel_shape', [3, 3])]) => node('Conv', [x, w, b], [name], attrs, name);
  return {
    opset: 13,
    inputs: [valueInfo('x', ['N', 3, size, size])],
    outputs: [valueInfo('boxes'), valueInfo('obj'), valueInfo('cls')],
    nodes: [
      conv('c1', 'x', 'w1', 'b1'),
      node('Relu', ['c1'], ['r1'], [], 'relu1'),
      conv('c2', 'r1', 'w2', 'b2', [attr.ints('pads', [1, 1, 1, 1]), attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2])]),
      node('Relu', ['c2'], ['r2'], [], 'relu2'),
      node('Resize', ['r2', '', 'scales'], ['up'], [attr.s('mode', 'nearest'), attr.s('coordinate_transformation_mode', 'asymmetric'), attr.s('nearest_mode', 'floor')], 'upsample'),
      node('Concat', ['up', 'r1'], ['cat'], [attr.i('axis', 1)], 'concat'),
      conv('head', 'cat', 'w3', 'b3', [attr.ints('kernel_shape', [1, 1])]),
      node('Slice', ['head', 'starts', 'ends', 'axes'], ['boxes'], [], 'slice'),
      node('Split', ['head', 'split'], ['skip', 'obj', 'cls'], [attr.i('axis', 1)], 'split'),
    ],
    initializers: [
      randomTensor('w1', [8, 3, 3, 3], 1, 0.5), randomTensor('b1', [8], 2, 0.1),
      randomTensor('w2', [16, 8, 3, 3], 3, 0.3), randomTensor('b2', [16], 4, 0.1),
      randomTensor('w3', [9, 24, 1, 1], 5, 0.3), randomTensor('b3', [9], 6, 0.1),
      f32('scales', [1, 1, 2, 2]),
      int64Tensor('starts', [1], [0]), int64Tensor('ends', [1], [4]), int64Tensor('axes', [1], [1]),
      int64Tensor('split', [3], [4, 1, 4]),
    ],
  };
}

const image = (n: number, size: number, seed: number) => new Tensor('float32', randomData(n * 3 * size * size, seed, 1), [n, 3, size, size]);

describe('detection-style head', () => {
  it('conv backbone, nearest 2x Resize, Concat with the skip, conv head, Slice and Split match onnxruntime', async () => {
    const bytes = model(detectionHead());
    const graph = await importModel(bytes);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Conv', 'Relu', 'Conv', 'Relu', 'Resize', 'Concat', 'Conv', 'Slice', 'Split']);
    const result = await compareWithOnnxRuntime(bytes, { x: image(3, 16, 9) });
    for (const out of result.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    try {
      // The plan runs the 2x upsampling as one Resize step.
      expect(session.info().steps.some((s: string) => /^Resize upsample: nearest 8x8->16x16 asymmetric floor/.test(s))).toBe(true);
    } finally {
      session.release();
    }
  });
});

const isas = native.cpuInfo().supportedIsas;
const startIsa = native.cpuInfo().isa;
afterAll(() => native.setIsa(startIsa));

function resizeModel(shape: number[], sizes: number[], attrs: ReturnType<typeof attr.s>[]): Uint8Array {
  return model({
    opset: 13,
    inputs: [valueInfo('x', ['N', ...shape.slice(1)])],
    outputs: [valueInfo('y')],
    nodes: [node('Resize', ['x', '', '', 'sizes'], ['y'], attrs)],
    initializers: [int64Tensor('sizes', [4], sizes)],
  });
}

describe('Resize on every ISA path', () => {
  // Widths below, at and above the 8-lane vectors, odd and even, 2x and not.
  const shapes = [[1, 2, 3, 1], [1, 3, 5, 8], [1, 2, 7, 9], [1, 1, 4, 17], [1, 2, 6, 23]];
  const variants: { name: string; out: (h: number, w: number) => [number, number]; attrs: ReturnType<typeof attr.s>[] }[] = [
    { name: 'nearest 2x', out: (h, w) => [2 * h, 2 * w], attrs: [attr.s('mode', 'nearest'), attr.s('coordinate_transformation_mode', 'asymmetric'), attr.s('nearest_mode', 'floor')] },
    { name: 'nearest odd sizes', out: (h, w) => [h + 2, 2 * w + 1], attrs: [attr.s('mode', 'nearest')] },
    { name: 'linear', out: (h, w) => [2 * h - 1, 3 * w], attrs: [attr.s('mode', 'linear')] },
    { name: 'cubic', out: (h, w) => [h + 3, 2 * w + 3], attrs: [attr.s('mode', 'cubic'), attr.s('coordinate_transformation_mode', 'align_corners')] },
  ];
  for (const isa of isas) {
    for (const v of variants) {
      it(`${isa}: ${v.name}`, async () => {
        native.setIsa(isa);
        try {
          for (const [i, shape] of shapes.entries()) {
            const [oh, ow] = v.out(shape[2]!, shape[3]!);
            const bytes = resizeModel(shape, [shape[0]!, shape[1]!, oh, ow], v.attrs);
            const x = new Tensor('float32', randomData(shape.reduce((a, b) => a * b, 1), 40 + i, 2), shape);
            const result = await compareWithOnnxRuntime(bytes, { x });
            expect(result.outputs[0]!.relL2, `${shape} -> ${oh}x${ow}`).toBeLessThanOrEqual(1e-5);
          }
        } finally {
          native.setIsa(startIsa);
        }
      });
    }
  }
});

describe('detection-style head quantized (PTQ)', () => {
  it('runs the nearest Resize, the Concat (QLinearConcat), the Slice and the Split on uint8 NHWC between int8 convolutions, close to fp32 and to onnxruntime', async () => {
    const float = await importModel(model(detectionHead()));
    const { graph, report } = await quantize(float, image(32, 16, 11), { reportImages: 0 });
    const ops = graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'QLinearConv')).toHaveLength(3);
    // The nearest Resize passes the quantized value through (uint8 NHWC in the runtime): it reads
    // conv2's quantized output directly, no DequantizeLinear between.
    const resize = graph.nodes.find((n) => n.op === 'Resize')!;
    const conv2 = graph.nodes.filter((n) => n.op === 'QLinearConv')[1]!;
    expect(resize.inputs[0]).toBe(conv2.outputs[0]);
    for (const op of ['QLinearConcat', 'Slice', 'Split']) expect(ops).toContain(op);
    // The Concat requantizes its inputs (QLinearConcat); the Slice and the Split read the head's
    // quantized output: nothing runs in float.
    const concat = graph.nodes.find((n) => n.op === 'QLinearConcat')!;
    expect(concat.inputs).toEqual([resize.outputs[0], graph.nodes.filter((n) => n.op === 'QLinearConv')[0]!.outputs[0]]);
    const head = graph.nodes.filter((n) => n.op === 'QLinearConv')[2]!;
    for (const op of ['Slice', 'Split']) expect(graph.nodes.find((n) => n.op === op)!.inputs[0]).toBe(head.outputs[0]);
    expect(report.fp32Nodes).toEqual([]);
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    try {
      expect(session.info().steps.some((s: string) => /^ResizeU8 upsample: u8 NHWC nearest 8x8->16x16/.test(s))).toBe(true);
      expect(session.info().steps.some((s: string) => /^SliceU8 slice: u8 NHWC starts 0 0 0/.test(s))).toBe(true);
      expect(session.info().steps.some((s: string) => /^ConcatU8 concat: u8 NHWC channels/.test(s))).toBe(true);
      expect(session.info().steps.filter((s: string) => /^SliceU8 split: u8 NHWC/.test(s))).toHaveLength(3);
    } finally {
      session.release();
    }
    const x = image(4, 16, 12);
    const run = async (g: typeof graph) => {
      const session = await InferenceSession.create(g, { intraOpNumThreads: 1 });
      try {
        const out = await session.run({ x });
        return Object.fromEntries(g.outputs.map((o) => [o.name, out[o.name]!.data as Float32Array]));
      } finally {
        session.release();
      }
    };
    const [q, f] = [await run(graph), await run(float)];
    for (const name of ['boxes', 'obj', 'cls']) {
      let err = 0;
      let ref = 0;
      for (let i = 0; i < f[name]!.length; i++) {
        err += (q[name]![i]! - f[name]![i]!) ** 2;
        ref += f[name]![i]! ** 2;
      }
      expect(Math.sqrt(err / ref), name).toBeLessThan(0.05);
    }
    // onnxruntime on the QDQ export agrees with Kiln's int8 run.
    const cmp = await compareInt8WithOnnxRuntime(graph, { x });
    for (const out of cmp.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(0.02);
  });
});

describe('nearest Resize, Slice and Split of a quantized value', () => {
  const resizeOf = (sizes: number[], attrs: ReturnType<typeof attr.s>[]) => ({
    middle: node('Resize', ['r1', '', '', 'sizes'], ['up'], [attr.s('mode', 'nearest'), ...attrs], 'resize'),
    inits: [int64Tensor('sizes', [4], sizes)],
    op: 'Resize',
    channels: 6,
  });
  const sliceOf = (starts: number[], ends: number[], axes: number[], steps: number[], channels: number) => ({
    middle: node('Slice', ['r1', 'starts', 'ends', 'axes', 'steps'], ['up'], [], 'slice'),
    inits: [int64Tensor('starts', [starts.length], starts), int64Tensor('ends', [ends.length], ends), int64Tensor('axes', [axes.length], axes), int64Tensor('steps', [steps.length], steps)],
    op: 'Slice',
    channels,
  });
  const variants = [
    { name: 'Resize 2x asymmetric floor', ...resizeOf([1, 6, 14, 18], [attr.s('coordinate_transformation_mode', 'asymmetric'), attr.s('nearest_mode', 'floor')]) },
    { name: 'Resize to odd sizes half_pixel', ...resizeOf([1, 6, 11, 20], []) },
    { name: 'Resize down align_corners ceil', ...resizeOf([1, 6, 4, 5], [attr.s('coordinate_transformation_mode', 'align_corners'), attr.s('nearest_mode', 'ceil')]) },
    { name: 'Slice of channels', ...sliceOf([1], [5], [1], [1], 4) },
    { name: 'Slice of H and W with a negative step', ...sliceOf([-1, 1, 0], [0, 8, 3], [3, 2, 1], [-2, 3, 1], 3) },
    {
      name: 'Split of channels (one part read)',
      middle: node('Split', ['r1', 'parts'], ['up', 'rest'], [attr.i('axis', 1)], 'split'),
      inits: [int64Tensor('parts', [2], [2, 4])],
      op: 'Split',
      channels: 2,
    },
  ];
  for (const v of variants) {
    it(`${v.name}: native equals the int8 reference bit for bit, and onnxruntime on the QDQ export`, async () => {
      const spec: ModelSpec = {
        opset: 13,
        inputs: [valueInfo('x', [1, 3, 7, 9])],
        outputs: [valueInfo('y')],
        nodes: [
          node('Conv', ['x', 'w1', 'b1'], ['c1'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], 'conv1'),
          node('Relu', ['c1'], ['r1'], [], 'relu1'),
          v.middle,
          node('Conv', ['up', 'w2', 'b2'], ['y'], [attr.ints('kernel_shape', [1, 1])], 'conv2'),
        ],
        initializers: [
          randomTensor('w1', [6, 3, 3, 3], 21, 0.5), randomTensor('b1', [6], 22, 0.1),
          randomTensor('w2', [4, v.channels, 1, 1], 23, 0.5), randomTensor('b2', [4], 24, 0.1),
          ...v.inits,
        ],
      };
      const float = await importModel(model(spec));
      const calib = new Tensor('float32', randomData(16 * 3 * 7 * 9, 25, 1), [16, 3, 7, 9]);
      const { graph, report } = await quantize(float, calib, { reportImages: 0 });
      expect(report.fp32Nodes).toEqual([]);
      expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', v.op, 'QLinearConv']);
      const x = new Tensor('float32', randomData(3 * 7 * 9, 26, 1), [1, 3, 7, 9]);
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      let native: Float32Array;
      try {
        native = (await session.run({ x })).y!.data as Float32Array;
      } finally {
        session.release();
      }
      const reference = runInt8Reference(graph, { x }).y!.data as Float32Array;
      expect(Array.from(native)).toEqual(Array.from(reference));
      const cmp = await compareInt8WithOnnxRuntime(graph, { x });
      for (const out of cmp.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(0.02);
      // The QDQ export imports back with the op on the quantized value (DQ -> op -> Q lifted; a
      // Split, with its several outputs, imports as float between DQ and Q).
      const back = await importModel(exportModel(graph));
      const lifted = v.op === 'Split' ? ['DequantizeLinear', 'Split', 'QuantizeLinear'] : [v.op];
      expect(back.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', ...lifted, 'QLinearConv']);
    });
  }
});

describe('QLinearConcat', () => {
  const variants = [
    { name: 'channels (NHWC), uint8', axis: 1, activations: 'uint8' as const },
    { name: 'channels (NHWC), int8', axis: 1, activations: 'int8' as const },
    { name: 'along H (NCHW storage), uint8', axis: 2, activations: 'uint8' as const },
  ];
  for (const v of variants) {
    it(`${v.name}: native equals the int8 reference bit for bit, and onnxruntime on the QDQ export`, async () => {
      const conv = (name: string, x: string, w: string, b: string) => node('Conv', [x, w, b], [name], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], name);
      const spec: ModelSpec = {
        opset: 13,
        inputs: [valueInfo('x', ['N', 3, 6, 7])],
        outputs: [valueInfo('y')],
        nodes: [
          conv('c1', 'x', 'w1', 'b1'),
          node('Relu', ['c1'], ['r1'], [], 'relu1'),
          conv('c2', 'x', 'w2', 'b2'),
          node('Concat', ['r1', 'c2'], ['cat'], [attr.i('axis', v.axis)], 'concat'),
          node('Conv', ['cat', 'w3', 'b3'], ['y'], [attr.ints('kernel_shape', [1, 1])], 'c3'),
        ],
        initializers: [
          randomTensor('w1', [4, 3, 3, 3], 31, 0.5), randomTensor('b1', [4], 32, 0.1),
          randomTensor('w2', [4, 3, 3, 3], 33, 1.5), randomTensor('b2', [4], 34, 0.1),
          randomTensor('w3', [5, v.axis === 1 ? 8 : 4, 1, 1], 35, 0.5), randomTensor('b3', [5], 36, 0.1),
        ],
      };
      const float = await importModel(model(spec));
      const calib = new Tensor('float32', randomData(16 * 3 * 6 * 7, 37, 1), [16, 3, 6, 7]);
      const { graph, report } = await quantize(float, calib, { reportImages: 0, activations: v.activations });
      expect(report.fp32Nodes).toEqual([]);
      expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearConv', 'QLinearConcat', 'QLinearConv']);
      const x = new Tensor('float32', randomData(2 * 3 * 6 * 7, 38, 1), [2, 3, 6, 7]);
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      let native: Float32Array;
      try {
        native = (await session.run({ x })).y!.data as Float32Array;
      } finally {
        session.release();
      }
      const reference = runInt8Reference(graph, { x }).y!.data as Float32Array;
      expect(Array.from(native)).toEqual(Array.from(reference));
      const cmp = await compareInt8WithOnnxRuntime(graph, { x });
      for (const out of cmp.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(0.02);
      // The QDQ export imports back as QLinearConcat.
      const reimported = await importModel(exportModel(graph));
      expect(reimported.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearConv', 'QLinearConcat', 'QLinearConv']);
      expect(reimported.nodes[3]!.attrs).toMatchObject({ x_scales: graph.nodes[3]!.attrs.x_scales, y_scale: graph.nodes[3]!.attrs.y_scale });
      // A .kiln file keeps it (its parameters validated on load).
      const dir = mkdtempSync(join(tmpdir(), 'kiln-qconcat-'));
      try {
        await save(graph, join(dir, 'q.kiln'));
        const back = await loadGraph(join(dir, 'q.kiln'));
        expect(back.nodes.find((n) => n.op === 'QLinearConcat')!.attrs).toEqual(graph.nodes.find((n) => n.op === 'QLinearConcat')!.attrs);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
