/**
 * renderReport: a run record as one self-contained HTML page. Everything is inside the file (CSS,
 * Chart.js, the data, the script that draws), and a Content-Security-Policy forbids the page any
 * request, so it opens offline and can be mailed or attached to a CI run as is.
 */
import type { RunRecord } from '../compress/record.js';
import { buildPageModel } from './build-page-model.js';
import { chartLibrarySource, inlineScript } from './chart-library.js';
import { checkRunRecord } from './check-record.js';
import { PAGE_SCRIPT } from './page-script.js';
import { PAGE_STYLE } from './page-style.js';

/**
 * JSON that is safe as the text of a <script type="application/json">: every '<' is written as
 * \u003c, so no string from the record can close the element or open a comment; the page reads it
 * back unchanged with JSON.parse. U+2028/2029 are escaped too, for tools that read it as JS.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** No network at all (default-src 'none'): only the page's own inline scripts and styles run. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'";

/**
 * Renders a compress run record as one self-contained HTML file (no network request: Chart.js, the
 * CSS and the data are inlined). The page shows the run's result, per-stage accuracy, size and
 * latency (Kiln vs ONNX Runtime), training curves, the sensitivity sweep and the output model's
 * layers and confusion matrix; parts the record lacks are left out.
 *
 * @param record a run record as `kiln compress` writes it (see {@link readRunRecord} to read one)
 * @returns the HTML text of the page
 * @throws TypeError/RangeError ERR_KILN_INVALID_ARG when `record` is not a run record of this
 *   version (the message names the first bad field)
 */
export async function renderReport(record: RunRecord): Promise<string> {
  const model = buildPageModel(checkRunRecord(record));
  const chartJs = await chartLibrarySource();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Kiln ${escapeAttribute(record.kiln)}">
<title>Kiln report</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main id="report"></main>
<script type="application/json" id="report-data">${scriptJson(model)}</script>
<script>${chartJs}</script>
<script>${inlineScript(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}

/** Text safe inside a double-quoted attribute. */
function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
