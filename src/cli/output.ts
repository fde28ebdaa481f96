/**
 * How CLI commands talk: human lines (or a progress bar on a TTY) and, with --json, one JSON object
 * as the last line of stdout.
 */
import cliProgress from 'cli-progress';

export interface OutputOptions {
  json?: boolean;
}

export class Output {
  readonly json: boolean;
  private readonly tty: boolean;

  constructor(options: OutputOptions) {
    this.json = Boolean(options.json);
    this.tty = Boolean(process.stdout.isTTY) && !this.json;
  }

  /** A human-readable line: stdout normally, stderr in --json mode so stdout stays machine-readable. */
  line(text: string): void {
    (this.json ? process.stderr : process.stdout).write(`${text}\n`);
  }

  /** The final result: JSON as the last stdout line in --json mode, else `render(result)`. */
  result(result: object, render: (r: object) => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${render(result)}\n`);
  }

  /**
   * A progress reporter: a cli-progress bar on a TTY, otherwise nothing per step (callers print
   * plain lines at coarser points, e.g. once per epoch).
   */
  progress(total: number, format: string): Progress {
    if (!this.tty) return { update: () => undefined, stop: () => undefined };
    const bar = new cliProgress.SingleBar(
      { format, hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      update: (value, payload) => bar.update(value, payload),
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
