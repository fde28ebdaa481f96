/** Shared by the .kiln file tests: hand-built files and the corrupt-model error matcher. */
import * as zlib from 'node:zlib';

import { expect } from 'vitest';

/**
 * A file built by hand from the format description, with any header (an object, or raw text) and
 * data, and a valid header checksum: lets the tests reach the checks that sit behind it. `patch`
 * may then edit the fixed 16-byte prefix.
 */
export function craftKilnFile(header: unknown, data: Uint8Array = new Uint8Array(0), patch?: (view: DataView) => void): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const dataStart = Math.ceil((16 + json.length) / 64) * 64;
  const out = new Uint8Array(dataStart + data.length);
  out.set([0x4b, 0x49, 0x4c, 0x4e]);
  const view = new DataView(out.buffer);
  view.setUint32(4, 1, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, zlib.crc32(json), true);
  out.set(json, 16);
  out.set(data, dataStart);
  patch?.(view);
  return out;
}

/** Matches the KilnError a corrupt file raises (with `message`, one whose message contains it). */
export const corrupt = (message?: string) =>
  expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL', ...(message ? { message: expect.stringContaining(message) } : {}) });
