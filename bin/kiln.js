#!/usr/bin/env node
// The `kiln` command. The CLI itself lives in src/cli (compiled to dist/src/cli).
import { main } from '../dist/src/cli/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`kiln: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
