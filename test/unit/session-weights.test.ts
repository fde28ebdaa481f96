/**
 * A session keeps no JavaScript copy of its model's weights: its plan holds them packed in native
 * memory, and what it read them from (the imported graph, the plan spec's weight arrays) is let go
 * once the plan is built. Measured in a child process with --expose-gc
 * (test/support/session-weights-child.ts): process.memoryUsage().arrayBuffers after a full gc,
 * before and after building a session from an ONNX model's bytes and from its path, for a model of
 * 9.4 MB of weights. Before, each session kept the imported graph alive (ResNet-50: 97 MB of
 * JavaScript arrays beside the plan's 129 MB of packed weights).
 */
import { describe, expect, it } from 'vitest';

import { runTsChild } from '../support/run-ts-child.js';

describe('InferenceSession memory', () => {
  it('keeps no JavaScript copy of the weights once its plan is built (bytes and path sources)', async () => {
    const r = await runTsChild('test/support/session-weights-child.ts', [], 120_000);
    expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 0, signal: null });
    const out = r.json as { weightBytes: number; kept: Record<string, number>; same: boolean; steps: number[] };
    console.log(`session weights: ${out.weightBytes} bytes of weights; arrayBuffers kept per session ${JSON.stringify(out.kept)}`);
    expect(Object.keys(out.kept)).toEqual(['bytes', 'path']);
    for (const kept of Object.values(out.kept)) expect(kept).toBeLessThan(out.weightBytes / 10);
    expect(out.same).toBe(true);
    expect(out.steps.every((n) => n === 4)).toBe(true);
  });
});
