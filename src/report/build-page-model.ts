/** A run record as the page's content: header, tiles, then sections of cards in reading order. */
import type { RunRecord } from '../compress/record.js';
import type { Card, PageModel, Section } from './page-model.js';
import { outputStage } from './output-stage.js';
import { accuracyCard, latencyCards, layerSparsityCard, layerSqnrCard, sizeCard } from './stage-charts.js';
import { facts, recipeName, tiles } from './summary.js';
import { confusionCard, layerTable, stageTable } from './tables.js';
import { curveCards, sensitivityCard } from './training-charts.js';

const present = <T>(card: T | undefined): card is T => card !== undefined;

export function buildPageModel(record: RunRecord): PageModel {
  const output = outputStage(record);
  const sections: Section[] = [
    { title: 'Stages', cards: [accuracyCard(record), sizeCard(record), ...latencyCards(record), stageTable(record)] },
    { title: 'Training', cards: curveCards(record) },
    { title: 'Sensitivity', cards: record.sensitivity ? [sensitivityCard(record.sensitivity)] : [] },
    {
      title: `Output model: ${output.name}`,
      cards: [layerSparsityCard(output), layerSqnrCard(output), confusionCard(record), layerTable(output)].filter(present) as Card[],
    },
  ];
  return { title: recipeName(record), facts: facts(record), tiles: tiles(record), sections: sections.filter((s) => s.cards.length > 0) };
}
