/**
 * Test helper: seeded random CNN graphs in Kiln's canonical IR (random op sequences, channel
 * counts, kernel sizes, strides, asymmetric pads, dilations, groups, ceil modes, branches), for
 * property tests that run them on Kiln and on onnxruntime.
 */
import { GraphBuilder, type Attrs, type Graph } from '../../src/graph/ir.js';
import { inferNodeShapes } from '../../src/graph/shape-inference.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function tensor(rng: Rng, dims: number[], lo: number, hi: number): Tensor<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(lo, hi)), dims);
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

/**
 * Whether ceil_mode would create a last window that starts in the end padding: onnxruntime's
 * kernels drop it (as Kiln does) but the ONNX shape inference it runs at load time does not, so
 * such a model does not load in onnxruntime at all.
 */
function ceilDropsWindow(shape: (number | string)[], attrs: Attrs): boolean {
  if (attrs.ceil_mode !== 1) return false;
  const [k, s, p, d] = [attrs.kernel_shape, attrs.strides, attrs.pads, attrs.dilations] as number[][];
  return [0, 1].some((i) => {
    const size = shape[2 + i] as number;
    const room = size + p![i]! + p![i + 2]! - ((k![i]! - 1) * d![i]! + 1);
    return room >= 0 && Math.ceil(room / s![i]!) * s![i]! >= size + p![i]!;
  });
}

export interface RandomCnn {
  graph: Graph;
  /** Ops in order, for messages. */
  description: string;
}

/** A random CNN: a spatial stage of 2..7 layers, then a classifier head. */
export function randomCnn(seed: number): RandomCnn {
  const rng = new Rng(seed);
  const b = new GraphBuilder(`random_${seed}`);
  let shape: (number | string)[] = ['N', 1 + rng.int(4), pick(rng, [5, 7, 8, 11, 13, 16]), pick(rng, [5, 6, 9, 12, 13])];
  let x = b.addInput('input', shape);
  const ops: string[] = [];

  const shapes = new Map<string, (number | string)[]>([[x, shape]]);

  /** Adds a node if its output shape is valid (spatial sizes >= 1); returns whether it did. */
  const tryAdd = (op: string, inputs: string[], attrs: Attrs, weights: Record<string, Tensor> = {}): boolean => {
    const inShapes = [...inputs.map((i) => shapes.get(i)!), ...Object.values(weights).map((t) => t.dims.slice())];
    const probe = { name: 'probe', op, inputs: [...inputs, ...Object.keys(weights)], outputs: ['o'], attrs };
    let out: (number | string)[];
    try {
      out = inferNodeShapes(probe, inShapes)![0]!;
    } catch {
      return false;
    }
    if (out.slice(1).some((d) => typeof d === 'number' && d < 1)) return false;
    const wnames = Object.entries(weights).map(([base, t]) => b.addInitializer(base, t));
    x = b.addNode(op, [...inputs, ...wnames], attrs);
    shape = out;
    shapes.set(x, out);
    ops.push(op);
    return true;
  };

  const conv = (outC: number, k: [number, number], opts: { stride?: number[]; pads?: number[]; dil?: number[]; groups?: number; bias?: boolean } = {}): boolean => {
    const c = shape[1] as number;
    const groups = opts.groups ?? 1;
    const weights: Record<string, Tensor> = { w: tensor(rng, [outC, c / groups, k[0], k[1]], -0.6, 0.6) };
    if (opts.bias ?? true) weights.b = tensor(rng, [outC], -0.2, 0.2);
    return tryAdd('Conv', [x], {
      kernel_shape: k, strides: opts.stride ?? [1, 1], pads: opts.pads ?? [0, 0, 0, 0], dilations: opts.dil ?? [1, 1], group: groups,
    }, weights);
  };

  const layers = 2 + rng.int(6);
  for (let l = 0, attempts = 0; l < layers && attempts < 50; attempts++) {
    const c = shape[1] as number;
    const kind = pick(rng, ['conv', 'conv', 'conv', 'depthwise', 'convT', 'act', 'act', 'maxpool', 'avgpool', 'bn', 'lrn', 'residual', 'affine', 'concat', 'pad', 'softmax2d', 'transpose', 'unsqueeze']);
    let ok = false;
    switch (kind) {
      case 'conv': {
        const k: [number, number] = [1 + rng.int(4), 1 + rng.int(4)];
        const outC = pick(rng, [1, 2, 3, 4, 5, 8]);
        const common = divisors(c).filter((d) => outC % d === 0);
        ok = conv(outC, k, {
          stride: [1 + rng.int(3), 1 + rng.int(3)],
          dil: [1 + rng.int(2), 1 + rng.int(2)],
          pads: [rng.int(k[0]), rng.int(k[1]), rng.int(k[0]), rng.int(k[1])],
          groups: pick(rng, common),
          bias: rng.next() < 0.7,
        });
        // Conv + activation (+ BatchNormalization) is what the runtime's passes fuse and fold.
        if (ok && rng.next() < 0.3) {
          const c2 = shape[1] as number;
          tryAdd('BatchNormalization', [x], { epsilon: 1e-5 }, {
            scale: tensor(rng, [c2], 0.5, 1.5), bias: tensor(rng, [c2], -0.3, 0.3), mean: tensor(rng, [c2], -0.3, 0.3), var: tensor(rng, [c2], 0.5, 2),
          });
        }
        if (ok && rng.next() < 0.5) {
          const act = pick(rng, ['Relu', 'LeakyRelu', 'Clip', 'Clip6']);
          if (act === 'Clip6') tryAdd('Clip', [x], { min: 0, max: 6 });
          else tryAdd(act, [x], act === 'LeakyRelu' ? { alpha: 0.1 } : act === 'Clip' ? { min: -0.5, max: rng.uniform(0.5, 3) } : {});
        }
        break;
      }
      case 'depthwise': {
        const k = 1 + 2 * rng.int(2);
        ok = conv(c * (1 + rng.int(2)), [k, k], { groups: c, pads: [k >> 1, k >> 1, k >> 1, k >> 1], stride: [1 + rng.int(2), 1 + rng.int(2)] });
        break;
      }
      case 'convT': {
        const k: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
        const stride = [1 + rng.int(2), 1 + rng.int(2)];
        const groups = pick(rng, divisors(c));
        const outPerGroup = 1 + rng.int(3);
        ok = tryAdd('ConvTranspose', [x], {
          kernel_shape: k, strides: stride, dilations: [1, 1], group: groups,
          pads: [rng.int(k[0]), rng.int(k[1]), rng.int(k[0]), rng.int(k[1])],
          output_padding: [rng.int(stride[0]!), rng.int(stride[1]!)],
        }, { w: tensor(rng, [c, outPerGroup, k[0], k[1]], -0.5, 0.5), b: tensor(rng, [outPerGroup * groups], -0.2, 0.2) });
        break;
      }
      case 'act': {
        const act = pick(rng, ['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Clip']);
        const attrs: Attrs = act === 'LeakyRelu' ? { alpha: rng.uniform(0.01, 0.3) }
          : act === 'HardSigmoid' ? { alpha: rng.uniform(0.1, 0.3), beta: rng.uniform(0.3, 0.7) }
          : act === 'Clip' ? { min: rng.uniform(-1, 0), max: rng.uniform(0.2, 2) } : {};
        ok = tryAdd(act, [x], attrs);
        break;
      }
      case 'maxpool':
      case 'avgpool': {
        const k: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
        const attrs: Attrs = {
          kernel_shape: k, strides: [1 + rng.int(3), 1 + rng.int(3)],
          pads: [rng.int(k[0]), rng.int(k[1]), rng.int(k[0]), rng.int(k[1])],
          dilations: kind === 'maxpool' ? [1 + rng.int(2), 1 + rng.int(2)] : [1, 1],
          ceil_mode: rng.int(2),
        };
        if (kind === 'avgpool') attrs.count_include_pad = rng.int(2);
        if (ceilDropsWindow(shape, attrs)) break;
        ok = tryAdd(kind === 'maxpool' ? 'MaxPool' : 'AveragePool', [x], attrs);
        break;
      }
      case 'bn':
        ok = tryAdd('BatchNormalization', [x], { epsilon: 1e-5 }, {
          scale: tensor(rng, [c], 0.5, 1.5), bias: tensor(rng, [c], -0.3, 0.3), mean: tensor(rng, [c], -0.3, 0.3), var: tensor(rng, [c], 0.5, 2),
        });
        break;
      case 'lrn':
        ok = tryAdd('LRN', [x], { size: 1 + 2 * rng.int(3), alpha: 1e-3, beta: 0.75, bias: 1 });
        break;
      case 'residual': {
        const skip = x;
        const k = 1 + 2 * rng.int(2);
        if (!conv(c, [k, k], { pads: [k >> 1, k >> 1, k >> 1, k >> 1] })) break;
        ok = tryAdd(pick(rng, ['Add', 'Sum']), [skip, x], {});
        break;
      }
      case 'affine': {
        const op = pick(rng, ['Add', 'Sub', 'Mul', 'Div']);
        ok = tryAdd(op, [x], {}, { k: tensor(rng, pick(rng, [[c, 1, 1], [1], [shape[2] as number, 1]]), 0.5, 1.5) });
        break;
      }
      case 'concat': {
        const input = x;
        if (!conv(1 + rng.int(3), [1, 1])) break;
        const left = x;
        x = input;
        shape = shapes.get(input)!;
        if (!conv(1 + rng.int(3), [1, 1])) break;
        ok = tryAdd('Concat', [left, x], { axis: 1 });
        break;
      }
      case 'pad': {
        const mode = pick(rng, ['constant', 'reflect', 'edge']);
        const limit = (axis: number): number => (mode === 'reflect' ? Math.min(2, (shape[axis] as number) - 1) : 2);
        const [h, w] = [limit(2), limit(3)];
        ok = tryAdd('Pad', [x], { pads: [0, 0, rng.int(h + 1), rng.int(w + 1), 0, 0, rng.int(h + 1), rng.int(w + 1)], mode, value: rng.uniform(-1, 1) });
        break;
      }
      case 'transpose':
        ok = tryAdd('Transpose', [x], { perm: pick(rng, [[0, 1, 3, 2], [0, 2, 1, 3], [0, 3, 2, 1]]) });
        break;
      case 'unsqueeze': {
        const axis = 1 + rng.int(4);
        if (!tryAdd('Unsqueeze', [x], { axes: [axis] })) break;
        if (rng.next() < 0.5 && !tryAdd(pick(rng, ['Relu', 'Sigmoid']), [x], {})) break;
        ok = tryAdd('Squeeze', [x], { axes: [axis] });
        break;
      }
      case 'softmax2d': {
        // Softmax over the spatial positions of each channel via Reshape.
        const [, , h, w] = shape as number[];
        if (!tryAdd('Reshape', [x], { shape: [0, c, h! * w!] })) break;
        if (!tryAdd(pick(rng, ['Softmax', 'LogSoftmax']), [x], { axis: 2 })) break;
        ok = tryAdd('Reshape', [x], { shape: [0, c, h!, w!] });
        break;
      }
    }
    if (ok) l++;
  }

  // Classifier head.
  if (rng.next() < 0.5) tryAdd(pick(rng, ['GlobalAveragePool', 'GlobalMaxPool']), [x], {});
  tryAdd('Flatten', [x], { axis: 1 });
  const features = shape[1] as number;
  const hidden = 2 + rng.int(9);
  if (rng.next() < 0.5) {
    tryAdd('Gemm', [x], { alpha: 1, beta: 1, transA: 0, transB: 1 }, { w: tensor(rng, [hidden, features], -0.5, 0.5), b: tensor(rng, [hidden], -0.2, 0.2) });
  } else {
    tryAdd('MatMul', [x], {}, { w: tensor(rng, [features, hidden], -0.5, 0.5) });
  }
  if (rng.next() < 0.5) tryAdd(pick(rng, ['Softmax', 'LogSoftmax']), [x], { axis: 1 });
  const graph = b.build([{ name: x, dtype: 'float32', shape }]);
  return { graph, description: ops.join(' > ') };
}
