/**
 * Reads a run record (`run.json`) from a file or from JSON text. Anything wrong inside the file is
 * one code, ERR_KILN_CORRUPT_FILE (not JSON, another format or version, a bad field): for the caller
 * the file is unusable whichever it is, and the message says which field.
 */
import { readFile, stat } from 'node:fs/promises';

import type { RunRecord } from '../compress/record.js';
import { ErrorCode, KilnError, KilnRangeError, KilnTypeError } from '../errors.js';
import { string } from '../validate.js';
import { checkRunRecord } from './check-record.js';

/** JSON text rather than a path: a path never starts with '{'. */
function isJsonText(source: string): boolean {
  return source.trimStart().startsWith('{');
}

async function readText(path: string): Promise<string> {
  try {
    if ((await stat(path)).isDirectory()) {
      throw new KilnError(ErrorCode.NOT_A_FILE, `Expected a run record file (run.json) but received '${path}', which is a directory`);
    }
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof KilnError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new KilnError(ErrorCode.FILE_NOT_FOUND, `Expected an existing run record file but received '${path}': no such file`, { cause: err });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new KilnError(ErrorCode.PERMISSION, `Expected a readable run record file but received '${path}': permission denied`, { cause: err });
    }
    throw err;
  }
}

/**
 * Reads and checks a run record, as `kiln compress` writes it.
 * @param pathOrJson a path to the file, or the JSON text itself (text starting with '{')
 * @returns the record, with every field the report draws checked
 * @throws KilnError ERR_KILN_CORRUPT_FILE (empty; not JSON; not a `kiln-compress-run` record; another
 *   version; a missing or wrongly typed field, named in the message), ERR_KILN_FILE_NOT_FOUND,
 *   ERR_KILN_NOT_A_FILE, ERR_KILN_PERMISSION (the file cannot be read); TypeError
 *   ERR_KILN_INVALID_ARG when `pathOrJson` is not a string.
 */
export async function readRunRecord(pathOrJson: string): Promise<RunRecord> {
  string('pathOrJson', pathOrJson);
  const fromText = isJsonText(pathOrJson);
  const where = fromText ? 'the run record JSON' : `'${pathOrJson}'`;
  const text = fromText ? pathOrJson : await readText(pathOrJson);
  if (text.trim() === '') {
    throw new KilnError(ErrorCode.CORRUPT_FILE, `Expected a JSON run record (run.json) but received ${fromText ? 'blank text' : `'${pathOrJson}', an empty file (${text.length} bytes)`}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new KilnError(ErrorCode.CORRUPT_FILE, `Expected a JSON run record (run.json) but ${where} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  try {
    return checkRunRecord(parsed, 'run');
  } catch (err) {
    if (err instanceof KilnTypeError || err instanceof KilnRangeError) {
      throw new KilnError(ErrorCode.CORRUPT_FILE, `${err.message} (in ${where})`, { cause: err });
    }
    throw err;
  }
}
