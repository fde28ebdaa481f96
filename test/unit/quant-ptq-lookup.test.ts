/**
 * Elementwise functions between quantized layers as QLinearLookup (src/graph/int8-lookup.ts):
 * HardSwish, SiLU (Sigmoid + Mul, as exporters write it), Sigmoid and the other unary functions
 * become one 256-entry table on the stored codes instead of DequantizeLinear -> float op ->
 * QuantizeLinear. Checked: the table against Q(f(DQ(q))) computed directly; the native LookupU8
 * step against its table on odd sizes and batches, in place, on every ISA (the row kernels
 * themselves: native/test/s8-conv-test.cc), and refusing bad tables; PTQ's graph
 * (no DQ/Q between int8 nodes, the report); the runtime bit for bit against the reference
 * interpreter; onnxruntime on the QDQ export; a .kiln round trip and a corrupt function name.
 * Squeeze-and-excitation in int8: the QLinearMul (channel gate, NCHW and NHWC, or two images of one
 * shape) and GlobalAvgPoolU8 steps against the definition on odd shapes, and refusing bad
 * shapes; PTQ's SE block (GlobalAveragePool or ReduceMean) int8 end to end, bit for bit against
 * the reference, and onnxruntime agreeing on the export; a gate whose product is a graph output
 * staying float.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { LOOKUP_FUNCTIONS, lookupFunction, lookupTable, storedTable } from '../../src/graph/int8-lookup.js';
import { type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime, exportModel, importModel } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { Plan, type PlanSpec, type PlanStepSpec } from '../../src/runtime/plan.js';
import { Tensor } from '../../src/tensor.js';
import { argmaxRows, random, runNative, tensor } from '../support/int8-graphs.js';
import { forEachIsa } from '../kernels/kernel-helpers.js';



const C = 5;
const H = 9;
const CLASSES = 7;

/**
 * conv -> HardSwish -> conv -> SiLU (Sigmoid, Mul) -> conv -> Sigmoid -> conv -> Tanh -> conv,
 * then (se) a squeeze-and-excitation gate: GlobalAveragePool (or ReduceMean over H, W) -> conv ->
 * Sigmoid -> Mul with the feature map, its product either read by flatten and gemm or the graph's
 * output ('gate-output'); or (product) conv5's output times a conv of itself; then flatten, gemm.
 */
type Variant = 'plain' | 'se' | 'se-reducemean' | 'gate-output' | 'product';
function activationsGraph(variant: Variant = 'plain', seed = 3): Graph {
  const next = random(seed);
  const g = new GraphBuilder('activations');
  const x = g.addInput('x', ['N', 3, H, H]);
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
  let h = x;
  let cin = 3;
  const layer = (name: string) => {
    const w = g.addInitializer(`${name}_w`, tensor([C, cin, 3, 3], 0.6, next));
    const b = g.addInitializer(`${name}_b`, tensor([C], 0.2, next));
    cin = C;
    h = g.addNode('Conv', [h, w, b], conv, name);
  };
  layer('conv1');
  h = g.addNode('HardSwish', [h], {}, 'hardswish');
  layer('conv2');
  const s = g.addNode('Sigmoid', [h], {}, 'silu_sigmoid');
  h = g.addNode('Mul', [h, s], {}, 'silu_mul');
  layer('conv3');
  h = g.addNode('Sigmoid', [h], {}, 'sigmoid');
  layer('conv4');
  h = g.addNode('Tanh', [h], {}, 'tanh');
  layer('conv5');
  if (variant === 'se' || variant === 'se-reducemean' || variant === 'gate-output') {
    const pooled = variant === 'se-reducemean' ? g.addNode('ReduceMean', [h], { axes: [2, 3], keepdims: 1 }, 'se_pool') : g.addNode('GlobalAveragePool', [h], {}, 'se_pool');
    const w = g.addInitializer('se_w', tensor([C, C, 1, 1], 0.5, next));
    const gate = g.addNode('Sigmoid', [g.addNode('Conv', [pooled, w], { kernel_shape: [1, 1] }, 'se_conv')], {}, 'se_sigmoid');
    // The gate first: QLinearMul takes the image as a whichever side it comes from.
    h = g.addNode('Mul', [gate, h], {}, 'se_mul');
    if (variant === 'gate-output') return g.build([{ name: h, dtype: 'float32', shape: ['N', C, H, H] }]);
  }
  if (variant === 'product') {
    const w = g.addInitializer('product_w', tensor([C, C, 1, 1], 0.5, next));
    h = g.addNode('Mul', [h, g.addNode('Conv', [h, w], { kernel_shape: [1, 1] }, 'product_conv')], {}, 'product');
  }
  const flat = g.addNode('Flatten', [h], { axis: 1 }, 'flatten');
  const wf = g.addInitializer('wf', tensor([CLASSES, C * H * H], 0.2, next));
  const logits = g.addNode('Gemm', [flat, wf], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

function images(n: number, seed: number): Tensor<'float32'> {
  return tensor([n, 3, H, H], 1.5, random(seed));
}



/**
 * onnxruntime on the graph's QDQ export against Kiln's int8 runtime on the held-out images: ORT
 * evaluates each function in float32 with its own exp (or fuses DQ -> op -> Q into an int8 op of
 * its own), so a code on a rounding tie could land one step apart; no more.
 */
async function expectOrtAgrees(graph: Graph, label: string): Promise<void> {
  const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
  const o = result.outputs[0];
  console.log(`${label}: Kiln int8 vs ORT on the QDQ export: top-1 ${(o.top1Agreement * 100).toFixed(1)}%, max logit difference ${o.maxDiffSteps?.toFixed(2)} steps`);
  expect(result.engine).toBe('runtime');
  expect(o.top1Agreement).toBeGreaterThanOrEqual(0.98);
  expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
}

const calibration = images(96, 1);
const held = images(150, 2);
const dir = mkdtempSync(join(tmpdir(), 'kiln-ptq-lookup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lookup tables', () => {
  const params = [
    { x: { scale: 0.037, zeroPoint: 131, dtype: 'uint8' as const }, y: { scale: 0.021, zeroPoint: 17, dtype: 'uint8' as const } },
    { x: { scale: 0.05, zeroPoint: -3, dtype: 'int8' as const }, y: { scale: 0.011, zeroPoint: 0, dtype: 'int8' as const } },
  ];
  for (const name of LOOKUP_FUNCTIONS) {
    it(`${name}: entry k is Q(f(DQ(qmin + k))), saturated to the output's codes`, () => {
      const f = lookupFunction(name)!;
      for (const { x, y } of params) {
        const table = lookupTable(f, x, y);
        const [qmin, lo, hi] = x.dtype === 'uint8' ? [0, 0, 255] : [-128, -128, 127];
        expect(table).toHaveLength(256);
        for (let k = 0; k < 256; k++) {
          const want = Math.round(f((qmin + k - x.zeroPoint) * x.scale) / y.scale) + y.zeroPoint;
          // Half-even rounding and float32 steps may move a tie by one code, never more.
          expect(Math.abs(table[k] - Math.min(hi, Math.max(lo, want)))).toBeLessThanOrEqual(1);
          expect(table[k]).toBeGreaterThanOrEqual(lo);
          expect(table[k]).toBeLessThanOrEqual(hi);
        }
      }
    });
  }

  it('unknown functions have none', () => {
    expect(lookupFunction('Mish')).toBeUndefined();
  });
});

describe('LookupU8 plan step', () => {
  // QuantizeLinear (scale 1: codes are the integers fed) -> LookupU8 -> DequantizeLinear (scale 1).
  function spec(shape: number[], table: number[]): PlanSpec & { steps: PlanStepSpec[] } {
    return {
      values: [shape, shape, shape, shape],
      valueTypes: ['float32', 'uint8', 'uint8', 'float32'],
      inputs: [0],
      outputs: [3],
      steps: [
        { op: 'QuantizeLinear', name: 'q', inputs: [0], outputs: [1], attrs: { scale: 1, zero_point: 0, channels: 1 } },
        { op: 'LookupU8', name: 'lookup', inputs: [1], outputs: [2], attrs: { table, function: 'test' } },
        { op: 'DequantizeLinear', name: 'dq', inputs: [2], outputs: [3], attrs: { scale: 1, zero_point: 0, channels: 1 } },
      ],
    };
  }
  const next = random(11);
  const table = Array.from({ length: 256 }, () => Math.floor((next() + 1) * 128));

  for (const shape of [[1], [7], [3, 5, 11], [64, 33], [4, 129, 129]]) {
    it(`maps every code through the table on every ISA: per-image shape [${shape.join(', ')}], batches 1, 3 and 8`, () => {
      const plan = Plan.createSync(spec(shape, table));
      // The quantized value dies at the lookup: the planner runs it in place.
      expect(plan.info().steps.find((s) => s.includes('u8 table test'))).toMatch(/\(in place\)$/);
      const per = shape.reduce((a, b) => a * b, 1);
      forEachIsa(() => {
        for (const batch of [1, 3, 8]) {
          const codes = Float32Array.from({ length: per * batch }, () => Math.floor((next() + 1) * 128));
          const out = new Float32Array(per * batch).fill(Number.NaN);
          plan.run([codes], [out], batch, false);
          expect(Array.from(out)).toEqual(Array.from(codes, (c) => table[c]));
        }
      });
      plan.dispose();
    });
  }

  it('refuses a table that is not 256 codes in [0, 255], naming the attribute', () => {
    for (const bad of [table.slice(0, 255), [...table.slice(0, 255), 256], [...table.slice(0, 255), -1], [...table.slice(0, 255), 0.5]]) {
      expect(() => Plan.createSync(spec([4], bad))).toThrow(/table/);
    }
    const noTable = spec([4], table);
    delete noTable.steps[1].attrs!.table;
    expect(() => Plan.createSync(noTable)).toThrow(/attrs\.table/);
    const float = spec([4], table);
    float.valueTypes = ['float32', 'float32', 'uint8', 'float32'];
    expect(() => Plan.createSync(float)).toThrow();
  });
});

/** Round half to even, as QuantizeLinear (and the native steps) round. */
function roundEven(v: number): number {
  const f = Math.floor(v);
  return v - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(v);
}

describe('QLinearMul and GlobalAvgPoolU8 plan steps', () => {
  // Codes in, codes out: QuantizeLinear and DequantizeLinear at scale 1 around the step.
  function wrap(shapes: number[][], out: number[], step: PlanStepSpec): PlanSpec {
    const k = shapes.length;
    return {
      values: [...shapes, ...shapes, out, out],
      valueTypes: [...shapes.map(() => 'float32' as const), ...shapes.map(() => 'uint8' as const), 'uint8', 'float32'],
      inputs: shapes.map((_, i) => i),
      outputs: [2 * k + 1],
      steps: [
        ...shapes.map((_, i): PlanStepSpec => ({ op: 'QuantizeLinear', name: `q${i}`, inputs: [i], outputs: [k + i], attrs: { scale: 1, zero_point: 0, channels: 1 } })),
        { ...step, inputs: shapes.map((_, i) => k + i), outputs: [2 * k] },
        { op: 'DequantizeLinear', name: 'dq', inputs: [2 * k], outputs: [2 * k + 1], attrs: { scale: 1, zero_point: 0, channels: 1 } },
      ],
    };
  }
  const next = random(23);
  const codes = (n: number) => Float32Array.from({ length: n }, () => Math.floor((next() + 1) * 128));
  const p = { a_scale: 0.043, a_zero_point: 121, b_scale: 0.0071, b_zero_point: 3, y_scale: 0.0131, y_zero_point: 77 };
  const f32 = Math.fround;
  const mulCode = (a: number, b: number) => {
    const real = f32(f32(f32(p.a_scale) * (a - p.a_zero_point)) * f32(f32(p.b_scale) * (b - p.b_zero_point)));
    return Math.min(255, Math.max(0, roundEven(f32(real / f32(p.y_scale))) + p.y_zero_point));
  };

  for (const [c, h, w] of [[1, 1, 1], [5, 3, 7], [16, 9, 9], [3, 33, 2]]) {
    for (const nhwc of [0, 1]) {
      it(`QLinearMul by a channel gate, [${c}, ${h}, ${w}] ${nhwc ? 'NHWC' : 'NCHW'}, and of two images of one shape, batches 1 and 3, every ISA`, () => {
        const gate = Plan.createSync(wrap([[c, h, w], [c, 1, 1]], [c, h, w], { op: 'QLinearMul', name: 'mul', inputs: [], outputs: [], attrs: { ...p, channels: c, nhwc } }));
        const same = Plan.createSync(wrap([[c, h, w], [c, h, w]], [c, h, w], { op: 'QLinearMul', name: 'mul', inputs: [], outputs: [], attrs: { ...p, channels: 1 } }));
        const per = c * h * w;
        forEachIsa(() => {
          for (const batch of [1, 3]) {
            const [a, g, b] = [codes(batch * per), codes(batch * c), codes(batch * per)];
            const out = new Float32Array(batch * per).fill(Number.NaN);
            gate.run([a, g], [out], batch, false);
            // Channel of element i: NCHW planes, or the fastest axis of NHWC pixels.
            const channel = (i: number) => (nhwc ? (i % per) % c : Math.floor((i % per) / (h * w)));
            expect(Array.from(out)).toEqual(Array.from(a, (v, i) => mulCode(v, g[Math.floor(i / per) * c + channel(i)])));
            same.run([a, b], [out], batch, false);
            expect(Array.from(out)).toEqual(Array.from(a, (v, i) => mulCode(v, b[i])));
          }
        });
        gate.dispose();
        same.dispose();
      });

      it(`GlobalAvgPoolU8, [${c}, ${h}, ${w}] ${nhwc ? 'NHWC' : 'NCHW'}, batches 1 and 3`, () => {
        const attrs = { x_scale: 0.05, x_zero_point: 9, y_scale: 0.021, y_zero_point: 30, nhwc };
        const plan = Plan.createSync(wrap([[c, h, w]], [c, 1, 1], { op: 'GlobalAvgPoolU8', name: 'gap', inputs: [], outputs: [], attrs }));
        const plane = h * w;
        for (const batch of [1, 3]) {
          const x = codes(batch * c * plane);
          const out = new Float32Array(batch * c).fill(Number.NaN);
          plan.run([x], [out], batch, false);
          const want = Array.from({ length: batch * c }, (_, j) => {
            const [n, ch] = [Math.floor(j / c), j % c];
            let sum = 0;
            for (let q = 0; q < plane; q++) sum += x[n * c * plane + (nhwc ? q * c + ch : ch * plane + q)] - attrs.x_zero_point;
            const real = f32(f32(f32(sum) / plane) * f32(attrs.x_scale));
            return Math.min(255, Math.max(0, roundEven(f32(real / f32(attrs.y_scale))) + attrs.y_zero_point));
          });
          expect(Array.from(out)).toEqual(want);
        }
        plan.dispose();
      });
    }
  }

  it('refuse a gate of the wrong size, channels that do not divide the image, a GlobalAvgPoolU8 of another rank, naming the argument', () => {
    const mul = (bShape: number[], channels: number) => wrap([[4, 3, 3], bShape], [4, 3, 3], { op: 'QLinearMul', name: 'mul', inputs: [], outputs: [], attrs: { ...p, channels } });
    expect(() => Plan.createSync(mul([3, 1, 1], 4))).toThrow(/inputs\[1\]/);
    expect(() => Plan.createSync(mul([5, 1, 1], 5))).toThrow(/attrs\.channels/);
    expect(() => Plan.createSync(mul([4, 1, 1], 4)).dispose()).not.toThrow();
    const bad = { ...p, a_scale: 0 };
    expect(() => Plan.createSync(wrap([[4, 3, 3], [4, 1, 1]], [4, 3, 3], { op: 'QLinearMul', name: 'mul', inputs: [], outputs: [], attrs: { ...bad, channels: 4 } }))).toThrow(/a_scale/);
    expect(() => Plan.createSync(wrap([[4, 9]], [4, 1, 1], { op: 'GlobalAvgPoolU8', name: 'gap', inputs: [], outputs: [], attrs: { x_scale: 1, x_zero_point: 0, y_scale: 1, y_zero_point: 0 } }))).toThrow();
  });
});

describe('quantize: elementwise functions as QLinearLookup', () => {
  for (const activations of ['uint8', 'int8'] as const) {
    it(`${activations}: HardSwish, SiLU, Sigmoid and Tanh become lookups between int8 convolutions, with nothing between them`, async () => {
      const { graph, report } = await quantize(activationsGraph(), calibration, { activations, reportImages: 0 });
      expect(graph.nodes.map((n) => n.op)).toEqual([
        'QuantizeLinear', 'QLinearConv', 'QLinearLookup', 'QLinearConv', 'QLinearLookup', 'QLinearConv', 'QLinearLookup', 'QLinearConv', 'QLinearLookup', 'QLinearConv', 'Flatten', 'QLinearGemm',
      ]);
      const lookups = graph.nodes.filter((n) => n.op === 'QLinearLookup');
      expect(lookups.map((n) => n.attrs.kiln_function)).toEqual(['HardSwish', 'SiLU', 'Sigmoid', 'Tanh']);
      for (const l of lookups) {
        const i = graph.nodes.indexOf(l);
        const [before, after] = [graph.nodes[i - 1], graph.nodes[i + 1]];
        expect(l.inputs[0]).toBe(before.outputs[0]);
        expect(after.inputs[0]).toBe(l.outputs[0]);
        expect([l.attrs.x_scale, l.attrs.x_zero_point]).toEqual([before.attrs.y_scale, before.attrs.y_zero_point]);
        expect(l.attrs.y_dtype).toBe(activations);
      }
      expect(report.fp32Nodes).toEqual([]);
      expect(report.lookups?.map((l) => [l.node, l.function, l.fusedNode])).toEqual([
        ['hardswish', 'HardSwish', undefined], ['silu_sigmoid', 'SiLU', 'silu_mul'], ['sigmoid', 'Sigmoid', undefined], ['tanh', 'Tanh', undefined],
      ]);
    });

    it(`${activations}: the native runtime equals the reference interpreter bit for bit; top-1 agrees with fp32`, async () => {
      const float = activationsGraph();
      const { graph } = await quantize(float, calibration, { activations, reportImages: 0 });
      const native = await runNative(graph, held);
      const reference = runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array;
      expect(Array.from(native)).toEqual(Array.from(reference));
      const fp32 = await runNative(float, held);
      expect(native.some((v, i) => v !== fp32[i])).toBe(true);
      const a = argmaxRows(native, CLASSES);
      const b = argmaxRows(fp32, CLASSES);
      const agreement = a.filter((c, i) => c === b[i]).length / a.length;
      console.log(`activations graph, ${activations}: int8 (lookups) vs fp32 top-1 agreement ${(agreement * 100).toFixed(1)}% on ${a.length} random images`);
      expect(agreement).toBeGreaterThanOrEqual(0.9);
    });
  }

  it("onnxruntime on the QDQ export (DQ -> function -> Q) agrees with Kiln's lookups", async () => {
    const { graph } = await quantize(activationsGraph(), calibration, { reportImages: 0 });
    await expectOrtAgrees(graph, 'activations graph');
  });

  it('a .kiln file keeps the lookups (same outputs after a round trip); a corrupt function name is refused', async () => {
    const { graph } = await quantize(activationsGraph(), calibration, { reportImages: 0 });
    const path = join(dir, 'lookups.kiln');
    await save(graph, path);
    const loaded = await loadGraph(path);
    expect(loaded.nodes.filter((n) => n.op === 'QLinearLookup')).toHaveLength(4);
    expect(Array.from(await runNative(loaded, held))).toEqual(Array.from(await runNative(graph, held)));
    const corrupt: Graph = { ...graph, nodes: graph.nodes.map((n) => (n.op === 'QLinearLookup' ? { ...n, attrs: { ...n.attrs, kiln_function: 'Mish' } } : n)) };
    const saved = await save(corrupt, join(dir, 'corrupt.kiln')).then(() => undefined, (e: unknown) => e);
    if (saved !== undefined) {
      expect(saved).toMatchObject({ code: expect.stringMatching(/^ERR_KILN_/) });
      expect(String((saved as Error).message)).toMatch(/kiln_function/);
    } else {
      await expect(loadGraph(join(dir, 'corrupt.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringMatching(/kiln_function.*Mish/) });
    }
  });

  for (const [variant, pool] of [['se', 'GlobalAveragePool'], ['se-reducemean', 'ReduceMean']] as const) {
    for (const activations of ['uint8', 'int8'] as const) {
      it(`${activations}: a squeeze-and-excitation block (${pool}) runs in int8 end to end: QLinearGlobalAveragePool, lookups, QLinearMul by a channel gate`, async () => {
        const float = activationsGraph(variant);
        const { graph, report } = await quantize(float, calibration, { activations, reportImages: 0 });
        expect(report.fp32Nodes).toEqual([]);
        expect(graph.nodes.map((n) => n.op).slice(-7)).toEqual(['QLinearConv', 'QLinearGlobalAveragePool', 'QLinearConv', 'QLinearLookup', 'QLinearMul', 'Flatten', 'QLinearGemm']);
        const mul = graph.nodes.find((n) => n.op === 'QLinearMul')!;
        const conv5 = graph.nodes.find((n) => n.name === 'conv5')!;
        // a is the image (conv5's output), b the gate, whatever order the float Mul had.
        expect(mul.inputs[0]).toBe(conv5.outputs[0]);
        expect(mul.inputs[1]).toBe(graph.nodes.find((n) => n.op === 'QLinearLookup' && n.name === 'se_sigmoid')!.outputs[0]);
        const native = await runNative(graph, held);
        expect(Array.from(native)).toEqual(Array.from(runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array));
        const fp32 = argmaxRows(await runNative(float, held), CLASSES);
        const agreement = argmaxRows(native, CLASSES).filter((c, i) => c === fp32[i]).length / held.dims[0];
        expect(agreement).toBeGreaterThanOrEqual(0.9);
      });
    }
  }

  it('QLinearMul of two images of one shape: bit for bit against the reference; onnxruntime agrees on the export', async () => {
    const { graph, report } = await quantize(activationsGraph('product'), calibration, { reportImages: 0 });
    expect(report.fp32Nodes).toEqual([]);
    expect(graph.nodes.filter((n) => n.op === 'QLinearMul')).toHaveLength(1);
    const native = await runNative(graph, held);
    expect(Array.from(native)).toEqual(Array.from(runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array));
    await expectOrtAgrees(graph, 'product graph');
  });

  it("onnxruntime on the squeeze-and-excitation block's QDQ export agrees with Kiln's int8", async () => {
    const { graph } = await quantize(activationsGraph('se'), calibration, { reportImages: 0 });
    await expectOrtAgrees(graph, 'SE graph');
  });

  for (const variant of ['plain', 'se', 'se-reducemean', 'product'] as const) {
    it(`${variant}: the QDQ export imports back as the same int8 ops, with the same outputs bit for bit`, async () => {
      const { graph } = await quantize(activationsGraph(variant), calibration, { reportImages: 0 });
      const back = await importModel(exportModel(graph));
      const int8Ops = (g: Graph) => g.nodes.map((n) => n.op).filter((op) => op.startsWith('QLinear')).sort();
      expect(int8Ops(back)).toEqual(int8Ops(graph));
      expect(back.nodes.filter((n) => n.op === 'QLinearLookup').map((n) => n.attrs.kiln_function).sort()).toEqual(graph.nodes.filter((n) => n.op === 'QLinearLookup').map((n) => n.attrs.kiln_function).sort());
      expect(Array.from(await runNative(back, held))).toEqual(Array.from(await runNative(graph, held)));
    });
  }

  it('a gate whose product is the graph output stays float (Mul and Sigmoid), and the report says why', async () => {
    const { graph, report } = await quantize(activationsGraph('gate-output'), calibration, { reportImages: 0 });
    expect(report.fp32Nodes.find((n) => n.node === 'se_mul')?.reason).toMatch(/graph output/);
    expect(report.fp32Nodes.find((n) => n.node === 'se_sigmoid')?.reason).toMatch(/no reader of its output runs on quantized values/);
    expect(graph.nodes.some((n) => n.op === 'Sigmoid' && n.name === 'se_sigmoid')).toBe(true);
    // The float Sigmoid's exp differs from the reference's in the last bits: close, not equal.
    const few = images(30, 4);
    const native = await runNative(graph, few);
    const reference = runInt8Reference(graph, { x: few })[graph.outputs[0].name].data as Float32Array;
    expect(native.length).toBe(reference.length);
    let worst = 0;
    for (let i = 0; i < native.length; i++) worst = Math.max(worst, Math.abs(native[i] - reference[i]) / (1e-3 + Math.abs(reference[i])));
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('storedTable', () => {
  it('shifts int8 outputs by 128 (int8 is stored as uint8 with zero point + 128) and leaves uint8 as is', () => {
    const t = Int32Array.from({ length: 256 }, (_, k) => k - 128);
    expect(storedTable(t, 'int8')).toEqual(Array.from({ length: 256 }, (_, k) => k));
    const u = Int32Array.from({ length: 256 }, (_, k) => 255 - k);
    expect(storedTable(u, 'uint8')).toEqual(Array.from(u));
  });
});
