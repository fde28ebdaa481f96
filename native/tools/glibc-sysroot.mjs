#!/usr/bin/env node
// Prepares the sysroot the prebuilt binary is linked against: Debian 11's glibc 2.31 (its headers,
// crt files and shared libraries), so the binary asks for no symbol version newer than the glibc
// it was linked with, whatever glibc the packing machine runs. native/compat/glibc-floor.cc and the
// `kiln_sysroot` settings of binding.gyp take it down to glibc 2.28, Node 20's own floor.
//
// The packages come from the Debian archive through apt (`apt-get download`, with lists and cache
// of their own under the sysroot folder: nothing is installed, no root needed), checked against
// the system's Debian archive keyring. libstdc++6 and libgcc-s1 are there for
// test/portability/run.mjs, which runs Node itself on this glibc (the addon links neither: it
// carries GCC's libstdc++ statically).
//
//   node native/tools/glibc-sysroot.mjs [folder]   prints the sysroot's path (made once, then reused)
// Environment: KILN_SYSROOT_MIRROR (default: the system's Debian mirror, else deb.debian.org).
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SYSROOT_SUITE = 'bullseye';
export const SYSROOT_GLIBC = '2.31';
const PACKAGES = ['libc6', 'libc6-dev', 'linux-libc-dev', 'libstdc++6', 'libgcc-s1'];
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** Bumped when the sysroot's contents change, so an old one is made again. */
const LAYOUT = 1;

export function defaultSysrootDir() {
  return join(ROOT, 'build-sysroot', `debian-${SYSROOT_SUITE}-amd64`);
}

function run(command, args, what, cwd = undefined) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error || r.status !== 0) {
    throw new Error(`glibc-sysroot: ${what} failed (${command} ${args.join(' ')}): ${r.error?.message ?? `exit ${r.status}`}\n${(r.stderr ?? '').slice(-2000)}`);
  }
  return r.stdout;
}

/** The Debian mirror apt already uses here, so a machine that reaches only its mirror works. */
function mirror() {
  if (process.env.KILN_SYSROOT_MIRROR) return process.env.KILN_SYSROOT_MIRROR;
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = text.match(/^URIs:\s*(\S+\/debian)\s*$/m);
    if (deb822) return deb822[1];
    const oneLine = text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m);
    if (oneLine) return oneLine[1];
  }
  return 'http://deb.debian.org/debian';
}

/** Absolute links (lib64/ld-linux-x86-64.so.2 -> /lib/...) would leave the sysroot: make them relative. */
function relinkInside(sysroot, dir = sysroot) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) {
      const target = readlinkSync(path);
      if (target.startsWith('/')) {
        rmSync(path);
        symlinkSync(relative(dirname(path), join(sysroot, target)), path);
      }
    } else if (entry.isDirectory()) {
      relinkInside(sysroot, path);
    }
  }
}

/** Makes (or finds) the sysroot and returns its absolute path. Throws with the reason when it cannot. */
export function ensureSysroot(dir = defaultSysrootDir()) {
  const stamp = join(dir, '.kiln-sysroot.json');
  if (existsSync(stamp)) {
    try {
      if (JSON.parse(readFileSync(stamp, 'utf8')).layout === LAYOUT) return dir;
    } catch {
      // a torn stamp: make it again
    }
  }
  if (spawnSync('apt-get', ['--version']).status !== 0 || spawnSync('dpkg-deb', ['--version']).status !== 0) {
    throw new Error('glibc-sysroot: apt-get and dpkg-deb are needed to fetch Debian 11\'s glibc for the prebuilt binary (a Debian or Ubuntu machine); or set KILN_SYSROOT to a prepared sysroot');
  }
  rmSync(dir, { recursive: true, force: true });
  const apt = join(dir, '.apt');
  mkdirSync(join(apt, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(apt, 'archives', 'partial'), { recursive: true });
  const signedBy = existsSync(KEYRING) ? `signed-by=${KEYRING}` : 'trusted=yes';
  writeFileSync(join(apt, 'sources.list'), `deb [${signedBy}] ${mirror()} ${SYSROOT_SUITE} main\n`);
  const options = [
    '-o', `Dir::Etc::sourcelist=${join(apt, 'sources.list')}`, '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(apt, 'lists')}`, '-o', 'Dir::State::status=/dev/null',
    '-o', `Dir::Cache=${join(apt, 'cache')}`, '-o', `Dir::Cache::archives=${join(apt, 'archives')}`,
    '-o', 'APT::Get::List-Cleanup=0', '-o', 'Debug::NoLocking=1', '-o', 'APT::Architecture=amd64',
  ];
  run('apt-get', [...options, 'update'], `apt-get update for Debian ${SYSROOT_SUITE}`);
  const debs = join(apt, 'debs');
  mkdirSync(debs);
  run('apt-get', [...options, 'download', ...PACKAGES.map((p) => `${p}:amd64`)], `apt-get download ${PACKAGES.join(' ')}`, debs);
  const files = readdirSync(debs).filter((f) => f.endsWith('.deb'));
  for (const pkg of PACKAGES) {
    if (!files.some((f) => f.startsWith(`${pkg}_`))) throw new Error(`glibc-sysroot: ${pkg} was not downloaded (got ${files.join(', ')})`);
  }
  for (const file of files) run('dpkg-deb', ['-x', join(debs, file), dir], `dpkg-deb -x ${file}`);
  relinkInside(dir);
  if (!lstatSync(join(dir, 'lib64', 'ld-linux-x86-64.so.2')).isSymbolicLink()) throw new Error('glibc-sysroot: the sysroot has no lib64/ld-linux-x86-64.so.2');
  rmSync(apt, { recursive: true, force: true });
  writeFileSync(stamp, JSON.stringify({ layout: LAYOUT, suite: SYSROOT_SUITE, glibc: SYSROOT_GLIBC, packages: files.sort() }, null, 2) + '\n');
  return dir;
}

/** The glibc loader and library path that run a program (Node) on the sysroot's glibc instead of the system's. */
export function sysrootRunner(sysroot) {
  const lib = join(sysroot, 'lib', 'x86_64-linux-gnu');
  return { loader: join(sysroot, 'lib64', 'ld-linux-x86-64.so.2'), libraryPath: `${lib}:${join(sysroot, 'usr', 'lib', 'x86_64-linux-gnu')}` };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    console.log(ensureSysroot(process.argv[2] ? resolve(process.argv[2]) : undefined));
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
