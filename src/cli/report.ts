/** `kiln report`: a compress run record (run.json) as one self-contained HTML page with charts. */
import { writeFile } from 'node:fs/promises';

import { readRunRecord, renderReport } from '../report/index.js';
import { checkOutputFile } from '../util/files.js';
import { bytes } from '../report/format.js';
import { Output } from './output.js';

export interface ReportCommandOptions {
  out: string;
  json?: boolean;
}

export async function reportCommand(recordPath: string, opts: ReportCommandOptions): Promise<void> {
  const out = new Output(opts);
  await checkOutputFile(opts.out, '--out');
  const record = await readRunRecord(recordPath);
  const html = await renderReport(record);
  await writeFile(opts.out, html);
  const size = Buffer.byteLength(html);
  out.result(
    { record: recordPath, out: opts.out, bytes: size, stages: record.stages.length, completed: record.result.completed },
    () => `wrote ${opts.out} (${bytes(size)}, ${record.stages.length} stages; opens offline in any browser)`,
  );
}
