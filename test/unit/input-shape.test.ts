import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { seedCNN } from '../../src/nn/models.js';
import { load, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

describe('a model remembers the image shape it was built for', () => {
  it('seedCNN → InferenceSession.create(net) without options → save/load keeps the shape', async () => {
    const net = seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10, seed: 3 }).eval();
    expect(net.inputShape).toEqual([3, 32, 32]);
    const session = await InferenceSession.create(net);
    const x = new Tensor('float32', Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => (i % 17) / 17), [2, 3, 32, 32]);
    const { logits } = await session.run({ input: x });
    expect(logits.dims).toEqual([2, 10]);
    session.release();

    const dir = await mkdtemp(join(tmpdir(), 'kiln-shape-'));
    try {
      await save(net, join(dir, 'm.kiln'));
      const back = await load(join(dir, 'm.kiln'));
      expect(back.inputShape).toEqual([3, 32, 32]);
      const again = await InferenceSession.create(back);
      const out = await again.run({ input: x });
      expect(Array.from(out.logits.data)).toEqual(Array.from(logits.data));
      again.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
