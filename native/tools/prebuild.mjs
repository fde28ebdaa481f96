#!/usr/bin/env node
// `npm run prebuild`: the prebuilt binary, prebuilds/linux-x64/@kiln-ml+kiln.glibc.node.
// prebuildify (Node-API, stripped, tagged glibc) runs node-gyp with KILN_SYSROOT set, so binding.gyp
// links the addon against Debian 11's glibc (native/tools/glibc-sysroot.mjs) with libstdc++ inside
// it: the binary then loads on glibc 2.28+ with any libstdc++, instead of needing the packing
// machine's own. KILN_SYSROOT=<folder> uses a sysroot made before; the packing machine needs
// apt-get to make one (a Debian or Ubuntu machine, reaching a Debian mirror once).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSysroot } from './glibc-sysroot.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`prebuild: Kiln ships prebuilt binaries for linux-x64 only; this is ${process.platform}-${process.arch} (a source build: npx node-gyp rebuild)`);
  process.exit(1);
}
let sysroot = process.env.KILN_SYSROOT;
try {
  sysroot = sysroot ? resolve(sysroot) : ensureSysroot();
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
console.error(`prebuild: linking against the glibc sysroot ${sysroot}`);
const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js', { paths: [ROOT] });
const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, KILN_SYSROOT: sysroot } });
process.exit(r.status ?? 1);
