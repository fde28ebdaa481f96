/** The error function, for Gelu: the int8 reference interpreter and Gelu's int8 lookup table. */

/** erf in float64: its Taylor series below 2, the continued fraction of erfc above. */
export function erf(v: number): number {
  const a = Math.abs(v);
  if (a >= 2) {
    let k = a;
    for (let n = 80; n >= 1; n--) k = a + n / 2 / k;
    return Math.sign(v) * (1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * k));
  }
  let term = v;
  let sum = v;
  for (let n = 1; n < 100 && Math.abs(term) > 1e-17; n++) {
    term *= (-v * v) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
