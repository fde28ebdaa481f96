/**
 * AveragePool between int8 layers as QLinearAveragePool (DenseNet's transitions: conv -> 2x2
 * average -> the next block's Concat): the step on the codes (AvgPoolU8, NHWC in and out) against
 * the reference interpreter on odd shapes, windows, padding with and without count_include_pad,
 * ceil_mode and dilation, batches 1 and 3, on every ISA; PTQ's graph (the pool and the Concat
 * after it int8, nothing float between int8 layers); the runtime bit for bit against the
 * reference; onnxruntime on the QDQ export; the export importing back as the same int8 ops; a
 * .kiln round trip; a pool whose output is the graph's staying float; bad attributes refused by name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type Attrs, type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime, exportModel, importModel } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { Plan, type PlanSpec } from '../../src/runtime/plan.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { argmaxRows, random, runNative, tensor } from '../support/int8-graphs.js';
import { forEachIsaAsync } from '../kernels/kernel-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-ptq-avgpool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** x -> QuantizeLinear -> QLinearAveragePool (window `pool`) -> DequantizeLinear, in the int8 IR. */
function pooledCodes(c: number, h: number, w: number, pool: Attrs, dtype: 'uint8' | 'int8'): Graph {
  const b = new GraphBuilder('avgpool-u8');
  const x = b.addInput('x', ['N', c, h, w]);
  const [xz, yz] = dtype === 'uint8' ? [131, 17] : [-9, 4];
  const q = b.addNode('QuantizeLinear', [x], { scale: 0.043, zero_point: xz, dtype });
  const attrs = { kernel_shape: [2, 2], ...pool, x_scale: 0.043, x_zero_point: xz, y_scale: 0.0297, y_zero_point: yz, y_dtype: dtype };
  const p = b.addNode('QLinearAveragePool', [q], attrs, 'pool');
  // Scale 1, zero point 0: the output is the codes themselves, compared exactly.
  const y = b.addNode('DequantizeLinear', [p], { scale: 1, zero_point: 0 });
  return b.build([{ name: y, dtype: 'float32', shape: ['N', c, 'OH', 'OW'] }]);
}

const windows: Array<[string, Attrs]> = [
  ['2x2 stride 2 (DenseNet)', { kernel_shape: [2, 2], strides: [2, 2] }],
  ['3x3 stride 1, pads 1, count_include_pad 0', { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }],
  ['3x3 stride 1, pads 1, count_include_pad 1', { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 1 }],
  ['3x3 stride 2, ceil_mode, pads 0,1,1,0', { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 1, 1, 0], ceil_mode: 1 }],
  ['2x3 strides 1,2, dilations 2,1', { kernel_shape: [2, 3], strides: [1, 2], dilations: [2, 1] }],
  ['5x5 stride 3, pads 2, count_include_pad 1, ceil_mode', { kernel_shape: [5, 5], strides: [3, 3], pads: [2, 2, 2, 2], count_include_pad: 1, ceil_mode: 1 }],
];

describe('AvgPoolU8: QLinearAveragePool on the codes', () => {
  const next = random(41);
  for (const [label, pool] of windows) {
    for (const [c, h, w] of [[1, 4, 4], [5, 7, 9], [17, 11, 6], [64, 8, 8]] as const) {
      it(`${label}, [${c}, ${h}, ${w}]: the reference's codes on every ISA, uint8 and int8, batches 1 and 3`, async () => {
        for (const dtype of ['uint8', 'int8'] as const) {
          const graph = pooledCodes(c, h, w, pool, dtype);
          const session = await InferenceSession.create(graph, { intraOpNumThreads: 2 });
          expect(session.info().steps.join('\n')).toMatch(/^AvgPoolU8 pool: u8 NHWC/m);
          const seen = new Set<number>();
          await forEachIsaAsync(async () => {
            for (const batch of [1, 3]) {
              const x = tensor([batch, c, h, w], 6, next);
              const got = (await session.run({ x }))[graph.outputs[0].name];
              const want = runInt8Reference(graph, { x })[graph.outputs[0].name];
              expect(got.dims).toEqual(want.dims);
              expect(Array.from(got.data as Float32Array)).toEqual(Array.from(want.data as Float32Array));
              for (const v of got.data as Float32Array) seen.add(v);
            }
          });
          session.release();
          // Not a constant: the window's mean moves with the image.
          expect(seen.size).toBeGreaterThan(2);
        }
      });
    }
  }

  it('refuses a zero scale, a window over 2^15 taps and pads as large as the window, naming the attribute', () => {
    const spec = (attrs: Record<string, number | number[]>): PlanSpec => ({
      values: [[4, 9, 9], [4, 9, 9], [4, 3, 3], [4, 3, 3]],
      valueTypes: ['float32', 'uint8', 'uint8', 'float32'],
      inputs: [0],
      outputs: [3],
      steps: [
        { op: 'QuantizeLinear', name: 'q', inputs: [0], outputs: [1], attrs: { scale: 1, zero_point: 0, channels: 1 } },
        { op: 'AvgPoolU8', name: 'pool', inputs: [1], outputs: [2], attrs: { kernel: [3, 3], strides: [3, 3], x_scale: 1, x_zero_point: 0, y_scale: 1, y_zero_point: 0, ...attrs } },
        { op: 'DequantizeLinear', name: 'dq', inputs: [2], outputs: [3], attrs: { scale: 1, zero_point: 0, channels: 1 } },
      ],
    });
    expect(() => Plan.createSync(spec({})).dispose()).not.toThrow();
    expect(() => Plan.createSync(spec({ y_scale: 0 }))).toThrow(/y_scale/);
    expect(() => Plan.createSync(spec({ x_scale: Number.NaN }))).toThrow(/x_scale/);
    expect(() => Plan.createSync(spec({ pads: [3, 0, 0, 0] }))).toThrow(/attrs\.pads/);
    const wide: PlanSpec = { ...spec({ kernel: [1, 40000], strides: [1, 1] }), values: [[1, 1, 40000], [1, 1, 40000], [1, 1, 1], [1, 1, 1]] };
    expect(() => Plan.createSync(wide)).toThrow(/attrs\.kernel/);
  });
});

const C = 6;
const H = 10;
const CLASSES = 5;

/**
 * A DenseNet transition and the first layers of the block after it: conv 3x3 -> ReLU -> conv 1x1
 * -> AveragePool (`pool`) -> conv 3x3 of the pooled map, concatenated with it -> conv 1x1 ->
 * GlobalAveragePool -> Flatten -> Gemm. With `poolOutput`, the graph ends at the pool instead.
 */
function transitionGraph(pool: Attrs = { kernel_shape: [2, 2], strides: [2, 2] }, poolOutput = false, seed = 5): Graph {
  const next = random(seed);
  const g = new GraphBuilder('transition');
  const x = g.addInput('x', ['N', 3, H, H]);
  const conv = (name: string, input: string, cin: number, cout: number, k: number) => {
    const w = g.addInitializer(`${name}_w`, tensor([cout, cin, k, k], 0.6, next));
    const b = g.addInitializer(`${name}_b`, tensor([cout], 0.2, next));
    const p = (k - 1) / 2;
    return g.addNode('Conv', [input, w, b], { kernel_shape: [k, k], pads: [p, p, p, p], strides: [1, 1], dilations: [1, 1], group: 1 }, name);
  };
  const h1 = g.addNode('Relu', [conv('conv1', x, 3, C, 3)], {}, 'relu1');
  const t = conv('transition', h1, C, C, 1);
  const pooled = g.addNode('AveragePool', [t], pool, 'pool');
  if (poolOutput) return g.build([{ name: pooled, dtype: 'float32', shape: ['N', C, 'OH', 'OW'] }]);
  const grown = conv('layer1', pooled, C, 4, 3);
  const cat = g.addNode('Concat', [pooled, grown], { axis: 1 }, 'concat');
  const squeezed = conv('layer2', cat, C + 4, C, 1);
  const gap = g.addNode('GlobalAveragePool', [squeezed], {}, 'gap');
  const flat = g.addNode('Flatten', [gap], { axis: 1 }, 'flatten');
  const wf = g.addInitializer('wf', tensor([CLASSES, C], 0.7, next));
  const logits = g.addNode('Gemm', [flat, wf], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

const images = (n: number, seed: number) => tensor([n, 3, H, H], 1.5, random(seed));
const calibration = images(64, 1);
const held = images(120, 2);

describe('quantize: AveragePool as QLinearAveragePool', () => {
  for (const activations of ['uint8', 'int8'] as const) {
    it(`${activations}: the transition's pool and the Concat after it run int8, with nothing float between int8 layers`, async () => {
      const float = transitionGraph();
      const { graph, report } = await quantize(float, calibration, { activations, reportImages: 0 });
      expect(report.fp32Nodes).toEqual([]);
      expect(graph.nodes.map((n) => n.op)).toEqual([
        'QuantizeLinear', 'QLinearConv', 'QLinearConv', 'QLinearAveragePool', 'QLinearConv', 'QLinearConcat', 'QLinearConv', 'QLinearGlobalAveragePool', 'Flatten', 'QLinearGemm',
      ]);
      const pool = graph.nodes.find((n) => n.op === 'QLinearAveragePool')!;
      const before = graph.nodes.find((n) => n.name === 'transition')!;
      expect([pool.attrs.x_scale, pool.attrs.x_zero_point]).toEqual([before.attrs.y_scale, before.attrs.y_zero_point]);
      expect(pool.attrs.kernel_shape).toEqual([2, 2]);
      expect(pool.attrs.y_dtype).toBe(activations);
      // The runtime keeps the codes NHWC through the pool: no transpose, no float step.
      const session = await InferenceSession.create(graph);
      const steps = session.info().steps.join('\n');
      session.release();
      expect(steps).toMatch(/^AvgPoolU8 pool: u8 NHWC 2x2 s2x2/m);
      expect(steps).not.toMatch(/^(AveragePool|TransposeU8|DequantizeLinear) /m);
    });
  }

  for (const [label, pool] of windows.filter(([, p]) => !(p.kernel_shape as number[]).includes(5))) {
    it(`${label}: the native runtime equals the reference interpreter bit for bit; top-1 agrees with fp32`, async () => {
      const float = transitionGraph(pool);
      const { graph } = await quantize(float, calibration, { reportImages: 0 });
      expect(graph.nodes.filter((n) => n.op === 'QLinearAveragePool')).toHaveLength(1);
      const native = await runNative(graph, held);
      expect(Array.from(native)).toEqual(Array.from(runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array));
      const a = argmaxRows(native, CLASSES);
      const b = argmaxRows(await runNative(float, held), CLASSES);
      const agreement = a.filter((c, i) => c === b[i]).length / a.length;
      console.log(`transition graph, ${label}: int8 vs fp32 top-1 agreement ${(agreement * 100).toFixed(1)}% on ${a.length} random images`);
      expect(agreement).toBeGreaterThanOrEqual(0.85);
    });
  }

  it('onnxruntime on the QDQ export (DQ -> AveragePool -> Q) agrees with Kiln to a code', async () => {
    for (const [, pool] of [windows[0], windows[2], windows[3]]) {
      const { graph } = await quantize(transitionGraph(pool), calibration, { reportImages: 0 });
      const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
      const o = result.outputs[0];
      expect(result.engine).toBe('runtime');
      expect(o.top1Agreement).toBeGreaterThanOrEqual(0.98);
      expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
    }
  });

  it('the QDQ export imports back as the same int8 ops, with the same outputs bit for bit', async () => {
    const { graph } = await quantize(transitionGraph(windows[3][1]), calibration, { reportImages: 0 });
    const back = await importModel(exportModel(graph));
    const int8Ops = (g: Graph) => g.nodes.map((n) => n.op).filter((op) => op.startsWith('QLinear')).sort();
    expect(int8Ops(back)).toEqual(int8Ops(graph));
    const pool = back.nodes.find((n) => n.op === 'QLinearAveragePool')!;
    expect([pool.attrs.kernel_shape, pool.attrs.strides, pool.attrs.ceil_mode]).toEqual([[3, 3], [2, 2], 1]);
    expect(Array.from(await runNative(back, held))).toEqual(Array.from(await runNative(graph, held)));
  });

  it('a .kiln file keeps the int8 pool (same outputs after a round trip); a corrupt scale is refused', async () => {
    const { graph } = await quantize(transitionGraph(), calibration, { reportImages: 0 });
    const path = join(dir, 'transition.kiln');
    await save(graph, path);
    const loaded = await loadGraph(path);
    expect(loaded.nodes.filter((n) => n.op === 'QLinearAveragePool')).toHaveLength(1);
    expect(Array.from(await runNative(loaded, held))).toEqual(Array.from(await runNative(graph, held)));
    const corrupt: Graph = { ...graph, nodes: graph.nodes.map((n) => (n.op === 'QLinearAveragePool' ? { ...n, attrs: { ...n.attrs, x_scale: -1 } } : n)) };
    const saved = await save(corrupt, join(dir, 'corrupt.kiln')).then(() => undefined, (e: unknown) => e);
    if (saved !== undefined) {
      expect(String((saved as Error).message)).toMatch(/x_scale/);
    } else {
      await expect(loadGraph(join(dir, 'corrupt.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringMatching(/x_scale/) });
    }
  });

  it('a pool whose output is the graph output stays float, and the report says why', async () => {
    const { graph, report } = await quantize(transitionGraph(undefined, true), calibration, { reportImages: 0 });
    expect(graph.nodes.some((n) => n.op === 'AveragePool' && n.name === 'pool')).toBe(true);
    expect(report.fp32Nodes.find((n) => n.node === 'pool')?.reason).toMatch(/graph output/);
  });
});
