/**
 * Compression recipes: the shipped ones parse, the schema file is the schema the code checks with,
 * defaults and back-off variants are filled in, and every kind of bad recipe is refused with
 * ERR_KILN_INVALID_RECIPE and a message that names the stage and the field; compress() refuses
 * them (and data that does not fit) before any stage starts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { compress } from '../../src/compress/compress.js';
import { parseRecipe, readRecipe, variant } from '../../src/compress/recipe.js';
import { RECIPE_SCHEMA } from '../../src/compress/recipe-schema.js';
import { synthetic } from '../../src/data/synthetic.js';
import { seedCNN } from '../../src/nn/models.js';

const recipes = join(import.meta.dirname, '..', '..', 'recipes');
const base = { name: 'r', maxAccuracyDrop: 0.01, stages: [{ stage: 'distill', widthMultiplier: 0.5 }, { stage: 'prune', sparsity: 0.8 }, { stage: 'quantize' }, { stage: 'pack' }] };
const withStages = (...stages: object[]): object => ({ ...base, stages });

function refusal(input: string | object): string {
  try {
    parseRecipe(input);
  } catch (err) {
    expect((err as { code?: string }).code).toBe('ERR_KILN_INVALID_RECIPE');
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('recipes', () => {
  it('the shipped recipes parse, and recipes/recipe.schema.json is the schema the code validates with', async () => {
    for (const file of ['mnist-half-80-int8.json', 'mnist-prune-90-int8.json']) {
      const r = await readRecipe(join(recipes, file));
      expect(r.name).toBe(file.replace('.json', ''));
      expect(r.stages[r.stages.length - 1].stage).toBe('pack');
    }
    expect(JSON.parse(readFileSync(join(recipes, 'recipe.schema.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(RECIPE_SCHEMA)));
  });

  it('fills in defaults and explicit back-off variants (prune: 0.1 and 0.2 less; PTQ: QAT)', () => {
    const r = parseRecipe(base);
    expect(r.seed).toBe(1);
    expect(r.measure).toEqual({ batches: [1, 64], threads: 1, minMs: 500, ort: true });
    const prune = r.stages[1];
    expect(prune.stage === 'prune' && prune.backoff).toEqual([{ sparsity: 0.7 }, { sparsity: 0.6 }]);
    expect(prune.stage === 'prune' && prune.pattern).toBe('unstructured');
    const quantize = r.stages[2];
    expect(quantize.stage === 'quantize' && quantize.backoff).toEqual([{ method: 'qat' }]);
    expect(variant(quantize, 1)).toMatchObject({ stage: 'quantize', method: 'qat', epochs: 2 });
    expect(variant(prune, 2)).toMatchObject({ stage: 'prune', sparsity: 0.6, pattern: 'unstructured' });
    // An explicit empty back-off list means no second try.
    const none = parseRecipe(withStages({ stage: 'prune', sparsity: 0.8, backoff: [] }));
    expect(none.stages[0].stage === 'prune' && none.stages[0].backoff).toEqual([]);
  });

  it.each([
    ['not JSON', '{ "name": ', /not valid JSON/],
    ['a JSON array', '[]', /must be a JSON object/],
    ['an unknown stage', withStages({ stage: 'squeeze' }), /stages\[0\].*stage must be one of distill, prune, fine-tune, quantize, pack but received "squeeze"/],
    ['an unknown field in a stage', withStages({ stage: 'prune', sparsity: 0.5, sparsty: 0.9 }), /stages\[0\] \(prune\) has an unknown field 'sparsty'/],
    ['an unknown top-level field', { ...base, budget: 1 }, /recipe has an unknown field 'budget'/],
    ['a stage without its required field', withStages({ stage: 'prune' }), /stages\[0\] \(prune\) is missing its required field 'sparsity'/],
    ['quantize before prune', withStages({ stage: 'quantize' }, { stage: 'prune', sparsity: 0.5 }), /stages\[1\] \(prune\) comes after quantize, which cannot work/],
    ['distill after another stage', withStages({ stage: 'prune', sparsity: 0.5 }, { stage: 'distill', widthMultiplier: 0.5 }), /stages\[1\] \(distill\) must come first/],
    ['pack before the end', withStages({ stage: 'pack' }, { stage: 'quantize' }), /stages\[0\] \(pack\) must be the last stage/],
    ['quantize twice', withStages({ stage: 'quantize' }, { stage: 'quantize', name: 'again' }), /stages\[1\] \(quantize\) appears twice/],
    ['two stages with one name', withStages({ stage: 'prune', sparsity: 0.5 }, { stage: 'fine-tune', epochs: 1, name: 'prune' }), /name must be unique/],
    ['a negative budget', { ...base, maxAccuracyDrop: -0.01 }, /recipe.maxAccuracyDrop must be >= 0 but received -0.01/],
    ['a budget above 1', { ...base, maxAccuracyDrop: 2 }, /maxAccuracyDrop must be <= 1/],
    ['sparsity 1', withStages({ stage: 'prune', sparsity: 1 }), /stages\[0\] \(prune\).sparsity must be < 1 but received 1/],
    ['T <= 0', withStages({ stage: 'distill', widthMultiplier: 0.5, temperature: 0 }), /stages\[0\] \(distill\).temperature must be > 0/],
    ['alpha above 1', withStages({ stage: 'distill', widthMultiplier: 0.5, alpha: 1.5 }), /stages\[0\] \(distill\).alpha/],
    ['a pattern that is not one', withStages({ stage: 'prune', sparsity: 0.5, pattern: 'block3x3' }), /stages\[0\] \(prune\).pattern must be a pruning pattern/],
    ['a back-off that prunes more', withStages({ stage: 'prune', sparsity: 0.5, backoff: [{ sparsity: 0.6 }] }), /backoff\[0\].sparsity must be below the stage's sparsity 0.5/],
    ['a back-off with an unknown field', withStages({ stage: 'quantize', backoff: [{ method: 'qat', bogus: 1 }] }), /stages\[0\] \(quantize\).backoff\[0\] has an unknown field 'bogus'/],
    ['a wrong type', withStages({ stage: 'fine-tune', epochs: '2' }), /stages\[0\] \(fine-tune\).epochs must be integer but received "2"/],
    ['no stages', { ...base, stages: [] }, /recipe.stages must NOT have fewer than 1 items/],
  ])('refuses %s, naming the stage and field', (_what, input, message) => {
    expect(refusal(input as string | object)).toMatch(message);
  });

  it('a missing recipe file is ERR_KILN_FILE_NOT_FOUND naming --recipe', async () => {
    await expect(readRecipe(join(recipes, 'no-such.json'))).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringMatching(/--recipe/) });
  });

  it('compress() refuses a bad recipe, and data that does not fit the model, before any stage starts', async () => {
    const data = synthetic({ count: 64, imageShape: [1, 28, 28], numClasses: 10, seed: 1 });
    const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10 });
    const events: unknown[] = [];
    const onProgress = (e: unknown): number => events.push(e);
    await expect(compress(model, withStages({ stage: 'quantize' }, { stage: 'prune', sparsity: 0.5 }), { train: data, validation: data, onProgress })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_RECIPE' });
    await expect(compress(model, '{ nope', { train: data, validation: data, onProgress })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_RECIPE' });
    const other = synthetic({ count: 64, imageShape: [1, 28, 28], numClasses: 4, seed: 1 });
    await expect(compress(model, base, { train: other, validation: other, onProgress })).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH' });
    await expect(compress(model, base, { train: data, onProgress } as never)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' });
    expect(events).toEqual([]);
  });
});
