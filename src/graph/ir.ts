/**
 * The graph IR: what Kiln deploys. Nodes are named after ONNX operators and carry ONNX attribute
 * names, so ONNX import/export is a one-to-one mapping. Layouts are ONNX's (NCHW, OIHW weights).
 *
 * Kiln-specific extensions are attributes prefixed with `kiln_` (e.g. a Conv with
 * `kiln_activation: 'Relu'` after fusion); the exporter expands them back into standard nodes.
 *
 * Canonical form. Graphs from `onnx.importModel` (and what `onnx.exportModel` accepts) are
 * opset-independent: every operator parameter that is constant is an ATTRIBUTE, always present,
 * normalised (axes non-negative), whichever ONNX opset (1..28, versions judged per node) the model used:
 * - Conv / ConvTranspose / MaxPool / AveragePool: `kernel_shape`, `strides`, `dilations`, `pads`
 *   ([top, left, bottom, right]), Conv/ConvTranspose `group`, pools `ceil_mode` and AveragePool
 *   `count_include_pad`; ConvTranspose also `output_padding` (with an ONNX output_shape larger than the natural size, the extra rows); never `auto_pad` (resolved). 1-D and 2-D (pools and ConvTranspose also 3-D).
 * - Reshape: one input, attr `shape` (int[], may hold 0 = copy that input dim and one -1).
 * - Squeeze / Unsqueeze: one input, attr `axes` (int[], non-negative, sorted).
 * - Pad: one input, attrs `pads` (ONNX order: all begins then all ends, one per input dim),
 *   `mode` ('constant' | 'reflect' | 'edge'), `value` (number).
 * - Clip: one input, attrs `min` and `max` (numbers; an absent bound is -/+3.4028234663852886e38).
 * - Softmax / LogSoftmax: attr `axis` with opset-13 meaning (one axis, non-negative).
 * - Flatten / Concat: `axis` non-negative. Transpose: `perm` explicit. Gemm: `alpha`, `beta`,
 *   `transA`, `transB`. BatchNormalization: `epsilon`, five inputs, one output. Dropout and
 *   Identity: one input, one output. LeakyRelu/HardSigmoid/LRN: their ONNX attrs, defaults filled.
 * - LayerNormalization: `axis` (non-negative), `epsilon`; Mean/InvStdDev outputs only when read.
 *   InstanceNormalization: `epsilon`. GroupNormalization: `num_groups`, `epsilon`; its scale and
 *   bias hold one value per channel (opset 21) or per group (opset 18), told apart by length.
 * - Elu / Celu / ThresholdedRelu `alpha`, Selu `alpha` and `gamma`, Gelu `approximate`: filled.
 * - Reduce*: one input, attrs `axes` (explicit, non-negative, sorted: empty ONNX axes become every
 *   axis, or an Identity with noop_with_empty_axes) and `keepdims` (0 | 1).
 * Integer constants that are still tensors (none in the op set above) are int32 initializers.
 * - Resize (Upsample imports as Resize): one input; attrs `scales` (one float32 value per input dim,
 *   what coordinates divide by), `sizes` (the output shape, only when the model gave sizes), `mode`
 *   ('nearest' | 'linear' | 'cubic'), `coordinate_transformation_mode`, `nearest_mode`,
 *   `cubic_coeff_a`, `exclude_outside`, all filled in (opset < 11: 'asymmetric' with 'floor' when
 *   upsampling, 'ceil' when downsampling); `antialias` (1) only on an antialiased linear or cubic
 *   resize; `roi` (starts then ends, 2 x rank floats) and `extrapolation_value` only with
 *   'tf_crop_and_resize'.
 * - Slice: one input, attrs `starts`, `ends` and optional `axes`, `steps` (ONNX meaning, clamped
 *   when used). Split: one input, attrs `axis` (non-negative) and `split` (every part's size).
 *   Expand: one input, attr `shape`. Tile: one input, attr `repeats`. Gather: `axis`, indices
 *   as a second (int32 initializer) input. DepthToSpace: `blocksize`, `mode` ('DCR' | 'CRD');
 *   SpaceToDepth: `blocksize`.
 * Integer constants that are still tensors (Gather indices) are int32 initializers.
 */
import type { DType, Tensor } from '../tensor.js';

export type AttrValue = number | string | number[] | string[] | Tensor;
export type Attrs = Record<string, AttrValue>;

/** A dimension: a number, or a symbolic name (e.g. 'N' for the batch). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  /**
   * Declared element type. The plan computes float32 values: an InferenceSession converts other
   * input and output types where they meet it (runtime/edge-types.ts).
   */
  dtype: DType;
  shape: Dim[];
}

export interface GraphNode {
  /** Unique node name. */
  name: string;
  /** ONNX operator type ('Conv', 'Gemm', 'Relu', ...). */
  op: string;
  /** Input value names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export interface Graph {
  name: string;
  /** User inputs (never initializers). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Topologically sorted. */
  nodes: GraphNode[];
  /** Constant tensors by value name (weights). int64 ONNX data is held as int32 after range checks. */
  initializers: Map<string, Tensor>;
  /** Free-form provenance (producer, training metrics, ...). */
  metadata?: Record<string, string>;
}

/** Builds a graph node by node with unique names; used by Module.toGraph() and the passes. */
export class GraphBuilder {
  private readonly nodes: GraphNode[] = [];
  private readonly initializers = new Map<string, Tensor>();
  private readonly used = new Set<string>();
  private readonly inputs: ValueInfo[] = [];

  constructor(readonly name = 'kiln') {}

  /** A fresh value/node name starting with `base`. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  addInput(name: string, shape: Dim[], dtype: ValueInfo['dtype'] = 'float32'): string {
    const n = this.unique(name);
    this.inputs.push({ name: n, dtype, shape });
    return n;
  }

  /** Adds a weight; returns its value name. */
  addInitializer(base: string, tensor: Tensor): string {
    const n = this.unique(base);
    this.initializers.set(n, tensor);
    return n;
  }

  /** Adds a node with one output; returns the output value name. */
  addNode(op: string, inputs: string[], attrs: Attrs = {}, name?: string): string {
    const nodeName = this.unique(name ?? op.toLowerCase());
    const out = this.unique(`${nodeName}_out`);
    this.nodes.push({ name: nodeName, op, inputs, outputs: [out], attrs });
    return out;
  }

  build(outputs: ValueInfo[], metadata?: Record<string, string>): Graph {
    return { name: this.name, inputs: this.inputs, outputs, nodes: this.nodes, initializers: this.initializers, metadata };
  }
}
