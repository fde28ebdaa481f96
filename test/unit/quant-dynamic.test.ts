/**
 * quantizeDynamic(): DynamicQGemm nodes for Linear/Gemm/MatMul models, weights against the float
 * ones, outputs against fp32 (reference interpreter), and refusal of models it cannot cover.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { toGraph } from '../../src/graph/from-module.js';
import type { Graph } from '../../src/graph/ir.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantizeDynamic } from '../../src/quant/dynamic.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { Rng } from '../../src/util/rng.js';
import { Tensor } from '../../src/tensor.js';

function mlp(): Sequential {
  const rng = new Rng(3);
  const m = new Sequential(new Flatten(), new Linear(36, 20, { rng }), new ReLU(), new Linear(20, 7, { rng }));
  m.inputShape = Object.freeze([1, 6, 6]);
  return m;
}

describe('quantizeDynamic', () => {
  it('turns every Linear into a DynamicQGemm with per-channel int8 weights and a float bias', () => {
    const model = mlp();
    const { graph, report } = quantizeDynamic(model);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Flatten', 'DynamicQGemm', 'DynamicQGemm']);
    expect(graph.nodes[1].attrs).toEqual({ transB: 1, kiln_activation: 'Relu' });
    expect(report.mode).toBe('dynamic');
    expect(report.layers.map((l) => [l.int8Op, l.outputDtype])).toEqual([['DynamicQGemm', 'float32'], ['DynamicQGemm', 'float32']]);
    const w = graph.initializers.get(graph.nodes[1].inputs[1])!;
    const s = graph.initializers.get(graph.nodes[1].inputs[2])!.data as Float32Array;
    const b = graph.initializers.get(graph.nodes[1].inputs[3])!;
    expect([w.type, w.dims]).toEqual(['int8', [20, 36]]);
    expect(s.length).toBe(20);
    expect([b.type, b.size]).toEqual(['float32', 20]);
    const float = model.parameters()[0].value.data; // Linear weight [out, in]
    for (let i = 0; i < float.length; i++) expect(Math.abs(w.data[i] * s[Math.floor(i / 36)] - float[i])).toBeLessThanOrEqual(s[Math.floor(i / 36)] / 2 + 1e-7);
    expect(JSON.parse(graph.metadata!.kiln_quantization).mode).toBe('dynamic');
  });

  it('outputs track fp32 (reference interpreter)', () => {
    const model = mlp();
    const fp32 = toGraph(model, [1, 6, 6]);
    const { graph } = quantizeDynamic(model, { perChannel: false });
    expect(graph.initializers.get(graph.nodes[1].inputs[2])!.size).toBe(1);
    const x = new Tensor('float32', new Float32Array(4 * 36).map((_, i) => Math.cos(i * 0.7) * 2), [4, 1, 6, 6]);
    const a = runInt8Reference(fp32, { [fp32.inputs[0].name]: x })[fp32.outputs[0].name].data as Float32Array;
    const q = runInt8Reference(graph, { [graph.inputs[0].name]: x })[graph.outputs[0].name].data as Float32Array;
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < a.length; i++) {
      signal += a[i] ** 2;
      noise += (a[i] - q[i]) ** 2;
    }
    expect(noise).toBeGreaterThan(0);
    expect(10 * Math.log10(signal / noise)).toBeGreaterThan(25);
  });

  it('refuses a model with convolutions unless allowFp32 keeps them in float', () => {
    const cnn = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25 });
    expect(() => quantizeDynamic(cnn)).toThrow(expect.objectContaining({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringMatching(/Conv/) }));
    const { graph, report } = quantizeDynamic(cnn, { allowFp32: true });
    expect(graph.nodes.filter((n) => n.op === 'DynamicQGemm')).toHaveLength(2);
    expect(report.fp32Nodes.filter((n) => n.op === 'Conv')).toHaveLength(2);
  });

  it('refuses bad arguments and a model with nothing to quantize', () => {
    expect(() => quantizeDynamic({} as Graph)).toThrow(TypeError);
    expect(() => quantizeDynamic(mlp(), { perChannel: 'yes' as unknown as boolean })).toThrow(/options.perChannel/);
    expect(() => quantizeDynamic(mlp(), { foo: 1 } as object)).toThrow(/options/);
    const relu = new Sequential(new ReLU());
    expect(() => quantizeDynamic(relu, { inputShape: [4] })).toThrow(expect.objectContaining({ code: ErrorCode.UNSUPPORTED_OP }));
    expect(() => quantizeDynamic(new Sequential(new Linear(3, 2)))).toThrow(/options.inputShape/);
  });
});
