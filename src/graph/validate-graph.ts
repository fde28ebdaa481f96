/**
 * Structural checks of a Graph before anything runs it: every name defined once, every node input
 * defined earlier (topological order), graph outputs produced, initializers are Tensors.
 */
import { rangeError, typeError } from '../validate.js';
import { Tensor } from '../tensor.js';
import type { Graph } from './ir.js';

/** Throws a TypeError/RangeError (code ERR_KILN_INVALID_ARG) naming the first problem. */
export function validateGraph(graph: Graph, name = 'graph'): Graph {
  if (graph === null || typeof graph !== 'object') throw typeError(name, 'a Graph', graph);
  for (const key of ['inputs', 'outputs', 'nodes'] as const) {
    if (!Array.isArray(graph[key])) throw typeError(`${name}.${key}`, 'an array', graph[key]);
  }
  if (!(graph.initializers instanceof Map)) throw typeError(`${name}.initializers`, 'a Map of Tensors', graph.initializers);
  const defined = new Set<string>();
  const define = (value: string, where: string) => {
    if (typeof value !== 'string' || value === '') throw typeError(where, 'a non-empty value name', value);
    if (defined.has(value)) throw rangeError(where, 'a value name defined once', value);
    defined.add(value);
  };
  for (const [key, t] of graph.initializers) {
    if (!(t instanceof Tensor)) throw typeError(`${name}.initializers['${key}']`, 'a Tensor', t);
    define(key, `${name}.initializers['${key}']`);
  }
  graph.inputs.forEach((v, i) => {
    if (!v || typeof v !== 'object' || !Array.isArray(v.shape)) throw typeError(`${name}.inputs[${i}]`, 'a ValueInfo {name, dtype, shape}', v);
    define(v.name, `${name}.inputs[${i}].name`);
  });
  const nodeNames = new Set<string>();
  graph.nodes.forEach((node, i) => {
    const where = `${name}.nodes[${i}]`;
    if (!node || typeof node !== 'object' || typeof node.op !== 'string' || !Array.isArray(node.inputs) || !Array.isArray(node.outputs)) {
      throw typeError(where, 'a GraphNode {name, op, inputs, outputs, attrs}', node);
    }
    if (typeof node.name !== 'string' || nodeNames.has(node.name)) throw rangeError(`${where}.name`, 'a unique node name', node.name);
    nodeNames.add(node.name);
    if (node.attrs === null || typeof node.attrs !== 'object') throw typeError(`${where}.attrs`, 'an object', node.attrs);
    node.inputs.forEach((input, j) => {
      if (typeof input !== 'string') throw typeError(`${where}.inputs[${j}]`, 'a value name', input);
      if (input !== '' && !defined.has(input)) throw rangeError(`${where}.inputs[${j}]`, 'a value defined by an input, an initializer or an earlier node', input);
    });
    node.outputs.forEach((output, j) => {
      if (output !== '') define(output, `${where}.outputs[${j}]`);
    });
  });
  const outputs = new Set<string>();
  graph.outputs.forEach((v, i) => {
    if (!v || typeof v !== 'object' || typeof v.name !== 'string') throw typeError(`${name}.outputs[${i}]`, 'a ValueInfo {name, dtype, shape}', v);
    if (!defined.has(v.name)) throw rangeError(`${name}.outputs[${i}].name`, 'a value the graph defines', v.name);
    if (outputs.has(v.name)) throw rangeError(`${name}.outputs[${i}].name`, 'a graph output listed once', v.name);
    outputs.add(v.name);
  });
  return graph;
}
