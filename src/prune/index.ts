/** Pruning: masks, criteria, patterns, schedules and `prune()` (public as `kiln.pruning` and `prune`). */
export { Mask } from './mask.js';
export { prunableLayers, selectLayers } from './layers.js';
export type { PrunableLayer, LayerSelection } from './layers.js';
export { PATTERNS, parsePattern, patternSparsity, checkPatternFits } from './patterns.js';
export type { Pattern, PatternName, BlockPattern, NmPattern } from './patterns.js';
export { METHODS, layerMask, nmMask, unitScores } from './criteria.js';
export type { MethodName } from './criteria.js';
export { globalMasks } from './global.js';
export type { GlobalLimits } from './global.js';
export { agpSparsity, createSchedule, SCHEDULES } from './schedule.js';
export type { AgpOptions, ScheduleName, ScheduleOptions, PruneSchedule } from './schedule.js';
export { Pruner, checkSparsity } from './pruner.js';
export type { PrunerOptions, LayerSparsity } from './pruner.js';
export { prune, PRUNE_TRAIN_DEFAULTS } from './prune.js';
export type { PruneOptions, PruneReport, PruneResult } from './prune.js';
export { analyzeSensitivity, SENSITIVITY_SPARSITIES } from './sensitivity.js';
export type { SensitivityOptions, SensitivityReport, LayerSensitivity } from './sensitivity.js';
