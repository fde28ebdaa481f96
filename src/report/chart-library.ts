/**
 * Chart.js's UMD build, read from the installed package to be inlined in the page: the report must
 * open offline, so the library travels inside the file instead of coming from a CDN. Its licence
 * banner stays at the top of the script (MIT asks for it).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';

let cached: Promise<string> | undefined;

/**
 * The source of chart.umd.min.js. chart.js's `exports` map does not expose its dist files, so the
 * path is found next to the entry point `require` resolves (dist/chart.cjs).
 */
export function chartLibrarySource(): Promise<string> {
  cached ??= (async () => {
    let entry: string;
    try {
      entry = createRequire(import.meta.url).resolve('chart.js');
    } catch (err) {
      throw new KilnError(ErrorCode.FILE_NOT_FOUND, 'Expected the chart.js package (a dependency of kiln) but it is not installed: run npm install', { cause: err });
    }
    const source = await readFile(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
    return inlineScript(source);
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}

/**
 * Script text safe inside <script>...</script>: an HTML parser ends the element at the first
 * "</script" whatever the JS around it, and "<!--" can switch it to an escaped state; "<\/" and
 * "<\!" mean the same in JS strings and regular expressions.
 */
export function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}
