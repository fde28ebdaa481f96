/**
 * The server's request bodies (src/serve/request-body.ts): binary data placed aligned after a
 * header of any length; buffers reused from request to request without ever showing one request's
 * bytes to another; short, long and oversized bodies refused; the spare buffers bounded.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { BINARY_ALIGN, HttpError } from '../../src/serve/protocol.js';
import { BodyBuffers, readBody } from '../../src/serve/request-body.js';

/** A stand-in for node:http's request: a stream with headers that sends `pieces`, then ends (or closes early). */
function request(headers: Record<string, string>, pieces: Buffer[], ending: 'end' | 'abort' = 'end'): IncomingMessage {
  const req = Object.assign(new PassThrough(), { headers, complete: false });
  setImmediate(() => {
    for (const p of pieces) req.write(p);
    if (ending === 'end') {
      req.complete = true;
      req.end();
    } else {
      req.destroy();
    }
  });
  return req as unknown as IncomingMessage;
}

/** `bytes` of a pattern that tells requests apart: byte i of request `id` is (i * 7 + id) & 255. */
function pattern(bytes: number, id: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 7 + id) & 255;
  return b;
}

/** Splits a body into pieces of odd sizes, as a socket might deliver it. */
function pieces(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < body.length; k++) {
    const n = [1, 4093, 65536, 17][k % 4]!;
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<HttpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(HttpError);
  return err as HttpError;
}

describe('readBody', () => {
  it('puts the binary data after a header of every length mod 8 on an aligned address, bytes intact, sized or chunked', async () => {
    const buffers = new BodyBuffers();
    for (let headerLength = 100; headerLength < 100 + 2 * BINARY_ALIGN; headerLength++) {
      const sent = pattern(headerLength + 70_000, headerLength);
      const sized = await readBody(request({ 'content-length': String(sent.length) }, pieces(sent)), 1 << 20, headerLength, buffers);
      expect(sized.equals(sent)).toBe(true);
      expect((sized.byteOffset + headerLength) % BINARY_ALIGN).toBe(0);
      const chunked = await readBody(request({}, pieces(sent)), 1 << 20, headerLength, buffers);
      expect(chunked.equals(sent)).toBe(true);
      buffers.giveBack(sized);
    }
  });

  it('reuses a given-back buffer for the next body of its size, showing only the new bytes', async () => {
    const buffers = new BodyBuffers();
    const first = await readBody(request({ 'content-length': '200000' }, pieces(pattern(200_000, 1))), 1 << 20, 60, buffers);
    const memory = first.buffer;
    buffers.giveBack(first);
    expect(buffers.keptBytes).toBe(memory.byteLength);
    const second = await readBody(request({ 'content-length': '200000' }, pieces(pattern(200_000, 2))), 1 << 20, 60, buffers);
    expect(second.buffer).toBe(memory);
    expect(second.equals(pattern(200_000, 2))).toBe(true);
    expect(buffers.keptBytes).toBe(0);
    // Not given back: the next body of that size gets fresh memory.
    const third = await readBody(request({ 'content-length': '200000' }, pieces(pattern(200_000, 3))), 1 << 20, 60, buffers);
    expect(third.buffer).not.toBe(memory);
  });

  it('a body that ends short of its Content-Length or runs past it is 400; past the limit 413; a client gone mid-body 400', async () => {
    const buffers = new BodyBuffers();
    // A reused buffer first, so that a short body would otherwise show the previous request's bytes.
    buffers.giveBack(await readBody(request({ 'content-length': '100000' }, [pattern(100_000, 9)]), 1 << 20, 8, buffers));
    const short = await rejection(readBody(request({ 'content-length': '100000' }, [pattern(99_000, 1)]), 1 << 20, 8, buffers));
    expect([short.status, short.message]).toEqual([400, 'Expected a body of the declared Content-Length 100000 bytes but received 99000 bytes']);
    const long = await rejection(readBody(request({ 'content-length': '1000' }, [pattern(1001, 1)]), 1 << 20, 8, buffers));
    expect([long.status, long.message]).toEqual([400, 'Expected a body of the declared Content-Length 1000 bytes but received more']);
    const declared = await rejection(readBody(request({ 'content-length': '2000' }, []), 1000, undefined, buffers));
    expect([declared.status, declared.message]).toEqual([413, 'Expected a request body of at most 1000 bytes (--max-body-bytes) but the request declares 2000']);
    const streamed = await rejection(readBody(request({}, pieces(pattern(70_000, 1))), 65_536, undefined, buffers));
    expect([streamed.status, streamed.message]).toEqual([413, 'Expected a request body of at most 65536 bytes (--max-body-bytes) but the request sent more than that']);
    const gone = await rejection(readBody(request({ 'content-length': '100000' }, [pattern(5000, 1)], 'abort'), 1 << 20, 8, buffers));
    expect([gone.status, gone.message]).toEqual([400, 'The client closed the connection before sending the whole body']);
  });
});

describe('BodyBuffers', () => {
  it('keeps at most 64 MiB, dropping the least recently used sizes first', () => {
    const buffers = new BodyBuffers();
    const MiB = 1024 * 1024;
    const taken = Array.from({ length: 100 }, () => buffers.take(MiB));
    for (const b of taken) buffers.giveBack(b);
    expect(buffers.keptBytes).toBe(64 * MiB);
    // A new size takes room from the oldest; the one given back last is kept.
    const newest = buffers.take(2 * MiB);
    buffers.giveBack(newest);
    expect(buffers.keptBytes).toBe(64 * MiB);
    expect(buffers.take(2 * MiB).buffer).toBe(newest.buffer);
    expect(buffers.keptBytes).toBe(62 * MiB);
    // A buffer larger than the whole budget is not kept.
    buffers.giveBack(buffers.take(65 * MiB));
    expect(buffers.keptBytes).toBe(62 * MiB);
  });

  it('keeps small bodies, and only the memory take() made: never a slice of Node\'s shared pool', () => {
    const buffers = new BodyBuffers();
    const small = buffers.take(300);
    buffers.giveBack(small.subarray(5, 200));
    expect(buffers.keptBytes).toBe(300);
    expect(buffers.take(300).buffer).toBe(small.buffer);
    // Buffer.concat of small chunks (readBody's chunked path) and allocUnsafe share Node's pool.
    const pooled = Buffer.concat([Buffer.from('ab'), Buffer.from('cd')]);
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    buffers.giveBack(pooled);
    buffers.giveBack(Buffer.allocUnsafe(100));
    buffers.giveBack(Buffer.allocUnsafeSlow(1000));
    expect(buffers.keptBytes).toBe(0);
    expect(buffers.take(pooled.buffer.byteLength).buffer).not.toBe(pooled.buffer);
  });
});
