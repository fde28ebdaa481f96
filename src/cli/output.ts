/**
 * How CLI commands talk: human lines (or a progress bar on stderr when it is a TTY) and, with
 * --json, one JSON object as the last line of stdout.
 */
import cliProgress from 'cli-progress';

export interface OutputOptions {
  json?: boolean;
}

/** Where progress bars draw; tests point it at a fake terminal (see {@link setProgressStream}). */
let progressStream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr;

/** Draws progress bars on `stream` (a TTY-like stream) instead of stderr; undefined restores stderr. For tests. */
export function setProgressStream(stream: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined): void {
  progressStream = stream ?? process.stderr;
}

export class Output {
  readonly json: boolean;

  constructor(options: OutputOptions) {
    this.json = Boolean(options.json);
  }

  /** A human-readable line: stdout normally, stderr in --json mode so stdout stays machine-readable. */
  line(text: string): void {
    (this.json ? process.stderr : process.stdout).write(`${text}\n`);
  }

  /** A warning, always on stderr. */
  warn(text: string): void {
    process.stderr.write(`kiln: warning: ${text}\n`);
  }

  /** The final result: JSON as the last stdout line in --json mode, else `render(result)`. */
  result(result: object, render: (r: object) => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${render(result)}\n`);
  }

  /**
   * A progress reporter: a cli-progress bar on stderr when it is a TTY and --json is off, otherwise
   * nothing per step (callers print plain lines at coarser points, e.g. once per epoch). `payload`
   * gives the format's own placeholders their first values, so the first frame shows no `{name}`.
   */
  progress(total: number, format: string, payload: Record<string, unknown> = {}): Progress {
    if (this.json || !progressStream.isTTY) return { update: () => undefined, stop: () => undefined };
    const bar = new cliProgress.SingleBar(
      { format, hideCursor: true, clearOnComplete: true, etaBuffer: 50, stream: progressStream as NodeJS.WritableStream },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, payload);
    return {
      update: (value, update) => bar.update(value, update ?? {}),
      stop: () => bar.stop(),
    };
  }
}

export interface Progress {
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

/** Formats a fraction as a percentage with two decimals. */
export function percent(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}
