/**
 * Seeded mutators shared by the loader fuzzers (test/fuzz): raw byte edits (bit flips, byte sets,
 * truncation, insertion, a splice of two inputs, a 32-bit length field set to an absurd count)
 * and structural edits of decoded JSON (a number set to a nearby or absurd value, a string to
 * another word of the format, an array shortened, grown or emptied, a key dropped).
 */
import { ErrorCode } from '../../src/errors.js';
import { Rng } from '../../src/util/rng.js';

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** Counts and lengths a corrupt file might declare. */
const ABSURD = [0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** How many cases each fuzzer runs: a fast subset in npm test, thousands in npm run test:asan. */
export function fuzzCases(fast: number): number {
  const n = Number(process.env.KILN_FUZZ_CASES);
  return Number.isSafeInteger(n) && n > 0 ? n : fast;
}

/** One raw edit of `bytes` (a copy); `other` is spliced in by one kind of edit. */
export function mutateBytes(bytes: Uint8Array, rng: Rng, other?: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  switch (rng.int(6)) {
    case 0:
      for (let k = 1 + rng.int(8); k > 0; k--) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    case 1:
      for (let k = 1 + rng.int(8); k > 0; k--) out[rng.int(out.length)] = rng.int(256);
      return out;
    case 2:
      return out.subarray(0, rng.int(out.length));
    case 3: {
      const at = rng.int(out.length + 1);
      const junk = Uint8Array.from({ length: 1 + rng.int(32) }, () => rng.int(256));
      return Uint8Array.from([...out.subarray(0, at), ...junk, ...out.subarray(at)]);
    }
    case 4: {
      const from = other ?? bytes;
      const a = rng.int(out.length + 1);
      const b = rng.int(from.length + 1);
      return Uint8Array.from([...out.subarray(0, a), ...from.subarray(b)]);
    }
    default: {
      if (out.length < 4) return out;
      const at = rng.int(out.length - 3) & ~3;
      new DataView(out.buffer).setUint32(at, pick(rng, ABSURD), true);
      return out;
    }
  }
}

const NUMBERS = [-1, 0, 1, 2, 3, 4, 7, 64, 255, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e300, -(2 ** 40), 0.5, Number.MAX_SAFE_INTEGER];

/** Every [parent, key] of a JSON value, depth first. */
function slots(value: unknown, out: [Record<string | number, unknown>, string | number][] = []): [Record<string | number, unknown>, string | number][] {
  if (value === null || typeof value !== 'object') return out;
  const obj = value as Record<string | number, unknown>;
  for (const key of Array.isArray(value) ? value.keys() : Object.keys(obj)) {
    out.push([obj, key]);
    slots(obj[key], out);
  }
  return out;
}

/** `count` edits of a JSON value in place; strings come from `words` (the format's vocabulary). */
export function mutateJson(value: unknown, rng: Rng, words: readonly string[], count = 1 + rng.int(3)): void {
  for (let k = 0; k < count; k++) {
    const all = slots(value);
    if (all.length === 0) return;
    const [parent, key] = pick(rng, all);
    const v = parent[key];
    if (typeof v === 'number') {
      parent[key] = rng.next() < 0.5 ? pick(rng, [v + 1, v - 1, v * 2, -v, Math.floor(v / 2)]) : pick(rng, NUMBERS);
    } else if (typeof v === 'string') {
      parent[key] = rng.next() < 0.8 ? pick(rng, words) : pick(rng, ['', v + v, 'x'.repeat(1 + rng.int(300))]);
    } else if (Array.isArray(v)) {
      const r = rng.int(4);
      if (r === 0) v.length = rng.int(v.length + 1);
      else if (r === 1 && v.length) v.push(structuredClone(pick(rng, v)));
      else if (r === 2) parent[key] = [];
      else if (v.length) v.splice(rng.int(v.length), 1);
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length && rng.next() < 0.5) delete (v as Record<string, unknown>)[pick(rng, keys)];
      else parent[key] = pick(rng, [null, 0, 'x', [], {}]);
    } else {
      parent[key] = pick(rng, [...NUMBERS.slice(0, 6), 'x', null, [], {}, true]);
    }
  }
}

const CODES = new Set<string>(Object.values(ErrorCode));

/**
 * Why `err` is not an acceptable outcome of loading or running a corrupt model, or undefined when
 * it is one: a KilnError, or a TypeError/RangeError with Kiln's stable `code`.
 */
export function strayError(err: unknown): string | undefined {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; constructor?: { name?: string } };
  const named = e?.name === 'KilnError' || e?.name === 'TypeError' || e?.name === 'RangeError';
  if (named && typeof e.code === 'string' && CODES.has(e.code)) return undefined;
  return `${e?.constructor?.name ?? typeof err} ${String(e?.name)} (code ${String(e?.code)}): ${String(e?.message).slice(0, 300)}`;
}

/** Tallies outcomes by error code (and 'ok'), for the log line and the both-sides checks. */
export class Outcomes {
  readonly counts = new Map<string, number>();
  readonly strays: string[] = [];
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  toString(): string {
    return [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  }
}
