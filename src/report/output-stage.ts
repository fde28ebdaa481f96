import type { RunRecord, StageRecord } from '../compress/record.js';

/** The stage whose model is the run's output: the one the result names, else the last one. */
export function outputStage(record: RunRecord): StageRecord {
  return record.stages.find((s) => s.name === record.result.stage) ?? record.stages[record.stages.length - 1];
}
