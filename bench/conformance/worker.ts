/**
 * Conformance worker entry: a child process of the runner that runs node tests through Kiln on
 * request. A native crash kills only this process; the runner counts it and starts another.
 */
import { runNodeTest } from './run-test.js';
import { serveTests } from './serve.js';

serveTests((dir) => runNodeTest(dir));
