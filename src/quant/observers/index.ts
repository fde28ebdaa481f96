/** Calibration observers: collect activation statistics and turn them into int8 quantization ranges. */
import { KilnRangeError } from '../../errors.js';
import { oneOf, string } from '../../validate.js';
import { EntropyObserver, type EntropyObserverOptions } from './entropy.js';
import { MinMaxObserver, type MinMaxObserverOptions } from './minmax.js';
import { MseObserver, type MseObserverOptions } from './mse.js';
import type { Observer } from './observer.js';
import { PercentileObserver, type PercentileObserverOptions } from './percentile.js';

export { Observer, batchRange } from './observer.js';
export { MinMaxObserver, type MinMaxObserverOptions } from './minmax.js';
export { PercentileObserver, type PercentileObserverOptions } from './percentile.js';
export { EntropyObserver, klThreshold, type EntropyObserverOptions } from './entropy.js';
export { MseObserver, candidateRange, expectedSquaredError, type MseObserverOptions } from './mse.js';
export { Histogram, type HistogramMode, type HistogramSnapshot } from './histogram.js';
export { sqnr } from './metrics.js';

/** Calibration methods by name (the CLI's `--calibration` values). */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';

export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy', 'mse'];

export interface ObserverOptionsByMethod {
  minmax: MinMaxObserverOptions;
  percentile: PercentileObserverOptions;
  entropy: EntropyObserverOptions;
  mse: MseObserverOptions;
}

/** An observer for `method`, calibrating the tensor `name`. */
export function createObserver<M extends CalibrationMethod>(method: M, name: string, options?: ObserverOptionsByMethod[M]): Observer {
  string('name', name);
  switch (oneOf('method', method, CALIBRATION_METHODS)) {
    case 'minmax':
      return new MinMaxObserver(name, options as MinMaxObserverOptions);
    case 'percentile':
      return new PercentileObserver(name, options as PercentileObserverOptions);
    case 'entropy':
      return new EntropyObserver(name, options as EntropyObserverOptions);
    case 'mse':
      return new MseObserver(name, options as MseObserverOptions);
    default:
      throw new KilnRangeError(`Expected a calibration method for method but received ${String(method)}`);
  }
}
