#!/usr/bin/env node
// Checks that the addon's baseline code is plain x86-64, on the objects node-gyp linked it from
// (build/Release/obj.target; the shipped binary is stripped, so its functions have no names):
//  1. no object of the baseline and addon sources (target `kiln`) holds a VEX or EVEX instruction
//     (an AVX, AVX2, FMA, F16C or AVX-512 one: a `v` mnemonic, a ymm/zmm/mask register);
//  2. no weak (inline or template) function is defined both in an ISA group's objects and in
//     objects built with other flags: the linker keeps one copy of a weak symbol, and may keep the
//     AVX-512 one for a baseline or AVX2 caller (the ODR trap of per-ISA translation units);
//  3. each ISA group does hold such instructions (the check sees what it looks for).
// Usage: node scripts/check-baseline-isa.mjs [build/Release]. Prints one JSON summary line; exits 1
// with the offending objects, functions and instructions listed.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const release = resolve(process.argv[2] ?? 'build/Release');
const GROUPS = { baseline: 'kiln', avx2: 'kiln_avx2', avx512: 'kiln_avx512', avx512vnni: 'kiln_avx512vnni' };

function objects(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(objects(path));
    else if (name.endsWith('.o')) out.push(path);
  }
  return out;
}

function run(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) {
    console.error(`check-baseline-isa: ${command} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
    process.exit(2);
  }
  return r.stdout;
}

// AT&T syntax: VEX/EVEX instructions are the `v` mnemonics (vmovups, vfmadd231ps, vzeroupper,
// vpbroadcastd, ...) and whatever names a ymm, zmm or opmask register. No baseline instruction
// starts with `v` except verr/verw (segment checks, never emitted by a compiler).
const VEX = /^\s*[0-9a-f]+:\s+(v(?!err|erw)[a-z0-9]+)\b|%[yz]mm\d|%k[0-7]\b/;

/** Per object: { instructions: count, examples: ['function: instruction'] }. */
function vexInstructions(file) {
  const text = run('objdump', ['-d', '--no-show-raw-insn', '-C', file]);
  let fn = '?';
  let count = 0;
  const examples = [];
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) fn = head[1];
    else if (VEX.test(line)) {
      count++;
      if (examples.length < 5) examples.push(`${fn}: ${line.trim().replace(/^[0-9a-f]+:\s+/, '')}`);
    }
  }
  return { count, examples };
}

/** Weak functions (nm type W) each object of a group defines, mangled. */
function weakFunctions(files) {
  const names = new Map();
  for (const file of files) {
    for (const line of run('nm', ['--defined-only', file]).split('\n')) {
      const m = /^[0-9a-f]+ W (\S+)$/.exec(line);
      if (m) names.set(m[1], relative(release, file));
    }
  }
  return names;
}

const failures = [];
const summary = { release, groups: {} };
const weak = {};
const definedAnywhere = {};
for (const [group, target] of Object.entries(GROUPS)) {
  const files = objects(join(release, 'obj.target', target));
  if (files.length === 0) failures.push(`no objects under obj.target/${target}: build the addon first (npx node-gyp rebuild)`);
  let vex = 0;
  for (const file of files) {
    const found = vexInstructions(file);
    vex += found.count;
    if (group === 'baseline' && found.count > 0) {
      failures.push(`${relative(release, file)} (baseline flags) holds ${found.count} AVX instructions, e.g.\n      ${found.examples.join('\n      ')}`);
    }
  }
  if (group !== 'baseline' && files.length > 0 && vex === 0) failures.push(`the ${group} objects hold no AVX instruction: the check is blind`);
  weak[group] = weakFunctions(files);
  const all = new Map();
  for (const file of files) {
    for (const line of run('nm', ['--defined-only', file]).split('\n')) {
      const m = /^[0-9a-f]+ [TtWi] (\S+)$/.exec(line);
      if (m) all.set(m[1], relative(release, file));
    }
  }
  definedAnywhere[group] = all;
  summary.groups[group] = { objects: files.length, avxInstructions: vex, weakFunctions: weak[group].size };
}
for (const group of ['avx2', 'avx512', 'avx512vnni']) {
  for (const [name, file] of weak[group]) {
    for (const other of Object.keys(GROUPS)) {
      if (other === group || !definedAnywhere[other].has(name)) continue;
      failures.push(`weak function ${name} is defined in ${file} (${group} flags) and in ${definedAnywhere[other].get(name)} (${other} flags): the linker may keep either copy`);
    }
  }
}
console.log(JSON.stringify({ ok: failures.length === 0, ...summary }));
if (failures.length > 0) {
  console.error(`check-baseline-isa: ${failures.length} problem(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
