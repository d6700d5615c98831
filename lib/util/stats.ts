/**
 * Summary statistics over seeds: mean, sample standard deviation and the 95 % t-interval of a
 * mean (for paired differences between arms).
 *
 * @module
 */

/**
 * Mean and sample standard deviation (n − 1; NaN for fewer than two values).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { meanSd } from "./stats.ts";
 * assert.deepEqual(meanSd([1, 2, 3, 4]), { mean: 2.5, sd: Math.sqrt(5 / 3) });
 * ```
 */
export function meanSd(v: number[]): { mean: number; sd: number } {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = v.length > 1
    ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1))
    : NaN;
  return { mean, sd };
}

// Student's t, 0.975 quantile, for 1 … 30 degrees of freedom (standard tables).
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** The 0.975 quantile of Student's t with `df` degrees of freedom (table to 30, then z + (z³ + z)/(4·df)). */
export function tQuantile975(df: number): number {
  if (!(df >= 1)) throw new RangeError(`t quantile: ${df} degrees of freedom`);
  if (df <= 30) return T975[Math.round(df) - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df);
}

/**
 * The 95 % confidence interval of the mean of `v` (e.g. per-seed paired differences):
 * mean ± t₀.₉₇₅(n − 1)·sd/√n. NaN bounds for fewer than two values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { interval95 } from "./stats.ts";
 * // mean 2, sd 1, n = 3: 2 ± 4.303/√3
 * const { low, high } = interval95([1, 2, 3]);
 * assert.ok(Math.abs(low - (2 - 4.303 / Math.sqrt(3))) < 1e-12);
 * assert.ok(Math.abs(high - (2 + 4.303 / Math.sqrt(3))) < 1e-12);
 * ```
 */
export function interval95(v: number[]): { mean: number; low: number; high: number } {
  const { mean, sd } = meanSd(v);
  if (v.length < 2) return { mean, low: NaN, high: NaN };
  const half = tQuantile975(v.length - 1) * sd / Math.sqrt(v.length);
  return { mean, low: mean - half, high: mean + half };
}
