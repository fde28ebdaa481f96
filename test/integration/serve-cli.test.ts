// `kiln serve` refuses bad options and bad model files before it takes a port: exit code 1 and
// one message (or a JSON {error} with --json) naming the option or file, as every command does.
// The server's behaviour itself is serve.test.ts's.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { defaultModelName } from '../../src/cli/serve.js';
import { seedCNN } from '../../src/nn/models.js';
import { save } from '../../src/runtime/model-io.js';
import { createServer } from '../../src/serve/server.js';
import { lastJson, runCli } from './run-cli.js';

const dir = await mkdtemp(join(tmpdir(), 'kiln-serve-cli-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const model = join(dir, 'tiny.kiln');
await save(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.25, seed: 1 }), model, { inputShape: [1, 28, 28] });

const errorOf = (r: { stdout: string }) => (lastJson(r as never) as { error: { code: string; message: string } }).error;

describe('kiln serve: options and files refused before listening', () => {
  it('a missing model file is ERR_KILN_FILE_NOT_FOUND naming it', async () => {
    const missing = join(dir, 'missing.kiln');
    const r = await runCli('serve', missing, '--port', '0', '--json');
    expect(r.exitCode).toBe(1);
    expect(errorOf(r)).toEqual({ code: 'ERR_KILN_FILE_NOT_FOUND', message: `Expected an existing model file for <model> but received '${missing}': no such file` });
  });

  it('contradicting or out-of-range options name the option and the value', async () => {
    const both = await runCli('serve', model, '--no-batching', '--max-batch', '8', '--port', '0', '--json');
    expect(both.exitCode).toBe(1);
    expect(errorOf(both)).toEqual({ code: 'ERR_KILN_INVALID_ARG', message: 'Expected --max-batch / --max-delay-ms / --batches-in-flight / --run-when-idle or --no-batching but received both' });
    const inFlight = await runCli('serve', model, '--no-batching', '--batches-in-flight', '1', '--port', '0', '--json');
    expect(errorOf(inFlight).message).toBe('Expected --max-batch / --max-delay-ms / --batches-in-flight / --run-when-idle or --no-batching but received both');
    const idle = await runCli('serve', model, '--no-batching', '--run-when-idle', '--port', '0', '--json');
    expect(errorOf(idle).message).toBe('Expected --max-batch / --max-delay-ms / --batches-in-flight / --run-when-idle or --no-batching but received both');
    const runtime = await runCli('serve', model, '--runtime', 'tensorrt', '--port', '0', '--json');
    expect(errorOf(runtime)).toEqual({ code: 'ERR_KILN_INVALID_ARG', message: "Expected --runtime to be one of kiln, onnxruntime but received 'tensorrt'" });
    const ort = await runCli('serve', model, '--runtime', 'onnxruntime', '--max-delay-ms', '1', '--port', '0', '--json');
    expect(errorOf(ort).message).toBe('Expected --max-batch / --max-delay-ms / --batches-in-flight / --run-when-idle with --runtime kiln only: --runtime onnxruntime does not micro-batch');
    for (const [flag, value] of [['--port', '65536'], ['--max-batch', '0'], ['--max-delay-ms', '-1'], ['--batches-in-flight', '0'], ['--batches-in-flight', '9'], ['--max-body-bytes', '0'], ['--request-timeout-ms', '1.5'], ['--max-connections', 'x']]) {
      const r = await runCli('serve', model, flag!, value!);
      expect(r.exitCode, flag).toBe(1);
      expect(r.stderr, flag).toContain(flag);
      expect(r.stderr, flag).toContain(`"${value}"`);
    }
  });

  it('createServer validates its options with ERR_KILN_INVALID_ARG', () => {
    const signature = { inputNames: [], inputShapes: [], inputTypes: [], outputNames: [], outputShapes: [], outputTypes: [], pendingRuns: 0, run: async () => ({}) };
    expect(() => createServer(signature, { maxBodyBytes: 0 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('options.maxBodyBytes') }));
    expect(() => createServer(signature, { maxConections: 4 } as never)).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('maxConections') }));
    expect(() => createServer(signature, { modelName: 'a/b' })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('options.modelName') }));
  });

  it('the default model name is the file name, made URL-safe', () => {
    expect(defaultModelName('/models/seedcnn-int8.kiln')).toBe('seedcnn-int8');
    expect(defaultModelName('my model (v2).onnx')).toBe('my-model--v2-');
    expect(defaultModelName('.kiln')).toBe('kiln');
  });
});
