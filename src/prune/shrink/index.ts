/** Structured shrinking: removing Conv filters rewrites a Graph into a smaller dense one. */
export { maskGraph, modelSize, planShrink, planZeroFilters, shrinkByImportance, shrinkGraph } from './shrink.js';
export type { ModelSize, Removals, ShrinkGroup, ShrinkPlan, ShrinkPlanOptions, ShrinkReport, ZeroFilterPlanOptions } from './shrink.js';
export { analyzeChannels } from './channels.js';
export type { ChannelAnalysis, FilterRef } from './channels.js';
