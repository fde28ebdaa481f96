/**
 * Elementwise functions between quantized layers as QLinearLookup (src/graph/int8-lookup.ts):
 * HardSwish, SiLU (Sigmoid + Mul, as exporters write it), Sigmoid and the other unary functions
 * become one 256-entry table on the stored codes instead of DequantizeLinear -> float op ->
 * QuantizeLinear. Checked: the table against Q(f(DQ(q))) computed directly; the native LookupU8
 * step against its table on odd sizes and batches, in place, on every ISA (the row kernels
 * themselves: native/test/s8-conv-test.cc), and refusing bad tables; PTQ's graph
 * (no DQ/Q between int8 nodes, the report); the runtime bit for bit against the reference
 * interpreter; onnxruntime on the QDQ export; a .kiln round trip and a corrupt function name; a
 * Sigmoid whose reader runs in float (squeeze-and-excitation) staying float.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { LOOKUP_FUNCTIONS, lookupFunction, lookupTable, storedTable } from '../../src/graph/int8-lookup.js';
import { type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime } from '../../src/onnx/index.js';
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
 * then (seBranch) a squeeze-and-excitation gate: a global AveragePool -> conv -> Sigmoid -> Mul with
 * the feature map; flatten, gemm.
 */
function activationsGraph(seBranch = false, seed = 3): Graph {
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
  if (seBranch) {
    const pooled = g.addNode('AveragePool', [h], { kernel_shape: [H, H], strides: [1, 1], pads: [0, 0, 0, 0] }, 'se_pool');
    const w = g.addInitializer('se_w', tensor([C, C, 1, 1], 0.5, next));
    const gate = g.addNode('Sigmoid', [g.addNode('Conv', [pooled, w], { kernel_shape: [1, 1] }, 'se_conv')], {}, 'se_sigmoid');
    h = g.addNode('Mul', [h, gate], {}, 'se_mul');
  }
  const flat = g.addNode('Flatten', [h], { axis: 1 }, 'flatten');
  const wf = g.addInitializer('wf', tensor([CLASSES, C * H * H], 0.2, next));
  const logits = g.addNode('Gemm', [flat, wf], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

function images(n: number, seed: number): Tensor<'float32'> {
  return tensor([n, 3, H, H], 1.5, random(seed));
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
    expect(lookupFunction('Gelu')).toBeUndefined();
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
    const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
    const o = result.outputs[0];
    console.log(`activations graph: Kiln int8 vs ORT on the QDQ export: top-1 ${(o.top1Agreement * 100).toFixed(1)}%, max logit difference ${o.maxDiffSteps?.toFixed(2)} steps`);
    expect(result.engine).toBe('runtime');
    expect(o.top1Agreement).toBeGreaterThanOrEqual(0.98);
    // ORT evaluates each function in float32 with its own exp (or fuses DQ -> Sigmoid -> Q into a
    // table of its own): a code on a rounding tie could land one step apart; none does here.
    expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
  });

  it('a .kiln file keeps the lookups (same outputs after a round trip); a corrupt function name is refused', async () => {
    const { graph } = await quantize(activationsGraph(), calibration, { reportImages: 0 });
    const path = join(dir, 'lookups.kiln');
    await save(graph, path);
    const loaded = await loadGraph(path);
    expect(loaded.nodes.filter((n) => n.op === 'QLinearLookup')).toHaveLength(4);
    expect(Array.from(await runNative(loaded, held))).toEqual(Array.from(await runNative(graph, held)));
    const corrupt: Graph = { ...graph, nodes: graph.nodes.map((n) => (n.op === 'QLinearLookup' ? { ...n, attrs: { ...n.attrs, kiln_function: 'Gelu' } } : n)) };
    const saved = await save(corrupt, join(dir, 'corrupt.kiln')).then(() => undefined, (e: unknown) => e);
    if (saved !== undefined) {
      expect(saved).toMatchObject({ code: expect.stringMatching(/^ERR_KILN_/) });
      expect(String((saved as Error).message)).toMatch(/kiln_function/);
    } else {
      await expect(loadGraph(join(dir, 'corrupt.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringMatching(/kiln_function.*Gelu/) });
    }
  });

  it('a Sigmoid whose reader runs in float (a squeeze-and-excitation gate) stays float, and the report says why', async () => {
    const { graph, report } = await quantize(activationsGraph(true), calibration, { reportImages: 0 });
    expect(graph.nodes.filter((n) => n.op === 'QLinearLookup')).toHaveLength(4);
    const se = report.fp32Nodes.find((n) => n.node === 'se_sigmoid');
    expect(se?.reason).toMatch(/no reader of its output runs on quantized values/);
    expect(graph.nodes.some((n) => n.op === 'Sigmoid' && n.name === 'se_sigmoid')).toBe(true);
    const native = await runNative(graph, held);
    expect(Array.from(native)).toEqual(Array.from(runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array));
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
