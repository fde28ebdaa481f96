/**
 * The server's Prometheus metrics, through prom-client, in a registry of their own (so several
 * servers, or an application's own metrics, can live in one process): requests by route and
 * status code, request latency, micro-batch sizes and run times (fed by the session's `onBatch`),
 * queue depth, in-flight requests and scratch memory held read when scraped, and prom-client's default process metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a micro-batching session reports for each merged run (`batching.onBatch`). */
export interface BatchReport {
  /** Images in the merged run. */
  size: number;
  /** Requests merged into it, when reported. */
  requests?: number;
  /** Requests still queued when it settled (the backlog). */
  queued: number;
  /** How long its oldest request waited, in ms, when reported. */
  waitMs?: number;
  /** Time the merged run took, in ms. */
  runMs: number;
}

/** Queue depth sources, read at scrape time. */
export interface QueueProbe {
  /** Requests waiting to be merged into a batch (0 without batching). */
  readonly queuedRuns?: number;
  /** Runs started and not yet finished. */
  readonly pendingRuns: number;
  /** Kiln sessions: the scratch arenas held (`SessionInfo.arenaBytesHeld`). */
  info?(): { arenaBytesHeld: number };
}

function arenaBytesHeld(probe: QueueProbe): number {
  try {
    return probe.info?.().arenaBytesHeld ?? 0;
  } catch {
    return 0;  // a session with symbolic sizes that has not run yet: nothing compiled, nothing held
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/**
 * Finer than LATENCY_BUCKETS, about 1.5x apart from 0.1 ms to 1 s: a micro-batch of a small model
 * runs in a fraction of a millisecond, and the batching bound (maxDelayMs + 2 runs) is judged on
 * this histogram's p99 (with 100 and 250 ms neighbours, MobileNetV2's p99 of 128 ms against a bound
 * of 147 read as "at most 250").
 */
export const MODEL_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
  0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5,
];

export class ServeMetrics {
  /** The registry `GET /metrics` renders. */
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'code'>;
  private readonly latency: Histogram<'route'>;
  private readonly batchSize: Histogram;
  private readonly batchRequests: Histogram;
  private readonly batchRun: Histogram;
  private readonly batchWait: Histogram;
  private readonly model: Histogram;
  private readonly inFlight: Gauge;
  private probe: QueueProbe | undefined;
  private inFlightCount = 0;

  constructor() {
    const registers = [this.registry];
    const probeOf = (): QueueProbe => this.probe ?? { pendingRuns: 0 };
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'kiln_http_requests_total', help: 'HTTP requests answered, by route and status code', labelNames: ['route', 'code'], registers });
    this.latency = new Histogram({ name: 'kiln_http_request_duration_seconds', help: 'Time from a request\'s arrival to its response\'s end, by route', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.batchSize = new Histogram({ name: 'kiln_batch_size', help: 'Images per run of the model (micro-batches merge several requests)', buckets: BATCH_BUCKETS, registers });
    this.batchRequests = new Histogram({ name: 'kiln_batch_requests', help: 'Requests merged into each micro-batch', buckets: BATCH_BUCKETS, registers });
    this.batchRun = new Histogram({ name: 'kiln_batch_run_seconds', help: 'Run time of each micro-batch', buckets: LATENCY_BUCKETS, registers });
    this.batchWait = new Histogram({ name: 'kiln_batch_wait_seconds', help: 'How long the oldest request of each micro-batch waited in the queue', buckets: LATENCY_BUCKETS, registers });
    this.model = new Histogram({ name: 'kiln_model_duration_seconds', help: 'Time from an infer request handed to the model to its outputs: its wait in the micro-batch queue and its batch\'s run', buckets: MODEL_BUCKETS, registers });
    this.inFlight = new Gauge({ name: 'kiln_inflight_requests', help: 'Requests being read, run or answered', registers, collect: () => this.inFlight.set(this.inFlightCount) });
    new Gauge({ name: 'kiln_queue_depth', help: 'Requests waiting to be merged into a micro-batch', registers, collect: function () { this.set(probeOf().queuedRuns ?? 0); } });
    new Gauge({ name: 'kiln_pending_runs', help: 'Model runs started and not finished', registers, collect: function () { this.set(probeOf().pendingRuns); } });
    new Gauge({ name: 'kiln_arena_bytes_held', help: 'Scratch memory the model keeps between runs (one arena per run once in flight at the same time, sized by the largest batch)', registers, collect: function () { this.set(arenaBytesHeld(probeOf())); } });
  }

  /** Pass as the session's `batching.onBatch`: records each merged run. */
  readonly onBatch = (b: BatchReport): void => {
    this.batchSize.observe(b.size);
    if (b.requests !== undefined) this.batchRequests.observe(b.requests);
    if (b.waitMs !== undefined) this.batchWait.observe(b.waitMs / 1000);
    this.batchRun.observe(b.runMs / 1000);
  };

  /** Times one request's model call (queue wait and run): call the returned function when it settles. */
  beginModel(): () => void {
    const end = this.model.startTimer();
    return () => {
      end();
    };
  }

  /** Where the queue gauges read from (the served model). */
  watch(probe: QueueProbe | undefined): void {
    this.probe = probe;
  }

  /** A request began; the returned function ends it with its route and status code. */
  begin(): (route: string, code: string) => void {
    this.inFlightCount++;
    const start = process.hrtime.bigint();
    let done = false;
    return (route, code) => {
      if (done) return;
      done = true;
      this.inFlightCount--;
      this.requests.inc({ route, code });
      this.latency.observe({ route }, Number(process.hrtime.bigint() - start) / 1e9);
    };
  }

  /** Requests being handled now. */
  get inFlightRequests(): number {
    return this.inFlightCount;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
