import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, seedCNN } from '../../src/nn/index.js';
import type { Module } from '../../src/nn/index.js';
import { encodeKilnFile, readKilnFile, writeKilnFile } from '../../src/runtime/kiln-file.js';
import { load, moduleFromKilnFile, save } from '../../src/runtime/model-io.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-model-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every layer type with state, nested containers, and random values in every parameter and buffer. */
function sampleModel(seed: number): Sequential {
  const model = new Sequential(
    new Conv2d(2, 4, 3, { padding: 1, stride: 2 }),
    new BatchNorm2d(4, { eps: 1e-3, momentum: 0.2 }),
    new ReLU(),
    new MaxPool2d(2),
    new Dropout(0.25),
    new Flatten(),
    new Sequential(new Linear(4 * 2 * 2, 5), new ReLU(), new Linear(5, 3, { bias: false })),
  );
  const rng = new Rng(seed);
  for (const t of [...model.parameters().map((p) => p.value), ...model.buffers().map((b) => b.value)]) {
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
  }
  return model;
}

/** Same names, same bytes (vitest's deep equality is slow on large buffers). */
function sameState(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  return a.size === b.size && [...a].every(([name, bytes]) => b.get(name)?.equals(bytes) === true);
}

/** name -> bytes of every parameter and buffer. */
function state(model: Module): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const { name, value } of [...model.parameters(), ...model.buffers()]) out.set(name, Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength));
  return out;
}

const corrupt = (message: string) => expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining(message) });

describe('save / load', () => {
  it('round-trips config, every parameter and buffer bit for bit, input shape and metadata', async () => {
    const model = sampleModel(1);
    const path = join(dir, 'sample.kiln');
    await save(model, path, { inputShape: [2, 8, 8], metadata: { testAccuracy: 0.5, note: 'x' } });
    const loaded = await load(path);
    expect(loaded).toBeInstanceOf(Sequential);
    expect(loaded.config()).toEqual(model.config());
    const before = state(model);
    const after = state(loaded);
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect([...before.keys()]).toEqual([
      '0.weight', '0.bias', '1.weight', '1.bias', '6.0.weight', '6.0.bias', '6.2.weight', '1.running_mean', '1.running_var',
    ]);
    for (const [name, bytes] of before) expect(after.get(name)!.equals(bytes), name).toBe(true);
    expect(loaded.training).toBe(false);
    expect(loaded.children().every((c) => !c.training)).toBe(true);

    const file = await readKilnFile(path);
    expect(file.model).toEqual({ kind: 'module', config: model.config(), inputShape: [2, 8, 8] });
    expect(file.metadata).toEqual({ testAccuracy: 0.5, note: 'x' });
    // Loading from bytes and from a decoded file gives the same module.
    expect(sameState(state(await load(new Uint8Array(await readFile(path)))), after)).toBe(true);
    expect(sameState(state(moduleFromKilnFile(file)), after)).toBe(true);
  });

  it('round-trips SeedCNN with the input shape it was built for', async () => {
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 });
    const path = join(dir, 'seed.kiln');
    await save(net, path);
    const loaded = await load(path);
    expect(loaded.config()).toEqual(net.config());
    expect(loaded.inputShape).toEqual([1, 28, 28]);
    expect(sameState(state(loaded), state(net))).toBe(true);
    expect(sameState(state(loaded), state(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 4 })))).toBe(false);
    expect((await readKilnFile(path)).model).toEqual({ kind: 'module', config: net.config(), inputShape: [1, 28, 28] });
  });

  it('leaves the input shape out when unknown', async () => {
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 });
    net.inputShape = undefined;
    const path = join(dir, 'seed-noshape.kiln');
    await save(net, path);
    expect((await readKilnFile(path)).model).toEqual({ kind: 'module', config: net.config() });
    expect((await load(path)).inputShape).toBeUndefined();
  });

  it('rejects bad save arguments', async () => {
    const model = sampleModel(2);
    await expect(save({} as never, join(dir, 'x.kiln'))).rejects.toThrow(TypeError);
    await expect(save(model, 5 as never)).rejects.toThrow(TypeError);
    await expect(save(model, join(dir, 'x.kiln'), { inputShape: [2, 8.5, 8] })).rejects.toThrow(TypeError);
    // 3 channels do not fit a Conv2d expecting 2.
    await expect(save(model, join(dir, 'x.kiln'), { inputShape: [3, 8, 8] })).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH' });
    await expect(save(model, join(dir, 'x.kiln'), { metadata: { a: Number.NaN } })).rejects.toThrow(RangeError);
    await expect(save(model, join(dir, 'no-such-dir', 'x.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining('no-such-dir') });
  });

  describe('refuses a file whose tensors do not match its model', () => {
    const model = sampleModel(3);
    const config = model.config();
    const tensors = (): Map<string, Tensor> => new Map([...model.parameters(), ...model.buffers()].map((p) => [p.name, p.value] as [string, Tensor]));
    const bytes = (modelJson: unknown, t: Map<string, Tensor>): Uint8Array => encodeKilnFile({ model: modelJson, tensors: t });
    const good = { kind: 'module', config };

    it('names a missing, extra, wrongly shaped or typed tensor', async () => {
      await expect(load(bytes(good, tensors()))).resolves.toBeInstanceOf(Sequential);
      const missing = tensors();
      missing.delete('1.running_var');
      await expect(load(bytes(good, missing))).rejects.toThrow(corrupt("no tensor '1.running_var'"));
      const extra = tensors().set('7.weight', new Tensor('float32', [1]));
      await expect(load(bytes(good, extra))).rejects.toThrow(corrupt("tensor '7.weight', which the model does not use"));
      const reshaped = tensors();
      reshaped.set('0.weight', reshaped.get('0.weight')!.reshape([4, 2, 9]));
      await expect(load(bytes(good, reshaped))).rejects.toThrow(corrupt("tensor '0.weight' has dims [4, 2, 9], the model needs [4, 2, 3, 3]"));
      const int8 = tensors().set('0.bias', new Tensor('int8', new Int8Array(4), [4]));
      await expect(load(bytes(good, int8))).rejects.toThrow(corrupt("tensor '0.bias' is int8"));
    });

    it('refuses a bad model description', async () => {
      await expect(load(bytes(null, tensors()))).rejects.toThrow(corrupt('expected a saved Module'));
      await expect(load(bytes({ config }, tensors()))).rejects.toThrow(corrupt('expected a saved Module'));
      await expect(load(bytes({ kind: 'module', config: { type: 'Conv2d', inChannels: -1, outChannels: 2, kernelSize: 3 } }, new Map()))).rejects.toThrow(
        corrupt('its layer config is invalid'),
      );
      await expect(load(bytes({ kind: 'module' }, new Map()))).rejects.toThrow(corrupt('its layer config is invalid'));
      await expect(load(bytes({ kind: 'module', config: { type: 'Transformer' } }, new Map()))).rejects.toMatchObject({ code: 'ERR_KILN_UNSUPPORTED_OP' });
    });

    it('reports corruption and missing files', async () => {
      const path = join(dir, 'cut.kiln');
      await writeKilnFile(path, { model: good, tensors: tensors() });
      const whole = new Uint8Array(await readFile(path));
      await expect(load(whole.subarray(0, whole.length - 1))).rejects.toThrow(corrupt('data section'));
      await expect(load(join(dir, 'absent.kiln'))).rejects.toMatchObject({ code: 'ERR_KILN_FILE_NOT_FOUND', message: expect.stringContaining('absent.kiln') });
    });
  });
});
