// Prints one group of native/sources.json, space separated, for binding.gyp's <!@(...) expansion.
const path = require('node:path');
const groups = require(path.join(__dirname, 'sources.json'));
const group = process.argv[2];
if (!Array.isArray(groups[group])) {
  console.error(`native/sources.js: unknown group "${group}"`);
  process.exit(1);
}
console.log(groups[group].join(' '));
