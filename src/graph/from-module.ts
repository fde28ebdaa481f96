/**
 * Module → Graph: each layer appends its ONNX-named nodes through `lower()`; the graph input is
 * 'input' of shape ['N', ...inputShape] (dynamic batch) and the output 'logits'.
 */
import type { Module } from '../nn/module.js';
import { dims, rangeError, typeError } from '../validate.js';
import { GraphBuilder, type Graph } from './ir.js';

export interface ToGraphOptions {
  /** Graph name (default 'kiln'). */
  name?: string;
  inputName?: string;
  outputName?: string;
  metadata?: Record<string, string>;
}

/**
 * Lowers a Module for inference (BatchNorm uses its running statistics, Dropout disappears).
 * @param inputShape one image's shape, e.g. [1, 28, 28] (C, H, W)
 */
export function toGraph(module: Module, inputShape: readonly number[], options: ToGraphOptions = {}): Graph {
  if (module === null || typeof module !== 'object' || typeof (module as Module).lower !== 'function') {
    throw typeError('module', 'a Module', module);
  }
  const shape = dims('inputShape', inputShape);
  if (shape.length === 0 || shape.some((d) => d < 1)) throw rangeError('inputShape', 'one image shape of positive sizes, e.g. [C, H, W]', inputShape);
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'logits';
  const builder = new GraphBuilder(options.name ?? 'kiln');
  const input = builder.addInput(inputName, ['N', ...shape]);
  // Reserved first, so no layer's value takes the name.
  const reserved = builder.unique(outputName);
  const batched = [1, ...shape];
  const last = module.lower(builder, input, batched);
  const outShape = module.outputShape(batched);
  if (last === input) builder.addNode('Identity', [input], {}, 'output');
  const graph = builder.build([{ name: reserved, dtype: 'float32', shape: ['N', ...outShape.slice(1)] }], options.metadata);
  const produced = last === input ? graph.nodes[graph.nodes.length - 1].outputs[0] : last;
  // Rename the final value to the output name everywhere it appears.
  for (const node of graph.nodes) {
    node.outputs = node.outputs.map((o) => (o === produced ? reserved : o));
    node.inputs = node.inputs.map((i) => (i === produced ? reserved : i));
  }
  return graph;
}
