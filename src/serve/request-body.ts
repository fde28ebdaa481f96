/**
 * Reading an inference request's body: bounded by the server's limit, placed so that binary tensors
 * can be viewed in place, into buffers that are reused from request to request.
 *
 * Why: at 224x224 each request carries 602 KB. Concatenating the chunks, copying the tensor out of
 * the body and allocating both per request cost the served int8 MobileNetV2 a fifth of its
 * requests/s at 64 connections (`kiln serve --max-batch 32`, wrk, 2 cores, old and new servers
 * alternating: 489-542 requests/s before, 650-669 after; viewing in place alone gave +5-6%).
 * A reused buffer's bytes are shown only up to what the new request wrote.
 */
import type { IncomingMessage } from 'node:http';

import { BINARY_ALIGN, HttpError } from './protocol.js';

/** The most memory the spare buffers of one server hold (64 requests of a 224x224 image take 39 MB). */
const MAX_KEPT_BYTES = 64 * 1024 * 1024;

/**
 * Spare body buffers by size, most recently used sizes kept first. A buffer comes back only once
 * nothing reads the tensors viewing it: after the request's run has settled.
 */
export class BodyBuffers {
  private readonly spare = new Map<number, Buffer[]>();
  /**
   * The memory take() handed out: only that comes back. Any other buffer may be a slice of Node's
   * shared pool (Buffer.concat's, for a small chunked body), which must never go to a request.
   */
  private readonly ours = new WeakSet<ArrayBufferLike>();
  private kept = 0;

  /** A buffer of exactly `size` bytes, holding whatever an earlier request left in it. */
  take(size: number): Buffer {
    const list = this.spare.get(size);
    const buffer = list?.pop();
    if (buffer === undefined) {
      const fresh = Buffer.allocUnsafeSlow(size);
      this.ours.add(fresh.buffer);
      return fresh;
    }
    if (list!.length === 0) this.spare.delete(size);
    this.kept -= size;
    return buffer;
  }

  /**
   * Keeps the whole buffer under `body` for a later take(), when take() made it: only for a body
   * readBody() returned, once nothing reads it or the tensors viewing it. Small bodies are kept
   * too: a fresh buffer per request cost the event loop of int8 SeedCNN's server 1.3 of its 39 us per
   * request.
   */
  giveBack(body: Buffer): void {
    const whole = body.buffer;
    const size = whole.byteLength;
    if (!this.ours.has(whole) || size > MAX_KEPT_BYTES) return;
    // Room first, from the least recently used size (this one's own older buffers included).
    while (this.kept + size > MAX_KEPT_BYTES) {
      const [oldest, buffers] = this.spare.entries().next().value as [number, Buffer[]];
      buffers.pop();
      this.kept -= oldest;
      if (buffers.length === 0) this.spare.delete(oldest);
    }
    const list = this.spare.get(size) ?? [];
    this.spare.delete(size);  // re-inserted last: the Map's order is the order of use
    this.spare.set(size, list);
    list.push(Buffer.from(whole));
    this.kept += size;
  }

  /** Bytes held in spare buffers (for tests). */
  get keptBytes(): number {
    return this.kept;
  }
}

/**
 * The request body, refused with 413 as soon as it is known to pass `limit` bytes: at once when
 * Content-Length says so, else when the bytes read pass it (nothing past the limit is kept).
 *
 * With a Content-Length, the chunks go straight into one buffer of that size (from `buffers` for a
 * binary request), placed so that the binary data after its `headerLength`-byte header starts
 * BINARY_ALIGN-aligned: decodeInferRequest then views the tensors in place.
 */
export function readBody(req: IncomingMessage, limit: number, headerLength: number | undefined, buffers: BodyBuffers): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit, `declares ${declared}`));
  // Node's parser delivers exactly Content-Length bytes of body, or reports the request aborted;
  // without one (chunked), collect the chunks.
  const sized = Number.isSafeInteger(declared) && declared > 0;
  const pad = sized && headerLength !== undefined ? (BINARY_ALIGN - (headerLength % BINARY_ALIGN)) % BINARY_ALIGN : 0;
  const whole = !sized ? undefined : headerLength !== undefined ? buffers.take(pad + declared) : Buffer.allocUnsafeSlow(declared);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const fail = (err: HttpError): void => {
      cleanup();
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > limit) return fail(tooLarge(limit, `sent more than that`));
      if (whole === undefined) chunks.push(chunk);
      else if (size + chunk.length > declared) return fail(lengthMismatch(declared, 'more'));
      else chunk.copy(whole, pad + size);
      size += chunk.length;
    };
    const onEnd = (): void => {
      // Never hand on a reused buffer's bytes that this request did not write.
      if (whole !== undefined && size !== declared) return fail(lengthMismatch(declared, `${size} bytes`));
      cleanup();
      resolve(whole !== undefined ? whole.subarray(pad, pad + size) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => fail(new HttpError(400, `The request body could not be read: ${err.message}`));
    const onClose = (): void => {
      if (!req.complete) fail(new HttpError(400, 'The client closed the connection before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number, what: string): HttpError {
  return new HttpError(413, `Expected a request body of at most ${limit} bytes (--max-body-bytes) but the request ${what}`);
}

function lengthMismatch(declared: number, received: string): HttpError {
  return new HttpError(400, `Expected a body of the declared Content-Length ${declared} bytes but received ${received}`);
}
