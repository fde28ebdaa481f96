/**
 * `kiln prune --shrink`: structured shrinking from the CLI. Filters are removed from the Graph IR
 * (src/prune/shrink) and the result is an ordinary smaller dense model, written as ONNX when --out
 * ends in .onnx and as a .kiln graph otherwise.
 *
 * - After `kiln prune --pattern filter` has fine-tuned a .kiln model, the filters it zeroed (and
 *   every channel coupled to them) are removed: `planZeroFilters`.
 * - With --no-finetune, any model (.kiln, ONNX, a saved graph) loses the lowest-L1 `--sparsity` of
 *   each coupled group's filters, no data set involved: `planShrink`.
 */
import { stat, writeFile } from 'node:fs/promises';

import { ErrorCode, KilnError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import { exportModel } from '../onnx/index.js';
import { selectLayers } from '../prune/layers.js';
import { checkSparsity } from '../prune/pruner.js';
import { planShrink, shrinkGraph } from '../prune/shrink/index.js';
import type { ModelSize, ShrinkPlan, ShrinkReport } from '../prune/shrink/index.js';
import { graphAccuracy } from '../runtime/accuracy.js';
import { save } from '../runtime/model-io.js';
import { checkOutputFile } from '../util/files.js';
import { rangeError, typeError } from '../validate.js';
import { readModelSource } from './model-source.js';
import type { PruneCommandOptions } from './prune.js';
import { Output, percent } from './output.js';

/** The options of `kiln prune` that --shrink reads. */
export type ShrinkCommandOptions = Pick<PruneCommandOptions, 'sparsity' | 'method' | 'pattern' | 'layers' | 'sparsityFrom' | 'shrink' | 'finetune' | 'roundTo' | 'out' | 'json'>;

/**
 * Checks the shrink options against each other before any work; returns the --round-to value
 * (1 without it), or undefined when --shrink is not asked for.
 * @throws RangeError ERR_KILN_INVALID_ARG for a --pattern other than filter, a --round-to that is
 *   not a positive integer; TypeError for --round-to or --no-finetune without --shrink
 */
export function checkShrinkOptions(opts: ShrinkCommandOptions): number | undefined {
  if (!opts.shrink) {
    if (opts.roundTo !== undefined) throw typeError('--round-to', 'nothing without --shrink', opts.roundTo);
    if (opts.finetune === false) throw typeError('--no-finetune', 'nothing without --shrink (to mask without fine-tuning: --schedule oneshot --epochs 0)', '--no-finetune');
    return undefined;
  }
  if (opts.pattern !== undefined && opts.pattern !== 'filter') {
    throw rangeError('--pattern', "'filter' with --shrink (only whole filters can be removed from a model)", opts.pattern);
  }
  if (opts.roundTo === undefined) return 1;
  const text = opts.roundTo.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw rangeError('--round-to', 'a positive integer (kept channels are rounded up to a multiple of it)', opts.roundTo);
  return n;
}

/** Size and file bytes of a model before or after shrinking. */
interface Sizes extends ModelSize {
  fileBytes: number;
}

/** Writes `graph` as ONNX (--out *.onnx) or as a .kiln graph; returns the file's bytes. */
async function writeGraph(graph: Graph, out: string, metadata: Record<string, unknown>): Promise<number> {
  if (out.toLowerCase().endsWith('.onnx')) await writeFile(out, exportModel(graph));
  else await save(graph, out, { metadata });
  return (await stat(out)).size;
}

/**
 * The shrunk graph of a plan. A plan that removes nothing is refused: the message says why each
 * group stayed (the first few), or that no filter was zero.
 * @throws KilnError ERR_KILN_CANNOT_SHRINK when nothing can be removed, or when a conv --layers
 *   named explicitly is in a group that cannot shrink
 */
export function shrinkPlanned(graph: Graph, plan: ShrinkPlan, named: readonly string[] | undefined, nothing: string): { graph: Graph; report: ShrinkReport } {
  if (named) {
    const stuck = plan.groups.find((g) => g.skipped !== undefined && g.convs.some((c) => named.includes(c)));
    if (stuck) {
      const conv = stuck.convs.find((c) => named.includes(c))!;
      const left = stuck.convs.filter((c) => !named.includes(c));
      // A group is removed channel by channel across all its convs: naming part of it cannot work.
      const why = stuck.skipped!.endsWith('is not among options.layers')
        ? `its channels are coupled (through a residual Add, a Concat or a depthwise conv) with ${left.map((c) => `Conv '${c}'`).join(', ')}, which --layers does not name`
        : stuck.skipped!;
      throw new KilnError(ErrorCode.CANNOT_SHRINK, `Cannot shrink Conv '${conv}' (--layers): ${why}`);
    }
  }
  if (plan.removals.size === 0) {
    const reasons = plan.groups.filter((g) => g.skipped !== undefined).slice(0, 3).map((g) => `${g.convs.map((c) => `'${c}'`).join(', ')}: ${reasonOf(g.skipped!)}`);
    throw new KilnError(ErrorCode.CANNOT_SHRINK, `Cannot shrink: ${nothing}${reasons.length > 0 ? `; groups left whole: ${reasons.join('; ')}` : ''}`);
  }
  return shrinkGraph(graph, plan.removals);
}

/** A planner's reason as the CLI user reads it: the planner names its option, the user typed --layers (or took the default). */
function reasonOf(why: string): string {
  return why.replace(/is not among options\.layers$/, 'is not among the layers shrunk (--layers)');
}

/** Text lines and JSON fields of a shrink: channels per conv, groups left whole, sizes before and after. */
function describeShrink(plan: ShrinkPlan, report: ShrinkReport, before: Sizes, after: Sizes, layers: ReadonlyMap<string, string>): { lines: string[]; json: Record<string, unknown> } {
  const channels = Object.entries(report.channels).map(([conv, c]) => ({ conv, ...(layers.has(conv) ? { layer: layers.get(conv)! } : {}), before: c.before, after: c.after }));
  const skipped = plan.groups.filter((g) => g.skipped !== undefined).map((g) => ({ convs: g.convs, channels: g.channels, reason: reasonOf(g.skipped!) }));
  const label = (c: { conv: string; layer?: string }): string => (c.layer !== undefined ? `'${c.layer}' (${c.conv})` : `'${c.conv}'`);
  const width = Math.max(6, ...channels.map((c) => label(c).length + 2));
  const shown = channels.length > 40 ? channels.slice(0, 40) : channels;
  const n = (v: number): string => v.toLocaleString('en-US');
  const lines = [
    'output channels kept:',
    ...shown.map((c) => `  ${label(c).padEnd(width)} ${String(c.before).padStart(5)} -> ${c.after}`),
    ...(shown.length < channels.length ? [`  ... ${channels.length - shown.length} more convs (see --json)`] : []),
    ...(skipped.length > 0 ? [`${skipped.length} coupled group(s) left whole, e.g. ${skipped[0].convs.map((c) => label({ conv: c, layer: layers.get(c) })).join(', ')}: ${skipped[0].reason}`] : []),
    `parameters ${n(before.parameters)} -> ${n(after.parameters)}, MACs per image ${n(before.macs)} -> ${n(after.macs)}, file ${n(before.fileBytes)} -> ${n(after.fileBytes)} bytes`,
  ];
  return { lines, json: { channels, skipped, before, after } };
}

/**
 * The Conv2d layers of a .kiln Module that --shrink prunes: the --layers named (each a Conv2d),
 * else the default selection's Conv2d layers (a Linear's rows cannot be removed by shrinking).
 * @throws TypeError ERR_KILN_INVALID_ARG for a named Linear or a layer with no weight; RangeError for an unknown name
 */
export function shrinkLayers(model: Module, layers: readonly string[] | undefined): string[] {
  const chosen = selectLayers(model, layers, '--layers');
  if (layers) {
    const linear = chosen.find((l) => l.type !== 'Conv2d');
    if (linear) throw typeError('--layers', "Conv2d layers with --shrink (shrinking removes convolution filters; a Linear's output features stay)", `${linear.name} (a Linear)`);
  }
  const convs = chosen.filter((l) => l.type === 'Conv2d').map((l) => l.name);
  if (convs.length === 0) throw typeError('--layers', 'at least one Conv2d layer to shrink (the default leaves the first convolution dense: name it with --layers)', layers);
  return convs;
}

/** Conv node names of `graph` (lowered from a Module) for Module layer names: the node that reads '<name>.weight'. */
export function convNodesOf(graph: Graph, layers: readonly string[]): string[] {
  return layers.map((name) => graph.nodes.find((n) => n.op === 'Conv' && n.inputs[1] === `${name}.weight`)!.name);
}

/** Conv node name -> the Module layer it was lowered from ('conv_1' -> '3'), for messages a Module's user can read. */
export function moduleLayersOf(graph: Graph): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of graph.nodes) if (n.op === 'Conv' && n.inputs[1]?.endsWith('.weight')) out.set(n.name, n.inputs[1].slice(0, -'.weight'.length));
  return out;
}

/** The file sizes and model sizes, and the printed result, of a finished shrink. */
export async function reportShrink(
  out: Output,
  fields: Record<string, unknown>,
  plan: ShrinkPlan,
  shrunk: { graph: Graph; report: ShrinkReport },
  files: { model: string; out: string; metadata: Record<string, unknown> },
  accuracy?: { before: number; pruned: number; test: Dataset },
  layers: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  const fileBefore = (await stat(files.model)).size;
  const accuracyAfter = accuracy ? await graphAccuracy(shrunk.graph, accuracy.test) : undefined;
  const metadata = { ...files.metadata, ...(accuracyAfter !== undefined ? { testAccuracy: String(accuracyAfter) } : {}) };
  const fileAfter = await writeGraph(shrunk.graph, files.out, metadata);
  const { lines, json } = describeShrink(plan, shrunk.report, { ...shrunk.report.before, fileBytes: fileBefore }, { ...shrunk.report.after, fileBytes: fileAfter }, layers);
  out.line(lines.join('\n'));
  const acc = accuracy && accuracyAfter !== undefined
    ? { evalImages: accuracy.test.length, accuracyBefore: accuracy.before, accuracyPruned: accuracy.pruned, accuracyAfter, accuracyDelta: accuracyAfter - accuracy.before }
    : {};
  const format = files.out.toLowerCase().endsWith('.onnx') ? 'onnx' : 'kiln';
  out.result({ model: files.model, out: files.out, format, ...fields, ...json, ...acc }, () =>
    [
      ...(accuracy && accuracyAfter !== undefined
        ? [`held-out accuracy on ${accuracy.test.length} images: before ${percent(accuracy.before)}, pruned (masked) ${percent(accuracy.pruned)}, shrunk ${percent(accuracyAfter)} (${((accuracyAfter - accuracy.before) * 100).toFixed(2)} points)`]
        : []),
      `wrote ${files.out} (${format === 'onnx' ? 'ONNX, ' : ''}${fileAfter.toLocaleString('en-US')} bytes): ${(shrunk.report.after.parameters / shrunk.report.before.parameters * 100).toFixed(1)}% of the parameters, ${(shrunk.report.after.macs / shrunk.report.before.macs * 100).toFixed(1)}% of the MACs`,
    ].join('\n'),
  );
}

/** The data set and split seed a .kiln model records, so `kiln eval` of the shrunk model uses its held-out split. */
function provenance(source: Awaited<ReturnType<typeof readModelSource>>): Record<string, unknown> {
  const meta = source.kind === 'onnx' ? undefined : source.file.metadata;
  return meta?.dataset !== undefined && meta?.seed !== undefined ? { dataset: meta.dataset, seed: meta.seed } : {};
}

/**
 * `kiln prune <model> --shrink --no-finetune --sparsity <x>`: removes the lowest-L1 share of each
 * coupled group's filters of any model, without data. --layers names Conv nodes (an ONNX model's
 * node names; a .kiln Module's layer names).
 */
export async function shrinkWithoutData(modelPath: string, opts: ShrinkCommandOptions, roundTo: number): Promise<void> {
  const out = new Output(opts);
  if (opts.out === undefined) throw typeError('--out', 'the .kiln or .onnx file to write', undefined);
  await checkOutputFile(opts.out, '--out');
  if (opts.sparsityFrom !== undefined) throw typeError('--sparsity-from', 'nothing with --no-finetune (one --sparsity for every group)', opts.sparsityFrom);
  if (opts.method !== 'magnitude' && opts.method !== 'l1') throw rangeError('--method', "'l1' (or the default) with --no-finetune: filters are ranked by their L1 norm", opts.method);
  if (opts.sparsity === undefined) throw typeError('--sparsity', 'the share of each group\'s filters to remove, in [0, 1)', undefined);
  const sparsity = checkSparsity('--sparsity', opts.sparsity.trim() === '' ? NaN : Number(opts.sparsity));
  const named = opts.layers?.split(',').map((l) => l.trim());
  const source = await readModelSource(modelPath);
  let graph: Graph;
  let layers = named;
  let labels = new Map<string, string>();
  if (source.kind === 'kiln') {
    graph = toGraph(source.module, source.inputShape);
    labels = moduleLayersOf(graph);
    if (named) layers = convNodesOf(graph, shrinkLayers(source.module, named));
  } else {
    graph = source.graph;
  }
  // planShrink's messages say options.layers; the user typed --layers.
  let plan: ShrinkPlan;
  try {
    plan = planShrink(graph, { fraction: sparsity, roundTo, ...(layers ? { layers } : {}) });
  } catch (err) {
    if (err instanceof Error && /options\.layers/.test(err.message)) err.message = err.message.replace(/options\.layers/g, '--layers');
    throw err;
  }
  const shrunk = shrinkPlanned(graph, plan, layers, `no coupled group of convolutions can lose filters at --sparsity ${sparsity}${roundTo > 1 ? ` --round-to ${roundTo}` : ''}`);
  await reportShrink(
    out,
    { pattern: 'filter', method: 'l1', finetune: false, sparsity, roundTo },
    plan,
    shrunk,
    { model: modelPath, out: opts.out, metadata: { ...provenance(source), source: modelPath, pruning: { method: 'l1', pattern: 'filter', sparsity, shrink: { roundTo, finetune: false } } } },
    undefined,
    labels,
  );
}
