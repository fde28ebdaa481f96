/**
 * Checks that a value is a run record the report can draw: the format tag and version, and every
 * field the page reads, with the path of a bad field in the message ("run.stages[2].accuracy").
 * The page script trusts what passes, so a record that checks out never breaks it half-drawn.
 */
import { RUN_RECORD_FORMAT, RUN_RECORD_VERSION } from '../compress/record.js';
import type { RunRecord } from '../compress/record.js';
import { boolean, integer, number, oneOf, rangeError, string, typeError } from '../validate.js';

type Fields = Record<string, unknown>;

const STAGE_KINDS = ['original', 'distill', 'prune', 'fine-tune', 'quantize', 'pack'] as const;
const PRECISIONS = ['fp32', 'int8'] as const;

function object(name: string, value: unknown): Fields {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'an object', value);
  return value as Fields;
}

function array(name: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw typeError(name, 'an array', value);
  return value;
}

/** Each element of an array checked by `check(elementName, element)`. */
function each(name: string, value: unknown, check: (name: string, element: unknown) => void): void {
  array(name, value).forEach((element, i) => check(`${name}[${i}]`, element));
}

/**
 * An optional finite number. `null` counts as absent: JSON.stringify writes NaN and Infinity (an
 * exact layer's SQNR) as null, and the page shows those as missing rather than refusing the file.
 */
function optionalNumber(name: string, value: unknown): void {
  if (value !== undefined && value !== null) number(name, value);
}

function optionalString(name: string, value: unknown): void {
  if (value !== undefined) string(name, value);
}

function checkCurvePoint(name: string, value: unknown): void {
  const p = object(name, value);
  integer(`${name}.epoch`, p.epoch, 0);
  number(`${name}.trainLoss`, p.trainLoss);
  number(`${name}.trainAccuracy`, p.trainAccuracy);
  optionalNumber(`${name}.valAccuracy`, p.valAccuracy);
  number(`${name}.lr`, p.lr);
  optionalNumber(`${name}.sparsity`, p.sparsity);
}

function checkAttempt(name: string, value: unknown): void {
  const a = object(name, value);
  object(`${name}.settings`, a.settings);
  number(`${name}.accuracy`, a.accuracy);
  boolean(`${name}.withinBudget`, a.withinBudget);
  each(`${name}.curve`, a.curve, checkCurvePoint);
  number(`${name}.seconds`, a.seconds, 0);
}

function checkLatencyCell(name: string, value: unknown): void {
  const c = object(name, value);
  integer(`${name}.batch`, c.batch, 1);
  integer(`${name}.threads`, c.threads, 1);
  number(`${name}.kilnMs`, c.kilnMs, 0);
  optionalNumber(`${name}.ortMs`, c.ortMs);
}

function checkLayer(name: string, value: unknown): void {
  const l = object(name, value);
  string(`${name}.name`, l.name);
  string(`${name}.op`, l.op);
  number(`${name}.weights`, l.weights, 0);
  number(`${name}.sparsity`, l.sparsity, 0, 1);
  string(`${name}.pattern`, l.pattern);
  number(`${name}.macs`, l.macs, 0);
  optionalNumber(`${name}.sqnrDb`, l.sqnrDb);
  optionalString(`${name}.kernel`, l.kernel);
}

function checkStage(name: string, value: unknown): void {
  const s = object(name, value);
  string(`${name}.name`, s.name);
  oneOf(`${name}.kind`, s.kind, STAGE_KINDS);
  each(`${name}.attempts`, s.attempts, checkAttempt);
  if (s.accepted !== undefined) integer(`${name}.accepted`, s.accepted, 0, (s.attempts as unknown[]).length - 1);
  number(`${name}.accuracy`, s.accuracy);
  number(`${name}.accuracyDrop`, s.accuracyDrop);
  number(`${name}.fileBytes`, s.fileBytes, 0);
  number(`${name}.parameters`, s.parameters, 0);
  number(`${name}.macs`, s.macs, 0);
  number(`${name}.nonZeroMacs`, s.nonZeroMacs, 0);
  oneOf(`${name}.precision`, s.precision, PRECISIONS);
  each(`${name}.latency`, s.latency, checkLatencyCell);
  each(`${name}.layers`, s.layers, checkLayer);
  number(`${name}.seconds`, s.seconds, 0);
}

function checkSensitivity(name: string, value: unknown): void {
  const s = object(name, value);
  number(`${name}.baseline`, s.baseline);
  string(`${name}.pattern`, s.pattern);
  each(`${name}.sparsities`, s.sparsities, (n, v) => number(n, v, 0, 1));
  each(`${name}.layers`, s.layers, (layerName, layerValue) => {
    const layer = object(layerName, layerValue);
    string(`${layerName}.name`, layer.name);
    each(`${layerName}.points`, layer.points, (pointName, pointValue) => {
      const point = object(pointName, pointValue);
      number(`${pointName}.sparsity`, point.sparsity, 0, 1);
      number(`${pointName}.accuracy`, point.accuracy);
    });
  });
}

function checkResult(name: string, value: unknown): void {
  const r = object(name, value);
  string(`${name}.stage`, r.stage);
  number(`${name}.accuracy`, r.accuracy);
  number(`${name}.accuracyDrop`, r.accuracyDrop);
  number(`${name}.maxAccuracyDrop`, r.maxAccuracyDrop);
  boolean(`${name}.completed`, r.completed);
  optionalString(`${name}.stoppedBecause`, r.stoppedBecause);
  number(`${name}.smaller`, r.smaller, 0);
  each(`${name}.faster`, r.faster, (cellName, cellValue) => {
    const cell = object(cellName, cellValue);
    integer(`${cellName}.batch`, cell.batch, 1);
    integer(`${cellName}.threads`, cell.threads, 1);
    number(`${cellName}.originalMs`, cell.originalMs, 0);
    number(`${cellName}.outputMs`, cell.outputMs, 0);
    number(`${cellName}.vsOriginal`, cell.vsOriginal, 0);
    optionalNumber(`${cellName}.vsOrt`, cell.vsOrt);
  });
  // Rows are true classes, columns predictions: a square of counts (empty when none was measured).
  const rows = array(`${name}.confusion`, r.confusion);
  rows.forEach((row, i) => {
    const cells = array(`${name}.confusion[${i}]`, row);
    if (cells.length !== rows.length) throw rangeError(`${name}.confusion[${i}]`, `${rows.length} counts (a square matrix)`, row);
    cells.forEach((count, j) => number(`${name}.confusion[${i}][${j}]`, count, 0));
  });
}

/**
 * Returns `value` as a RunRecord when it is one the report can draw.
 * @param name how messages name the value ('record', 'run.json'...)
 * @throws RangeError ERR_KILN_INVALID_ARG for another format tag or version, TypeError/RangeError
 *   ERR_KILN_INVALID_ARG naming the first bad field.
 */
export function checkRunRecord(value: unknown, name = 'record'): RunRecord {
  const r = object(name, value);
  if (r.format !== RUN_RECORD_FORMAT) throw rangeError(`${name}.format`, `'${RUN_RECORD_FORMAT}' (a kiln compress run record)`, r.format);
  if (r.version !== RUN_RECORD_VERSION) throw rangeError(`${name}.version`, `${RUN_RECORD_VERSION} (the version this Kiln reads)`, r.version);
  string(`${name}.kiln`, r.kiln);
  const machine = object(`${name}.machine`, r.machine);
  string(`${name}.machine.cpu`, machine.cpu);
  string(`${name}.machine.isa`, machine.isa);
  integer(`${name}.machine.threads`, machine.threads, 1);
  const recipe = object(`${name}.recipe`, r.recipe);
  optionalString(`${name}.recipe.name`, recipe.name);
  integer(`${name}.seed`, r.seed);
  const dataset = object(`${name}.dataset`, r.dataset);
  string(`${name}.dataset.name`, dataset.name);
  integer(`${name}.dataset.heldOutImages`, dataset.heldOutImages, 0);
  string(`${name}.startedAt`, r.startedAt);
  number(`${name}.seconds`, r.seconds, 0);
  const stages = array(`${name}.stages`, r.stages);
  if (stages.length === 0) throw rangeError(`${name}.stages`, 'at least the original model', stages);
  stages.forEach((stage, i) => checkStage(`${name}.stages[${i}]`, stage));
  if (r.sensitivity !== undefined) checkSensitivity(`${name}.sensitivity`, r.sensitivity);
  checkResult(`${name}.result`, r.result);
  return value as RunRecord;
}
