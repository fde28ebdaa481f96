/** Knowledge distillation (public as `kiln.distillation`; `distill` is also a top-level export). */
export { distill, DISTILL_TRAIN_DEFAULTS } from './distill.js';
export type { DistillOptions, DistillResult } from './distill.js';
export { featureMse, HINT_CACHE_BYTES } from './hint.js';
export type { HintOptions } from './hint.js';
export { scheduledValue, VALUE_SCHEDULE_TYPES } from './schedule.js';
export type { Scheduled, ValueSchedule, ValueAt } from './schedule.js';
export { Teacher } from './teacher.js';
export type { TeacherSource } from './teacher.js';
