/** Serving a model over HTTP: the server, its metrics and the protocol's types (docs/serving.md). */
export { createServer, SERVE_DEFAULTS } from './server.js';
export type { KilnServer, ServableModel, ServeOptions } from './server.js';
export { ServeMetrics } from './metrics.js';
export type { QueueProbe } from './metrics.js';
export { HttpError } from './protocol.js';
export type { ModelSignature } from './protocol.js';
