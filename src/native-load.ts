/**
 * What the addon loader (src/binding.ts) reports when no native build loads: one message with
 * every file it tried and why each failed, the platform, libc and Node-API it detected, which
 * prebuilt binaries exist, and how to build from source. Pure text; the loading is binding.ts's.
 */
import { existsSync } from 'node:fs';

/** The name Kiln is published under on npm (`kiln` there is an unrelated package). */
export const PACKAGE_NAME = '@kiln-ml/kiln';

/** One file the loader tried to `require`, or a finder that found nothing. */
export interface LoadAttempt {
  /** What it was: 'KILN_ADDON_PATH', 'source build', 'prebuilt binary', 'node-gyp-build'. */
  kind: string;
  /** The file tried (absent when a finder reports that it found none). */
  path?: string;
  /** The error it gave. */
  error: string;
}

/** The C library of this process: glibc with its version, musl, or unknown. */
export interface Libc {
  family: 'glibc' | 'musl' | 'unknown';
  version?: string;
}

/**
 * glibc from the process report (Node fills `glibcVersionRuntime` only when it runs on glibc),
 * else musl when its dynamic loader is present (Alpine), else unknown (non-Linux, static builds).
 */
export function detectLibc(): Libc {
  if (process.platform !== 'linux') return { family: 'unknown' };
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (header?.glibcVersionRuntime) return { family: 'glibc', version: header.glibcVersionRuntime };
  } catch {
    // a report can be disabled or fail: fall through to the loader probe
  }
  return isMusl() ? { family: 'musl' } : { family: 'unknown' };
}

/** musl's dynamic loader is present (Alpine): what node-gyp-build's own test amounts to, without a process report. */
export function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return existsSync(`/lib/ld-musl-${arch}.so.1`);
}

function libcText(libc: Libc): string {
  if (libc.family === 'glibc') return `glibc ${libc.version}`;
  return libc.family === 'musl' ? 'musl' : 'libc unknown';
}

/**
 * The prebuilt binaries this version ships (see README "Install"): the linux-x64 binary is linked
 * against glibc 2.31 with libstdc++ inside it and asks for no symbol version above GLIBC_2.28, Node
 * 20's own floor (native/compat/glibc-floor.cc; test/portability/run.mjs checks and runs it on 2.31).
 */
export const PREBUILT_PLATFORMS = 'linux-x64 with glibc 2.28+ (Debian 10+, Ubuntu 20.04+, RHEL 8+, Amazon Linux 2023, Fedora 29+), any libstdc++';

/** The oldest glibc the linux-x64 prebuilt binary loads on. */
export const PREBUILT_GLIBC_FLOOR = '2.28';

function olderThan(version: string, floor: string): boolean {
  const a = version.split('.').map(Number);
  const b = floor.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  }
  return false;
}

/**
 * The message of ERR_KILN_NATIVE_LOAD. `attempts` in the order they were made; `root` is the
 * package folder (where `npm rebuild` builds).
 */
export function nativeLoadMessage(attempts: readonly LoadAttempt[], root: string, libc: Libc = detectLibc()): string {
  const platform = `${process.platform}-${process.arch}`;
  const lines = [
    `Could not load Kiln's native addon (${PACKAGE_NAME}, in ${root}).`,
    `Detected: ${platform}, ${libcText(libc)}, Node ${process.version} (Node-API ${process.versions.napi}, ABI ${process.versions.modules}).`,
    'Tried:',
    ...attempts.map((a, i) => `  ${i + 1}. ${a.kind}${a.path ? ` ${a.path}` : ''}: ${a.error.trim().replace(/\n\s*/g, ' ')}`),
    `Prebuilt binaries ship for ${PREBUILT_PLATFORMS}; other platforms build from source at install.`,
  ];
  if (libc.family === 'musl') {
    lines.push(
      'This is a musl system (Alpine): the linux-x64 prebuilt binary needs glibc and is not used here. ' +
        'Build from source (apk add build-base python3), or run on a glibc image (node:20-bookworm-slim).',
    );
  }
  if (libc.family === 'glibc' && libc.version && olderThan(libc.version, PREBUILT_GLIBC_FLOOR)) {
    lines.push(`This glibc (${libc.version}) is older than the ${PREBUILT_GLIBC_FLOOR} the prebuilt binary needs: build from source.`);
  }
  lines.push(
    'To build from source (needs python3, make and a C++17 compiler: apt-get install python3 make g++):',
    `  npm install-scripts approve ${PACKAGE_NAME}   # npm 11 runs no dependency install script until approved`,
    `  npm rebuild ${PACKAGE_NAME}                   # runs its install script, node-gyp-build: it compiles when no prebuilt binary loads`,
  );
  return lines.join('\n');
}
