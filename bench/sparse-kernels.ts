/**
 * Sparse kernels alone, per layer (issue 12): the native micro-benchmarks native/bench/sparse-bench.cc
 * (fp32: direct sparse conv with the pool fused vs our dense direct kernel and Winograd; SpMM vs
 * sgemm for fc1) and native/bench/s8-sparse-bench.cc (int8 1x4-block / unstructured vs our dense
 * int8 conv + pool and GEMM), built with CMake into build-native/ (the directory `npm test` uses)
 * from the same sources as the addon, run on one thread, their tables parsed into the report.
 * Dense and sparse run alternately in the same process; every ratio comes from the same rounds.
 * The session-level table (sparse-layers.ts) adds the steps around each layer.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import type { Report } from './report.js';

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error) throw new Error(`could not run ${command}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.status}: ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

/** Rows of sparse-bench's tables: one per layer, pattern and sparsity. */
export function parseF32SparseBench(text: string): (string | number)[][] {
  const rows: (string | number)[][] = [];
  let layer = '';
  let sparsities: number[] = [];
  for (const line of text.split('\n')) {
    const title = /^SeedCNN (\w+) (conv2|fc1)/.exec(line);
    if (title) {
      layer = `${title[1]} ${title[2]}`;
      continue;
    }
    if (/^\s+zeros\s+\|/.test(line)) {
      sparsities = [...line.matchAll(/(\d+)%:/g)].map((m) => Number(m[1]) / 100);
      continue;
    }
    const row = /^\s+(unstructured|4x1|8x1)\s+\|(.*)$/.exec(line);
    if (!row || !layer) continue;
    row[2].split('|').forEach((cell, i) => {
      const v = cell.trim().split(/\s+/).map(Number);
      if (v.length === 5) rows.push([layer, row[1], sparsities[i], v[0], v[1], v[2], v[3], v[4]]);
      else if (v.length === 3) rows.push([layer, row[1], sparsities[i], v[0], v[1], 'n/a', v[2], v[2]]);
    });
  }
  return rows;
}

/** Rows of s8-sparse-bench's lines. */
export function parseS8SparseBench(text: string): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const re = /^(\w+ (?:conv2|batch \d+))\s+(1x4|unstructured)\s+(\d+)%\s+blocks kept\s+([\d.]+)%\s+dense\s+([\d.]+) us\s+sparse\s+([\d.]+) us\s+x dense\s+([\d.]+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line.trim());
    if (!m) continue;
    const layer = m[1].startsWith('batch') || m[1].startsWith('fc1') ? `fc1 ${m[1].replace('fc1 ', '')}` : m[1];
    rows.push([layer, m[2], Number(m[3]) / 100, Number((Number(m[4]) / 100).toFixed(3)), Number(m[6]), Number(m[5]), Number(m[7])]);
  }
  return rows;
}

/** Kernel-level tables of the 'sparse' section of `npm run bench`. */
export async function benchSparseKernels(report: Report, root: string): Promise<void> {
  const build = join(root, 'build-native');
  let f32: string, s8: string;
  try {
    run('cmake', ['-S', root, '-B', build, '-DKILN_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release'], root);
    run('cmake', ['--build', build, '--target', 'sparse-bench', 's8-sparse-bench', '--parallel', String(availableParallelism())], root);
    f32 = run(join(build, 'sparse-bench'), [], root);
    s8 = run(join(build, 's8-sparse-bench'), [], root);
  } catch (err) {
    process.stdout.write(`\nsparse kernel micro-benchmarks skipped: ${(err as Error).message}\n`);
    return;
  }
  report.add({
    title: 'fp32 sparse kernels alone, 1 thread: direct sparse conv (pool fused) and SpMM, SeedCNN layers at batch 64',
    baseline: 'our dense kernels in the same process, alternating rounds, best thread CPU time: dense direct conv (+ fused pool) and Winograd for conv2, sgemm for fc1; x best = the faster dense one / sparse',
    columns: ['layer', 'pattern', 'sparsity', 'sparse us', 'dense direct us', 'Winograd us', 'x dense direct', 'x best dense'],
    rows: parseF32SparseBench(f32),
    notes: [`${f32.split('\n')[0]} (native/bench/sparse-bench.cc; conv times per image, fc1 per call)`],
  });
  report.add({
    title: 'int8 sparse kernels alone, 1 thread: 1x4 blocks (one vpdpbusd word each), SeedCNN layers',
    baseline: 'our dense int8 kernels in the same process (what the plan step runs: S8Conv2dPlan + uint8 max pool; s8gemm_requantize), alternating, best thread CPU time; results equal bit for bit (native/test/s8-sparse-test.cc)',
    columns: ['layer', 'zeros', 'sparsity', '1x4 blocks kept', 'sparse us', 'dense us', 'x dense'],
    rows: parseS8SparseBench(s8),
    notes: [`${s8.split('\n')[0]} (native/bench/s8-sparse-bench.cc; conv2 at batch 64; unstructured zeros are packed into 1x4 blocks too, a block kept when any of its 4 weights is non-zero)`],
  });
}
