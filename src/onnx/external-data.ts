/**
 * Tensors whose bytes live in a file next to the model (ONNX external data: `location`, `offset`,
 * `length`). The location must stay inside the model's folder: no absolute paths, no `..` escapes,
 * no symbolic link leading out of it.
 */
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';

import { corrupt, DataType, int64ToNumber, type ITensorProto } from './proto.js';
import { tensorDims } from './tensor-proto.js';

/** TensorProto.DataLocation.EXTERNAL */
export const EXTERNAL = 1;

const ELEMENT_BYTES: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.FLOAT16]: 2, [DataType.INT64]: 8, [DataType.UINT64]: 8,
  [DataType.INT32]: 4, [DataType.UINT32]: 4, [DataType.INT16]: 2, [DataType.UINT16]: 2, [DataType.INT8]: 1,
  [DataType.UINT8]: 1, [DataType.BOOL]: 1,
};

function inside(base: string, path: string): boolean {
  const rel = relative(base, path);
  return rel !== '' && !isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`);
}

/** Reads the external bytes of `t` from `baseDir`, after checking the path and every size. */
export async function readExternalData(t: ITensorProto, what: string, baseDir: string | undefined): Promise<Uint8Array> {
  const entries = new Map<string, string>();
  for (const e of t.externalData ?? []) entries.set(e.key ?? '', e.value ?? '');
  const location = entries.get('location');
  if (!location) throw corrupt(`Expected a 'location' entry in the external data of ${what} but received none`);
  if (baseDir === undefined) {
    throw corrupt(`${what} stores its data in the external file '${location}', but the model was given as bytes: pass externalDataDir`);
  }
  if (isAbsolute(location) || location.includes('\0')) {
    throw corrupt(`Expected a relative path inside the model folder for the external data of ${what} but received '${location}'`);
  }
  const base = await realpath(baseDir).catch(() => {
    throw corrupt(`Expected an existing folder for externalDataDir but received '${baseDir}'`);
  });
  const lexical = resolve(base, location);
  if (!inside(base, lexical)) {
    throw corrupt(`Expected a path inside the model folder for the external data of ${what} but received '${location}'`);
  }
  const real = await realpath(lexical).catch(() => {
    throw corrupt(`Expected an existing file for the external data of ${what} but '${location}' is missing in ${base}`);
  });
  if (!inside(base, real)) {
    throw corrupt(`Expected a path inside the model folder for the external data of ${what} but '${location}' leads outside it`);
  }

  const { size } = tensorDims(t.dims, what);
  const elementBytes = ELEMENT_BYTES[t.dataType ?? 0] ?? 1;
  const expected = size * elementBytes;
  const offset = int64ToNumber(entries.get('offset') ?? 0, `${what} external offset`);
  const length = entries.has('length') ? int64ToNumber(entries.get('length'), `${what} external length`) : expected;
  if (offset < 0 || length !== expected) {
    throw corrupt(`Expected offset >= 0 and length ${expected} for the external data of ${what} but received offset ${offset}, length ${length}`);
  }

  const file = await open(real, 'r').catch((err: unknown) => {
    throw corrupt(`Could not open the external data file '${location}' of ${what}: ${(err as Error).message}`, err);
  });
  try {
    const stat = await file.stat();
    if (!stat.isFile() || offset + length > stat.size) {
      throw corrupt(`Expected ${offset + length} bytes in the external data file '${location}' of ${what} but it holds ${stat.size}`);
    }
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await file.read(bytes, done, length - done, offset + done);
      if (bytesRead === 0) throw corrupt(`The external data file '${location}' of ${what} ended early`);
      done += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}
