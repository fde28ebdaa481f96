/**
 * Argument checks shared by the whole library. One message shape everywhere:
 * "Expected <what> for <name> but received <value>".
 */
import { ErrorCode, KilnRangeError, KilnTypeError } from './errors.js';

/** Short, safe description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return `${value} (number)`;
  if (typeof value === 'string') return `${JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)} (string)`;
  if (typeof value === 'boolean' || typeof value === 'bigint') return `${String(value)} (${typeof value})`;
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const len = (value as unknown as { length?: number }).length;
    return `${value.constructor.name}(${len ?? value.byteLength})`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `an object (${(value as object).constructor?.name ?? 'Object'})`;
}

export function typeError(name: string, expected: string, value: unknown): KilnTypeError {
  return new KilnTypeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function rangeError(name: string, expected: string, value: unknown): KilnRangeError {
  return new KilnRangeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function shapeError(name: string, expected: string, received: string): KilnRangeError {
  return new KilnRangeError(`Expected ${expected} for ${name} but received ${received}`, ErrorCode.SHAPE_MISMATCH);
}

export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** An integer in [min, max]. */
export function integer(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError(name, 'an integer', value);
  if (value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : min === -Infinity ? `<= ${max}` : `in [${min}, ${max}]`;
    throw rangeError(name, `an integer ${range}`, value);
  }
  return value;
}

/** A finite number in [min, max] (exclusive bounds with `open`). */
export function number(name: string, value: unknown, min = -Infinity, max = Infinity, open = false): number {
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isFinite(value)) throw rangeError(name, 'a finite number', value);
  const below = open ? value <= min : value < min;
  const above = open ? value >= max : value > max;
  if (below || above) {
    const lo = open ? '(' : '[';
    const hi = open ? ')' : ']';
    throw rangeError(name, `a number in ${lo}${min}, ${max}${hi}`, value);
  }
  return value;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw typeError(name, 'a boolean', value);
  return value;
}

export function string(name: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError(name, 'a string', value);
  return value;
}

/** One of the listed string literals. */
export function oneOf<T extends string>(name: string, value: unknown, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) {
    throw (typeof value === 'string' ? rangeError : typeError)(name, `one of ${options.map((o) => `'${o}'`).join(', ')}`, value);
  }
  return value as T;
}

/** A plain options object (or undefined, returned as {}). */
export function options<T extends object>(name: string, value: unknown): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'an options object', value);
  return value as Partial<T>;
}

/**
 * Refuses keys an options object should not have (a typo would else be silently ignored):
 * RangeError ERR_KILN_INVALID_ARG "Expected only the keys a, b for options but received "foo" (string)".
 */
export function onlyKeys(name: string, opts: object, keys: Iterable<string>): void {
  const allowed = [...keys];
  for (const key of Object.keys(opts)) if (!allowed.includes(key)) throw rangeError(name, `only the keys ${allowed.join(', ')}`, key);
}

/** Optional value: returns `fallback` when undefined, else runs `check`. */
export function optional<T>(value: unknown, fallback: T, check: (v: unknown) => T): T {
  return value === undefined ? fallback : check(value);
}

/** A list of positive integers (a shape). */
export function dims(name: string, value: unknown, rank?: number): number[] {
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) throw typeError(name, 'an array of integers', value);
  const arr = Array.from(value as ArrayLike<number>);
  if (rank !== undefined && arr.length !== rank) throw shapeError(name, `${rank} dimensions`, `[${arr.join(', ')}]`);
  arr.forEach((d, i) => integer(`${name}[${i}]`, d, 0, 2 ** 31 - 1));
  return arr;
}
