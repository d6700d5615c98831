/**
 * Per-layer top-q % magnitude sparsification of gradient rows (GradNet, spec step 3): in each
 * layer block of a row, the threshold is the (100 − q)th percentile of |g| with linear
 * interpolation (numpy's default `percentile`), and only entries strictly greater are kept.
 *
 * @module
 */

import type { GradientLayout } from "./per_example.ts";
import { loadedNativeLib } from "../backend/select.ts";

/** The k-th smallest value (0-based) of `a`, rearranging `a` (quickselect, Hoare partition). */
function kthSmallest(a: Float32Array, k: number, lo = 0, hi = a.length - 1): number {
  while (hi > lo) {
    // median of three pivot
    const mid = (lo + hi) >>> 1;
    let x = a[lo], y = a[mid], z = a[hi];
    if (x > y) [x, y] = [y, x];
    if (y > z) [y, z] = [z, y];
    if (x > y) [x, y] = [y, x];
    const pivot = y;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/**
 * numpy.percentile(values, p) with linear interpolation. `scratch` (same length) is overwritten.
 */
export function percentile(values: Float32Array, p: number, scratch?: Float32Array): number {
  const n = values.length;
  if (n === 0) throw new RangeError("percentile of an empty array");
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} outside [0, 100]`);
  const a = scratch ?? new Float32Array(n);
  a.set(values);
  const pos = (p / 100) * (n - 1);
  const lo = Math.floor(pos), frac = pos - lo;
  const vLo = kthSmallest(a, lo);
  if (frac === 0 || lo + 1 >= n) return vLo;
  // After selecting lo, everything right of it is ≥ a[lo]: the next order statistic is their min.
  let vHi = Infinity;
  for (let i = lo + 1; i < n; i++) if (a[i] < vHi) vHi = a[i];
  // Interpolated in double precision, rounded to the data's float32 (as the native kernel does).
  return Math.fround(vLo + frac * (vHi - vLo));
}

/**
 * Zeroes, in place, every entry of each layer block that is not among the top `q` % by
 * magnitude (|g| must exceed the block's (100 − q)th percentile of |g|).
 *
 * @example
 * ```ts
 * import { sparsifyRows } from "./sparsify.ts";
 * const row = Float32Array.from([0.1, -5, 0.2, 3, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8]);
 * const block = { op: 0, layer: "d", kind: "dense" as const, part: "kernel" as const };
 * const layout = { size: 10, blocks: [{ ...block, shape: [10], offset: 0, size: 10 }] };
 * const kept = sparsifyRows(row, layout, 20, { native: false }); // the largest 20 %: −5 and 3
 * if (kept !== 2 || row[1] !== -5 || row[3] !== 3 || row[9] !== 0) throw new Error("wrong");
 * ```
 *
 * @param rows [count, P] row-major
 * @param q percent kept, 0 < q ≤ 100 (GradNet: 15)
 * @param options.native false: the TypeScript implementation even when the native library is loaded
 * @returns the number of entries kept
 */
export function sparsifyRows(
  rows: Float32Array,
  layout: GradientLayout,
  q: number,
  options: { native?: boolean } = {},
): number {
  if (!(q > 0 && q <= 100)) throw new RangeError(`selection percent ${q} outside (0, 100]`);
  const P = layout.size;
  if (rows.length % P !== 0) {
    throw new RangeError(`rows of length ${rows.length} are not a multiple of P = ${P}`);
  }
  const count = rows.length / P;
  const lib = options.native === false ? null : loadedNativeLib();
  if (lib && count > 0) {
    return lib.sparsify(
      rows,
      P,
      layout.blocks.map((b) => b.offset),
      layout.blocks.map((b) => b.size),
      q,
    );
  }
  const maxBlock = Math.max(...layout.blocks.map((b) => b.size));
  const abs = new Float32Array(maxBlock), scratch = new Float32Array(maxBlock);
  let kept = 0;
  for (let r = 0; r < count; r++) {
    for (const b of layout.blocks) {
      const block = rows.subarray(r * P + b.offset, r * P + b.offset + b.size);
      const a = abs.subarray(0, b.size);
      for (let i = 0; i < b.size; i++) a[i] = Math.abs(block[i]);
      const thr = percentile(a, 100 - q, scratch.subarray(0, b.size));
      for (let i = 0; i < b.size; i++) {
        if (a[i] > thr) kept++;
        else block[i] = 0;
      }
    }
  }
  return kept;
}
