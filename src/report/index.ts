/** `kiln report`'s library side: read a compress run record, render it as one offline HTML page. */
export { renderReport } from './render.js';
export { readRunRecord } from './read-record.js';
export { checkRunRecord } from './check-record.js';
