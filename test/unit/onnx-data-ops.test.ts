/**
 * Data-movement ops (Resize / Upsample, Slice, Split, Gather, Expand, Tile, Concat with constants,
 * DepthToSpace / SpaceToDepth) on models written directly as ONNX: Kiln's runtime on the
 * imported graph against onnxruntime on the original file, and ORT on export(import(file))
 * against ORT on the original, over attribute variants and odd shapes.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { Tensor } from '../../src/tensor.js';
import {
  attr, floatTensor, int64Tensor, maxScaledDiff, model, node, randomData, randomTensor, runOrt, valueInfo, type ModelSpec,
} from './onnx-model-builder.js';

interface Case {
  name: string;
  spec: ModelSpec;
  feeds: Record<string, number[]>;
  check?: (g: Graph) => void;
  /** The canonical form has no opset-17 spelling (opset-19 coordinate modes): no round trip. */
  noExport?: boolean;
  kiln?: 'unsupported';
}

type Attr = ReturnType<typeof attr.i>;
const ops = (g: Graph): string[] => g.nodes.map((n) => n.op);
const f32 = (name: string, v: number[]) => floatTensor(name, [v.length], v);
const i64 = (name: string, v: number[]) => int64Tensor(name, [v.length], v);

function one(opset: number, op: string, shape: (number | string)[], attrs: Attr[] = [], extra: string[] = [], initializers: ModelSpec['initializers'] = [], outputs = ['y']): ModelSpec {
  return {
    opset,
    inputs: [valueInfo('x', shape)],
    outputs: outputs.map((o) => valueInfo(o)),
    nodes: [node(op, ['x', ...extra], outputs, attrs)],
    initializers,
  };
}

/** Resize at opset >= 11 with constant scales or sizes. */
function resize(opset: number, shape: (number | string)[], how: { scales?: number[]; sizes?: number[] }, attrs: Attr[]): ModelSpec {
  const inits: NonNullable<ModelSpec['initializers']> = [];
  // roi: optional from opset 13, an (empty) input before.
  const inputs = opset < 13 ? ['roi', ''] : ['', ''];
  if (opset < 13) inits.push(f32('roi', []));
  if (how.scales) {
    inits.push(f32('scales', how.scales));
    inputs[1] = 'scales';
  } else {
    inits.push(i64('sizes', how.sizes!));
    inputs.push('sizes');
  }
  return one(opset, 'Resize', shape, attrs, inputs, inits);
}

const s = attr.s;
const cases: Case[] = [
  // Resize: nearest
  { name: 'Resize 13 nearest 2x (half_pixel, round_prefer_floor)', spec: resize(13, ['N', 3, 5, 7], { scales: [1, 1, 2, 2] }, [s('mode', 'nearest')]), feeds: { x: [2, 3, 5, 7] } },
  {
    name: 'Resize 11 nearest 2x asymmetric floor (PyTorch export)',
    spec: resize(11, ['N', 4, 6, 9], { scales: [1, 1, 2, 2] }, [s('mode', 'nearest'), s('coordinate_transformation_mode', 'asymmetric'), s('nearest_mode', 'floor')]),
    feeds: { x: [3, 4, 6, 9] },
  },
  {
    name: 'Resize 13 nearest round_prefer_ceil to odd sizes',
    spec: resize(13, [1, 3, 5, 6], { sizes: [1, 3, 7, 11] }, [s('mode', 'nearest'), s('nearest_mode', 'round_prefer_ceil')]),
    feeds: { x: [1, 3, 5, 6] },
  },
  {
    name: 'Resize 13 nearest ceil align_corners downscale',
    spec: resize(13, [1, 2, 9, 10], { sizes: [1, 2, 4, 3] }, [s('mode', 'nearest'), s('coordinate_transformation_mode', 'align_corners'), s('nearest_mode', 'ceil')]),
    feeds: { x: [1, 2, 9, 10] },
  },
  {
    name: 'Resize 13 nearest tf_half_pixel_for_nn 3x',
    spec: resize(13, ['N', 2, 3, 4], { scales: [1, 1, 3, 3] }, [s('mode', 'nearest'), s('coordinate_transformation_mode', 'tf_half_pixel_for_nn')]),
    feeds: { x: [2, 2, 3, 4] },
  },
  {
    name: 'Resize 13 nearest pytorch_half_pixel 1.5x on a 3-D input (W only)',
    spec: resize(13, ['N', 3, 10], { scales: [1, 1, 1.5] }, [s('mode', 'nearest'), s('coordinate_transformation_mode', 'pytorch_half_pixel')]),
    feeds: { x: [2, 3, 10] },
  },
  // Resize: linear and cubic
  { name: 'Resize 13 linear 2x half_pixel', spec: resize(13, ['N', 3, 5, 7], { scales: [1, 1, 2, 2] }, [s('mode', 'linear')]), feeds: { x: [2, 3, 5, 7] } },
  {
    name: 'Resize 13 linear align_corners to sizes',
    spec: resize(13, [1, 3, 4, 5], { sizes: [1, 3, 9, 13] }, [s('mode', 'linear'), s('coordinate_transformation_mode', 'align_corners')]),
    feeds: { x: [1, 3, 4, 5] },
  },
  {
    name: 'Resize 11 linear pytorch_half_pixel downscale 0.6',
    spec: resize(11, ['N', 2, 11, 9], { scales: [1, 1, 0.6, 0.6] }, [s('mode', 'linear'), s('coordinate_transformation_mode', 'pytorch_half_pixel')]),
    feeds: { x: [2, 2, 11, 9] },
  },
  {
    name: 'Resize 13 linear asymmetric 2.5x',
    spec: resize(13, ['N', 2, 3, 5], { scales: [1, 1, 2.5, 2.5] }, [s('mode', 'linear'), s('coordinate_transformation_mode', 'asymmetric')]),
    feeds: { x: [1, 2, 3, 5] },
  },
  { name: 'Resize 13 cubic half_pixel 2x', spec: resize(13, ['N', 2, 6, 5], { scales: [1, 1, 2, 2] }, [s('mode', 'cubic')]), feeds: { x: [2, 2, 6, 5] } },
  {
    name: 'Resize 13 cubic exclude_outside A=-0.5 to sizes',
    spec: resize(13, [1, 2, 7, 6], { sizes: [1, 2, 5, 11] }, [s('mode', 'cubic'), attr.f('cubic_coeff_a', -0.5), attr.i('exclude_outside', 1)]),
    feeds: { x: [1, 2, 7, 6] },
  },
  // Large enough to split into parallel chunks.
  { name: 'Resize 13 nearest 2x, large (parallel chunks)', spec: resize(13, ['N', 32, 40, 40], { scales: [1, 1, 2, 2] }, [s('mode', 'nearest')]), feeds: { x: [4, 32, 40, 40] } },
  { name: 'Resize 13 linear 2x, large (parallel chunks)', spec: resize(13, ['N', 32, 40, 40], { scales: [1, 1, 2, 2] }, [s('mode', 'linear')]), feeds: { x: [4, 32, 40, 40] } },
  {
    name: 'Slice with a negative step, large (parallel chunks)',
    spec: one(13, 'Slice', ['N', 32, 40, 40], [], ['starts', 'ends', 'axes', 'steps'], [i64('starts', [30, -1]), i64('ends', [2, -100]), i64('axes', [1, 3]), i64('steps', [-3, -1])]),
    feeds: { x: [4, 32, 40, 40] },
  },
  // Whole trailing axes fold into one run per image or per row (ShuffleNet's channel split and shuffle).
  {
    name: 'Slice of channels with whole planes (one run per image)',
    spec: one(13, 'Slice', ['N', 12, 5, 7], [], ['starts', 'ends', 'axes'], [i64('starts', [3]), i64('ends', [9]), i64('axes', [1])]),
    feeds: { x: [3, 12, 5, 7] },
  },
  {
    name: 'Slice of rows with whole width, every other channel',
    spec: one(13, 'Slice', ['N', 6, 9, 7], [], ['starts', 'ends', 'axes', 'steps'], [i64('starts', [0, 2]), i64('ends', [6, 8]), i64('axes', [1, 2]), i64('steps', [2, 1])]),
    feeds: { x: [2, 6, 9, 7] },
  },
  { name: 'Transpose 0 2 1 3 4 (channel shuffle: whole planes)', spec: one(13, 'Transpose', ['N', 2, 3, 5, 7], [attr.ints('perm', [0, 2, 1, 3, 4])]), feeds: { x: [2, 2, 3, 5, 7] } },
  { name: 'Transpose 0 3 1 2 4 (rows of W move whole)', spec: one(13, 'Transpose', ['N', 2, 3, 5, 7], [attr.ints('perm', [0, 3, 1, 2, 4])]), feeds: { x: [2, 2, 3, 5, 7] } },
  { name: 'Transpose 0 1 3 2 (nothing folds)', spec: one(13, 'Transpose', ['N', 4, 5, 7], [attr.ints('perm', [0, 1, 3, 2])]), feeds: { x: [2, 4, 5, 7] } },
  {
    name: 'Resize 13 with sizes built from the input shape (dynamic batch, PyTorch interpolate(size=...))',
    spec: {
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 4, 5])],
      outputs: [valueInfo('y')],
      nodes: [
        node('Shape', ['x'], ['shape']),
        node('Slice', ['shape', 'zero', 'two'], ['nc']),
        node('Concat', ['nc', 'hw'], ['sizes'], [attr.i('axis', 0)]),
        node('Resize', ['x', '', '', 'sizes'], ['y'], [s('mode', 'linear')]),
      ],
      initializers: [i64('zero', [0]), i64('two', [2]), i64('hw', [8, 10])],
    },
    feeds: { x: [3, 3, 4, 5] },
    check: (g) => expect(ops(g)).toEqual(['Resize']),
  },
  // Resize: opset forms
  { name: 'Resize 10 nearest 2x', spec: one(10, 'Resize', ['N', 3, 4, 5], [s('mode', 'nearest')], ['scales'], [f32('scales', [1, 1, 2, 2])]), feeds: { x: [2, 3, 4, 5] } },
  { name: 'Resize 10 linear 1.5x', spec: one(10, 'Resize', ['N', 3, 4, 6], [s('mode', 'linear')], ['scales'], [f32('scales', [1, 1, 1.5, 1.5])]), feeds: { x: [2, 3, 4, 6] } },
  { name: 'Resize 10 nearest downscale 0.5', spec: one(10, 'Resize', ['N', 3, 8, 6], [s('mode', 'nearest')], ['scales'], [f32('scales', [1, 1, 0.5, 0.5])]), feeds: { x: [2, 3, 8, 6] } },
  {
    name: 'Upsample 7 nearest (scales attribute)',
    spec: one(7, 'Upsample', ['N', 3, 4, 5], [s('mode', 'nearest'), attr.floats('scales', [1, 1, 2, 2])]),
    feeds: { x: [2, 3, 4, 5] },
    check: (g) => expect(ops(g)).toEqual(['Resize']),
  },
  { name: 'Upsample 9 linear (scales input)', spec: one(9, 'Upsample', ['N', 3, 4, 5], [s('mode', 'linear')], ['scales'], [f32('scales', [1, 1, 2, 3])]), feeds: { x: [2, 3, 4, 5] } },
  {
    name: 'Resize 18 axes [2, 3] with two scales',
    spec: resize(18, ['N', 3, 4, 5], { scales: [2, 2] }, [s('mode', 'nearest'), attr.ints('axes', [2, 3])]),
    feeds: { x: [2, 3, 4, 5] },
  },
  {
    name: 'Resize 18 keep_aspect_ratio_policy not_larger',
    spec: resize(18, [1, 3, 4, 6], { sizes: [10, 10] }, [s('mode', 'linear'), attr.ints('axes', [2, 3]), s('keep_aspect_ratio_policy', 'not_larger')]),
    feeds: { x: [1, 3, 4, 6] },
    // Output sizes and scales that disagree: opset 17 cannot say it, so export refuses.
    noExport: true,
    check: (g) => expect(() => exportModel(g)).toThrow(/keep_aspect_ratio_policy/),
  },
  {
    name: 'Resize 19 half_pixel_symmetric linear',
    spec: resize(19, ['N', 2, 5, 4], { scales: [1, 1, 1.7, 2.3] }, [s('mode', 'linear'), s('coordinate_transformation_mode', 'half_pixel_symmetric')]),
    feeds: { x: [2, 2, 5, 4] },
    noExport: true,
  },
  {
    name: 'Resize 13 tf_crop_and_resize linear with an extrapolation value (roi and attribute exported)',
    spec: one(13, 'Resize', ['N', 2, 7, 9], [s('mode', 'linear'), s('coordinate_transformation_mode', 'tf_crop_and_resize'), attr.f('extrapolation_value', 3.5)], ['roi', '', 'sizes'], [
      f32('roi', [0, 0, -0.2, 0.15, 1, 1, 0.9, 1.3]), i64('sizes', [2, 2, 6, 11]),
    ]),
    feeds: { x: [2, 2, 7, 9] },
  },
  {
    name: 'Resize 18 antialias cubic downscale (runs; opset 17 export refuses it)',
    spec: resize(18, [1, 2, 9, 13], { sizes: [1, 2, 4, 5] }, [s('mode', 'cubic'), attr.i('antialias', 1)]),
    feeds: { x: [1, 2, 9, 13] },
    noExport: true,
    check: (g) => expect(() => exportModel(g)).toThrow(/antialias needs opset 18/),
  },
  {
    name: 'Resize 13 of the channel axis is refused',
    spec: resize(13, ['N', 3, 4, 5], { scales: [1, 2, 1, 1] }, [s('mode', 'nearest')]),
    feeds: { x: [1, 3, 4, 5] },
    kiln: 'unsupported',
  },
  // Slice
  {
    name: 'Slice 13 starts/ends/axes/steps with a negative step and clamping',
    spec: one(13, 'Slice', ['N', 5, 7, 9], [], ['starts', 'ends', 'axes', 'steps'], [i64('starts', [-1, 1, 100]), i64('ends', [-1000, 6, 0]), i64('axes', [3, 2, 1]), i64('steps', [-2, 2, -1])]),
    feeds: { x: [2, 5, 7, 9] },
  },
  {
    name: 'Slice 10 without axes (the batch kept whole)',
    spec: one(10, 'Slice', ['N', 6, 5], [], ['starts', 'ends'], [i64('starts', [0, 1, -3]), i64('ends', [2147483647, 5, 100])]),
    feeds: { x: [3, 6, 5] },
  },
  { name: 'Slice 9 attributes', spec: one(9, 'Slice', ['N', 6, 5], [attr.ints('starts', [1]), attr.ints('ends', [4]), attr.ints('axes', [1])]), feeds: { x: [2, 6, 5] } },
  { name: 'Slice of the batch axis is refused', spec: one(13, 'Slice', ['N', 6], [], ['starts', 'ends'], [i64('starts', [1]), i64('ends', [2])]), feeds: { x: [3, 6] }, kiln: 'unsupported' },
  // Split
  { name: 'Split 11 split attribute', spec: one(11, 'Split', ['N', 7, 3], [attr.i('axis', 1), attr.ints('split', [2, 5])], [], [], ['a', 'b']), feeds: { x: [2, 7, 3] } },
  { name: 'Split 13 split input on the last axis', spec: one(13, 'Split', ['N', 3, 9], [attr.i('axis', -1)], ['split'], [i64('split', [4, 1, 4])], ['a', 'b', 'c']), feeds: { x: [2, 3, 9] } },
  { name: 'Split 13 equal parts', spec: one(13, 'Split', ['N', 6, 4, 4], [attr.i('axis', 1)], [], [], ['a', 'b', 'c']), feeds: { x: [2, 6, 4, 4] } },
  { name: 'Split 18 num_outputs uneven', spec: one(18, 'Split', ['N', 7, 2], [attr.i('axis', 1), attr.i('num_outputs', 3)], [], [], ['a', 'b', 'c']), feeds: { x: [2, 7, 2] } },
  // Gather
  { name: 'Gather axis 1 with negative indices', spec: one(13, 'Gather', ['N', 5, 4], [attr.i('axis', 1)], ['idx'], [i64('idx', [4, -1, 0, -5])]), feeds: { x: [2, 5, 4] } },
  { name: 'Gather axis -1 with 2-D indices', spec: one(13, 'Gather', ['N', 3, 6], [attr.i('axis', -1)], ['idx'], [int64Tensor('idx', [2, 2], [5, 0, 1, 1])]), feeds: { x: [2, 3, 6] } },
  { name: 'Gather a scalar index (drops the axis)', spec: one(13, 'Gather', ['N', 3, 6], [attr.i('axis', 1)], ['idx'], [int64Tensor('idx', [], [2])]), feeds: { x: [2, 3, 6] } },
  // Expand / Tile
  { name: 'Expand size-1 dims', spec: one(13, 'Expand', ['N', 3, 1, 5], [], ['shape'], [i64('shape', [1, 3, 4, 5])]), feeds: { x: [2, 3, 1, 5] } },
  { name: 'Expand with a shorter shape', spec: one(13, 'Expand', ['N', 1, 5], [], ['shape'], [i64('shape', [4, 1])]), feeds: { x: [2, 1, 5] } },
  { name: 'Tile', spec: one(13, 'Tile', ['N', 2, 3, 1], [], ['repeats'], [i64('repeats', [1, 2, 3, 4])]), feeds: { x: [2, 2, 3, 1] } },
  // Concat
  {
    name: 'Concat on H with a constant input',
    spec: {
      opset: 13,
      inputs: [valueInfo('x', ['N', 2, 3, 4])],
      outputs: [valueInfo('y')],
      nodes: [node('Concat', ['c', 'x', 'x'], ['y'], [attr.i('axis', 2)])],
      initializers: [randomTensor('c', [1, 2, 2, 4], 7)],
    },
    feeds: { x: [1, 2, 3, 4] },
  },
  {
    name: 'Concat on the last axis',
    spec: {
      opset: 11,
      inputs: [valueInfo('x', ['N', 2, 3]), valueInfo('z', ['N', 2, 5])],
      outputs: [valueInfo('y')],
      nodes: [node('Concat', ['x', 'z', 'x'], ['y'], [attr.i('axis', -1)])],
    },
    feeds: { x: [2, 2, 3], z: [2, 2, 5] },
  },
  {
    // The batch axis cannot stay leading: this runs on the unit-batch path (runtime/unit-batch.ts).
    name: 'Concat along the batch axis',
    spec: { opset: 13, inputs: [valueInfo('x', [1, 3])], outputs: [valueInfo('y')], nodes: [node('Concat', ['x', 'x'], ['y'], [attr.i('axis', 0)])] },
    feeds: { x: [1, 3] },
  },
  // DepthToSpace / SpaceToDepth
  { name: 'DepthToSpace DCR', spec: one(13, 'DepthToSpace', ['N', 8, 3, 5], [attr.i('blocksize', 2)]), feeds: { x: [2, 8, 3, 5] } },
  { name: 'DepthToSpace CRD blocksize 3', spec: one(13, 'DepthToSpace', ['N', 18, 2, 3], [attr.i('blocksize', 3), s('mode', 'CRD')]), feeds: { x: [2, 18, 2, 3] } },
  { name: 'SpaceToDepth', spec: one(13, 'SpaceToDepth', ['N', 3, 4, 6], [attr.i('blocksize', 2)]), feeds: { x: [2, 3, 4, 6] } },
];

describe('data-movement ops against onnxruntime', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const original = model(c.spec);
      const graph = await importModel(original);
      c.check?.(graph);
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      let seed = 300;
      for (const [name, dims] of Object.entries(c.feeds)) feeds[name] = { data: randomData(dims.reduce((a, b) => a * b, 1), seed++, 2), dims };
      const expected = await runOrt(original, feeds);
      if (!c.noExport) {
        const roundTrip = await runOrt(exportModel(graph), feeds);
        for (const [name, value] of Object.entries(expected)) {
          expect(roundTrip[name]!.dims).toEqual(value.dims);
          expect(maxScaledDiff(roundTrip[name]!.data, value.data)).toBeLessThanOrEqual(1e-6);
        }
      }
      const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)]));
      if (c.kiln === 'unsupported') {
        await expect(compareWithOnnxRuntime(original, tensors)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP });
        return;
      }
      const kiln = await compareWithOnnxRuntime(original, tensors);
      for (const out of kiln.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
      for (const out of kiln.outputs) expect(out.maxAbsDiff, out.name).toBeLessThanOrEqual(1e-4);
    });
  }
});
