/**
 * The HTTP floor of the serve bench: a `node:http` server that runs no model. It reads each request
 * body to its end and answers with a reply recorded from `kiln serve` for the same request (same
 * bytes, same headers), so under the same load it does the least any Node server must: parse the
 * request, read the body, write the response. Its requests/s and p99 bound what a server on one
 * event loop can reach on this machine whatever its model does, which is what the p99
 * bound (maxDelayMs + 2 batch runs) is judged against for a model as small as SeedCNN.
 *
 * Usage (bench/serve.ts starts it): node http-floor.js <reply file> <inference-header-content-length>
 * It prints the two lines `kiln serve` prints when it is ready and stops on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const [replyPath, headerLength] = process.argv.slice(2);
if (replyPath === undefined || headerLength === undefined) {
  process.stderr.write('usage: node http-floor.js <reply file> <inference-header-content-length>\n');
  process.exit(2);
}
const reply = readFileSync(replyPath);
const headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength, 'content-length': reply.length };

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(reply);
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`kiln serve: listening on http://127.0.0.1:${port} (HTTP floor)\nkiln serve: ready: model "none" (the HTTP floor: no model runs)\n`);
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
