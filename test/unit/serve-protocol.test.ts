// InferRequestDecoder: a request whose header repeats the last binary one's skips the parse and
// checks; each request must still get its own data, and anything else must take the full path
// with its errors.
import { describe, expect, it } from 'vitest';

import { decodeInferRequest, HttpError, InferRequestDecoder, type ModelSignature } from '../../src/serve/protocol.js';

const model: ModelSignature = {
  inputNames: ['x', 'mask'],
  inputShapes: [['N', 3], ['N', 2]],
  inputTypes: ['float32', 'uint8'],
  outputNames: ['y'],
  outputShapes: [['N', 1]],
  outputTypes: ['float32'],
};

/** A binary request for x (float32 [rows, 3]) and mask (uint8 [rows, 2]), the header padded to a multiple of 8 bytes. */
function request(x: number[], mask: number[], options: { id?: string; pad?: number } = {}): { body: Buffer; headerLength: number } {
  const rows = x.length / 3;
  const header = JSON.stringify({
    ...(options.id === undefined ? {} : { id: options.id }),
    inputs: [
      { name: 'x', shape: [rows, 3], datatype: 'FP32', parameters: { binary_data_size: x.length * 4 } },
      { name: 'mask', shape: [rows, 2], datatype: 'UINT8', parameters: { binary_data_size: mask.length } },
    ],
    outputs: [{ name: 'y', parameters: { binary_data: true } }],
  });
  const padded = header + ' '.repeat(options.pad ?? (8 - (header.length % 8)) % 8);
  const headerBytes = Buffer.from(padded);
  // An aligned copy, as readBody places a body: the float32 data is viewed in place.
  const body = Buffer.alloc(headerBytes.length + x.length * 4 + mask.length);
  headerBytes.copy(body);
  Buffer.from(new Float32Array(x).buffer).copy(body, headerBytes.length);
  Buffer.from(mask).copy(body, headerBytes.length + x.length * 4);
  return { body, headerLength: headerBytes.length };
}

function errorOf(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error('expected an HttpError');
}

describe('InferRequestDecoder', () => {
  it('a repeated header gives each request its own data, equal to the full decode, viewing its own body', () => {
    const decoder = new InferRequestDecoder(model);
    const bodies = [request([1, 2, 3], [4, 5], { id: 'a' }), request([-1, 0.5, 7], [9, 0], { id: 'a' }), request([8, 8, 8], [1, 1], { id: 'a' })];
    const decoded = bodies.map(({ body, headerLength }) => decoder.decode(body, headerLength));
    for (const [i, { body, headerLength }] of bodies.entries()) {
      const want = decodeInferRequest(model, body, headerLength);
      const got = decoded[i]!;
      expect(got.id).toBe('a');
      expect(got.outputs).toEqual(want.outputs);
      expect([...got.binaryOutputs]).toEqual([...want.binaryOutputs]);
      for (const name of ['x', 'mask']) {
        expect(got.feeds[name]!.type).toBe(want.feeds[name]!.type);
        expect(got.feeds[name]!.dims).toEqual(want.feeds[name]!.dims);
        expect(Array.from(got.feeds[name]!.data as ArrayLike<number>)).toEqual(Array.from(want.feeds[name]!.data as ArrayLike<number>));
      }
      // A view of this request's body: no copy, and nothing shared with another request.
      expect(got.feeds.x!.data.buffer).toBe(body.buffer);
    }
    expect(Array.from(decoded[1]!.feeds.x!.data as Float32Array)).toEqual([-1, 0.5, 7]);
    // What a caller does to one request's lists does not reach the next.
    decoded[0]!.outputs.push('z');
    decoded[0]!.binaryOutputs.clear();
    const next = decoder.decode(bodies[2]!.body, bodies[2]!.headerLength);
    expect(next.outputs).toEqual(['y']);
    expect([...next.binaryOutputs]).toEqual(['y']);
  });

  it('a request that differs from the remembered header takes the full path: its own shapes, and the same errors', () => {
    const decoder = new InferRequestDecoder(model);
    const one = request([1, 2, 3], [4, 5]);
    decoder.decode(one.body, one.headerLength);
    // Two rows: another header, decoded in full (and remembered from then on).
    const two = request([1, 2, 3, 4, 5, 6], [1, 2, 3, 4]);
    expect(decoder.decode(two.body, two.headerLength).feeds.x!.dims).toEqual([2, 3]);
    // The remembered header with a body one byte short or long: the full path's message.
    const short = request([1, 2, 3, 4, 5, 6], [1, 2, 3, 4]);
    const cut = short.body.subarray(0, short.body.length - 1);
    expect(errorOf(() => decoder.decode(cut, short.headerLength)).message).toBe(errorOf(() => decodeInferRequest(model, cut, short.headerLength)).message);
    const long = Buffer.concat([short.body, Buffer.from([0])]);
    expect(errorOf(() => decoder.decode(long, short.headerLength)).message).toMatch(/Expected the body to end after the binary inputs/);
    // The same header bytes with another Inference-Header-Content-Length: not a repeat.
    expect(errorOf(() => decoder.decode(short.body, short.headerLength - 1)).status).toBe(400);
    // A header of the same length that says something else (a wrong datatype) is refused.
    const wrong = Buffer.from(short.body);
    wrong.write(wrong.toString('latin1', 0, short.headerLength).replace('UINT8', 'INT16'), 0, 'latin1');
    expect(errorOf(() => decoder.decode(wrong, short.headerLength)).message).toMatch(/Expected input "mask" of datatype "UINT8" but received "INT16"/);
    // JSON requests are decoded in full every time.
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'mask', shape: [1, 2], datatype: 'UINT8', data: [0, 1] }] }));
    expect(Array.from(decoder.decode(json).feeds.x!.data as Float32Array)).toEqual([1, 2, 3]);
    expect(errorOf(() => decoder.decode(Buffer.from('{"inputs": 1}'))).status).toBe(400);
    // And the remembered binary header still decodes.
    expect(Array.from(decoder.decode(two.body, two.headerLength).feeds.mask!.data as Uint8Array)).toEqual([1, 2, 3, 4]);
  });

  it('a header whose float32 data is misaligned in the body is copied, on a repeat too', () => {
    const decoder = new InferRequestDecoder(model);
    for (const x of [[1, 2, 3], [4, 5, 6]]) {
      const aligned = request(x, [1, 0], { pad: 1 });
      // Shift the whole body by one byte in its memory: the data is no longer 4-byte aligned.
      const shifted = Buffer.alloc(aligned.body.length + 1).subarray(1);
      aligned.body.copy(shifted);
      const got = decoder.decode(shifted, aligned.headerLength);
      expect(Array.from(got.feeds.x!.data as Float32Array)).toEqual(x);
      expect(got.feeds.x!.data.buffer === shifted.buffer).toBe((shifted.byteOffset + aligned.headerLength) % 4 === 0);
    }
  });
});
