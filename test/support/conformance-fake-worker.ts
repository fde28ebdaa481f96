// A conformance worker for test/unit/conformance-runner.test.ts: runs tests as the real worker
// does, except that a test named '*abort*' kills the process natively and one named '*hang*'
// never returns, so the runner's crash and timeout handling can be checked without a Kiln bug.
import { runNodeTest } from '../../bench/conformance/run-test.js';
import { serveTests } from '../../bench/conformance/serve.js';

serveTests(async (dir, name) => {
  if (name.includes('abort')) process.abort();
  if (name.includes('hang')) for (;;);
  return runNodeTest(dir);
});
