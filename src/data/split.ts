/** Seeded stratified train/test split of a labelled set. */
import type { Rng } from '../util/rng.js';

/**
 * Splits indices 0..labels.length-1 so each class sends (as near as integers allow) `testFraction`
 * of its members to the test set. Per-class test counts are rounded by largest remainder, so the
 * test set holds exactly round(total * testFraction) indices. Both index lists come back in a
 * random order drawn from `rng`.
 */
export function stratifiedSplit(
  labels: Int32Array,
  numClasses: number,
  testFraction: number,
  rng: Rng,
): { train: Int32Array; test: Int32Array } {
  const members: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) members[labels[i]].push(i);

  const exact = members.map((m) => m.length * testFraction);
  const testCounts = exact.map(Math.floor);
  let missing = Math.round(labels.length * testFraction) - testCounts.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, c) => c).sort((a, b) => exact[b] - Math.floor(exact[b]) - (exact[a] - Math.floor(exact[a])) || a - b);
  for (const c of byRemainder) {
    if (missing <= 0) break;
    if (testCounts[c] < members[c].length) {
      testCounts[c]++;
      missing--;
    }
  }

  const train: number[] = [];
  const test: number[] = [];
  members.forEach((m, c) => {
    rng.shuffle(m);
    test.push(...m.slice(0, testCounts[c]));
    train.push(...m.slice(testCounts[c]));
  });
  return { train: rng.shuffle(Int32Array.from(train)), test: rng.shuffle(Int32Array.from(test)) };
}
