/**
 * File-system checks shared by the library and the CLI, so that every entry point reports the same
 * situation with the same code and message: a model path that does not exist, a directory, an empty
 * or unreadable file, and an output location that cannot be written, named as the caller gave it.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import { string } from '../validate.js';

function codeOf(err: unknown): string | undefined {
  return (err as { code?: unknown } | null)?.code as string | undefined;
}

/**
 * Reads a model file's bytes.
 * @param name the argument's name for messages ('source', '<model>'...)
 * @throws KilnError ERR_KILN_FILE_NOT_FOUND (no such file), ERR_KILN_NOT_A_FILE (a directory),
 *   ERR_KILN_PERMISSION (not readable), ERR_KILN_CORRUPT_MODEL (an empty file: no model at all).
 */
export async function readModelFile(path: string, name: string): Promise<Uint8Array> {
  string(name, path);
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (info.isDirectory()) {
      throw new KilnError(ErrorCode.NOT_A_FILE, `Expected a model file (.kiln or .onnx) for ${name} but received '${path}', which is a directory`);
    }
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    if (err instanceof KilnError) throw err;
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new KilnError(ErrorCode.FILE_NOT_FOUND, `Expected an existing model file for ${name} but received '${path}': no such file`, { cause: err });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new KilnError(ErrorCode.PERMISSION, `Expected a readable model file for ${name} but received '${path}': permission denied`, { cause: err });
    }
    if (code === 'EISDIR') {
      throw new KilnError(ErrorCode.NOT_A_FILE, `Expected a model file (.kiln or .onnx) for ${name} but received '${path}', which is a directory`, { cause: err });
    }
    throw err;
  }
  if (bytes.length === 0) throw emptyModel(name, path);
  return bytes;
}

/** The error for a model given as zero bytes (a file or a buffer): there is no model in it to read. */
export function emptyModel(name: string, path?: string): KilnError {
  return new KilnError(
    ErrorCode.CORRUPT_MODEL,
    `Expected a .kiln or ONNX model for ${name} but received ${path === undefined ? 'zero bytes' : `'${path}', an empty file (0 bytes)`}`,
  );
}

/**
 * Checks, before any work, that `path` can be written: it is not a directory, its folder exists
 * and is writable, and an existing file there is writable.
 * @param name the option's name for messages ('--out', 'path'...)
 * @throws KilnError ERR_KILN_NOT_A_FILE (a directory), ERR_KILN_FILE_NOT_FOUND (the folder does not
 *   exist or is a file), ERR_KILN_PERMISSION (the folder or the file is not writable).
 */
export async function checkOutputFile(path: string, name: string): Promise<void> {
  string(name, path);
  if (path === '') throw new KilnError(ErrorCode.INVALID_ARG, `Expected a file path for ${name} but received an empty string`);
  const existing = await stat(path).catch((err: unknown) => {
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (existing?.isDirectory()) {
    throw new KilnError(ErrorCode.NOT_A_FILE, `Expected a file path for ${name} but received '${path}', which is a directory`);
  }
  const folder = dirname(resolve(path));
  const dirInfo = await stat(folder).catch(() => undefined);
  if (!dirInfo || !dirInfo.isDirectory()) {
    throw new KilnError(
      ErrorCode.FILE_NOT_FOUND,
      `Expected a file path in an existing folder for ${name} but received '${path}': the folder '${dirname(path)}' ${dirInfo ? 'is not a folder' : 'does not exist'}`,
    );
  }
  try {
    await access(folder, constants.W_OK);
    if (existing) await access(path, constants.W_OK);
  } catch (err) {
    throw new KilnError(
      ErrorCode.PERMISSION,
      `Expected a writable location for ${name} but received '${path}': ${existing ? 'the file' : `the folder '${dirname(path)}'`} is not writable`,
      { cause: err },
    );
  }
}

/**
 * Writes `chunks` to `path` through a temporary file in the same folder renamed over it, so a
 * crash or a full disk never leaves a half-written file where a good one was.
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const temp = join(dirname(path), `.${path.split(/[\\/]/).pop()}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx');
  try {
    try {
      await writeFile(handle, chunks instanceof Uint8Array ? chunks : (chunks as Uint8Array[]));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
