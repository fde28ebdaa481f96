/**
 * The JSON Schema of a compression recipe (draft 2020-12). `recipes/recipe.schema.json` is this
 * object written out for editors (a test keeps the two equal); Ajv checks recipes against it.
 * What a schema cannot say (stage order, back-off variants that must themselves be valid stages)
 * recipe.ts checks after it.
 */
const scheduled = (min: number, max: number, exclusiveMin = false) => {
  const value = exclusiveMin ? { type: 'number', exclusiveMinimum: min, maximum: max } : { type: 'number', minimum: min, maximum: max };
  return {
    oneOf: [
      value,
      {
        type: 'object',
        required: ['type', 'from', 'to'],
        additionalProperties: false,
        properties: { type: { enum: ['linear', 'cosine', 'step'] }, from: value, to: value, atEpoch: { type: 'number', minimum: 0 } },
      },
    ],
  };
};

const epochs = { type: 'integer', minimum: 0, maximum: 1000 };
const lr = { type: 'number', exclusiveMinimum: 0, maximum: 10 };
const name = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' };

const distill = {
  widthMultiplier: { type: 'number', exclusiveMinimum: 0, maximum: 4 },
  epochs: { ...epochs, minimum: 1 },
  temperature: scheduled(0, 1000, true),
  alpha: scheduled(0, 1),
  lr,
  augment: { type: 'integer', minimum: 0, maximum: 8 },
};
const prune = {
  sparsity: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
  pattern: { type: 'string', pattern: '^(unstructured|filter|[1-9][0-9]*:[1-9][0-9]*|block[1-9][0-9]*x[1-9][0-9]*)$' },
  method: { enum: ['magnitude', 'global', 'random', 'l1', 'l2', 'bn'] },
  schedule: { enum: ['agp', 'oneshot', 'iterative'] },
  epochs,
  lr,
  layers: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
  sensitivity: {
    oneOf: [
      { type: 'boolean' },
      {
        type: 'object',
        additionalProperties: false,
        required: ['sparsities'],
        properties: { sparsities: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } } },
      },
    ],
  },
};
const fineTune = { epochs: { ...epochs, minimum: 1 }, lr };
const quantize = {
  method: { enum: ['ptq', 'qat'] },
  calibration: { enum: ['minmax', 'percentile', 'entropy', 'mse'] },
  batches: { type: 'integer', minimum: 1, maximum: 1024 },
  epochs: { ...epochs, minimum: 1 },
  lr,
  perChannel: { type: 'boolean' },
};
const pack = {
  formats: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['csr', 'bcsr-1x4', 'bcsr-4x1', 'bcsr-8x1'] } },
};

/** A stage: its kind, an optional name, its settings, and back-off variants (partial settings tried in order). */
function stage(kind: string, settings: Record<string, object>, required: string[] = [], backoff = true): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['stage', ...required],
    properties: {
      stage: { const: kind },
      name,
      ...settings,
      ...(backoff ? { backoff: { type: 'array', maxItems: 8, items: { type: 'object', additionalProperties: false, minProperties: 1, properties: settings } } } : {}),
    },
  };
}

export const RECIPE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Kiln compression recipe',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'maxAccuracyDrop', 'stages'],
  properties: {
    $schema: { type: 'string' },
    name,
    description: { type: 'string' },
    seed: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
    maxAccuracyDrop: { type: 'number', minimum: 0, maximum: 1 },
    measure: {
      type: 'object',
      additionalProperties: false,
      properties: {
        batches: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 4096 } },
        threads: { type: 'integer', minimum: 1, maximum: 256 },
        minMs: { type: 'number', minimum: 1, maximum: 60000 },
        ort: { type: 'boolean' },
      },
    },
    stages: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: {
        type: 'object',
        required: ['stage'],
        discriminator: { propertyName: 'stage' },
        oneOf: [
          stage('distill', distill, ['widthMultiplier']),
          stage('prune', prune, ['sparsity']),
          stage('fine-tune', fineTune, ['epochs'], false),
          stage('quantize', quantize),
          stage('pack', pack, [], false),
        ],
      },
    },
  },
} as const;
