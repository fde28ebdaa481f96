/** Thread counts given on the command line. */
import { availableParallelism } from 'node:os';

/**
 * A thread count for the kernels: more threads than the machine's hardware threads only add
 * contention (on 2 cores, --threads 1000 ran 4x slower), so larger values are lowered to
 * os.availableParallelism() with a warning on stderr.
 */
export function capThreads(option: string, threads: number): number {
  const most = availableParallelism();
  if (threads <= most) return threads;
  process.stderr.write(`kiln: warning: ${option} ${threads} is more than the ${most} hardware threads of this machine; using ${most}\n`);
  return most;
}
