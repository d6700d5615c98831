/**
 * Per-coordinate statistics of gradient rows in one streaming pass, and the normalisations
 * GradNet tried (spec step 5): `none | scale | std | std_l2 | power | scale_power`.
 *
 * - scale:       (g − min) / (max − min), a zero range counting as 1
 * - std:         (g − mean) / std, a zero std counting as 1
 * - std_l2:      std, then each layer block divided by its L2 norm
 * - power:       sign(g)·|g|^e (e = `exponent`, default 0.125 as in the authors' first commit)
 * - scale_power: scale, then sign(n)·|n|^e (e default 0.5) — the final choice
 *
 * Entries that are exactly zero before normalising (sparsified away, or dead units) stay exactly
 * zero after it, as the original resets the masked entries.
 *
 * @module
 */

import type { GradientLayout } from "./per_example.ts";
import { loadedNativeLib } from "../backend/select.ts";

/** Normalisation names (the GradNet paper's study). */
export const NORMALIZATIONS = ["none", "scale", "std", "std_l2", "power", "scale_power"] as const;
/** One of {@link NORMALIZATIONS}. */
export type Normalization = typeof NORMALIZATIONS[number];

/** Per-coordinate statistics. */
export interface CoordinateStats {
  /** rows seen */
  count: number;
  /** smallest value per coordinate */
  min: Float32Array;
  /** largest value per coordinate */
  max: Float32Array;
  /** mean per coordinate */
  mean: Float32Array;
  /** population standard deviation per coordinate */
  std: Float32Array;
}

/** Accumulates per-coordinate min, max, mean and (population) std over rows, in one pass. */
export class RunningStats {
  private n = 0;
  private readonly mn: Float32Array;
  private readonly mx: Float32Array;
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  /** rows added sparsely, and per coordinate how many of them stored an entry there */
  private sparseRows = 0;
  private nonzero: Uint32Array | null = null;

  /** Statistics over rows of `size` coordinates. */
  constructor(readonly size: number) {
    this.mn = new Float32Array(size).fill(Infinity);
    this.mx = new Float32Array(size).fill(-Infinity);
    this.sum = new Float64Array(size);
    this.sumSq = new Float64Array(size);
  }

  /** Adds `rows` ([count, size] row-major). */
  update(rows: Float32Array): void {
    const P = this.size;
    if (rows.length % P !== 0) {
      throw new RangeError(`rows of length ${rows.length} are not a multiple of ${P}`);
    }
    const count = rows.length / P;
    for (let r = 0; r < count; r++) {
      const o = r * P;
      for (let i = 0; i < P; i++) {
        const v = rows[o + i];
        if (v < this.mn[i]) this.mn[i] = v;
        if (v > this.mx[i]) this.mx[i] = v;
        this.sum[i] += v;
        this.sumSq[i] += v * v;
      }
    }
    this.n += count;
  }

  /**
   * Adds one row given by its stored entries (ascending `index`, `value`); every other
   * coordinate of the row is zero. Gives the statistics of the dense row exactly.
   */
  updateSparse(index: ArrayLike<number>, value: ArrayLike<number>): void {
    const nz = (this.nonzero ??= new Uint32Array(this.size));
    for (let q = 0; q < index.length; q++) {
      const i = index[q], v = value[q];
      if (v < this.mn[i]) this.mn[i] = v;
      if (v > this.mx[i]) this.mx[i] = v;
      this.sum[i] += v;
      this.sumSq[i] += v * v;
      nz[i]++;
    }
    this.sparseRows++;
    this.n++;
  }

  /** The statistics so far. */
  result(): CoordinateStats {
    if (this.n === 0) throw new RangeError("no rows seen");
    const mean = new Float32Array(this.size), std = new Float32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const m = this.sum[i] / this.n;
      mean[i] = m;
      std[i] = Math.sqrt(Math.max(this.sumSq[i] / this.n - m * m, 0));
    }
    const min = this.mn.slice(), max = this.mx.slice();
    if (this.nonzero) {
      // the zeros of sparsely added rows count towards min and max
      for (let i = 0; i < this.size; i++) {
        if (this.nonzero[i] < this.sparseRows) {
          if (min[i] > 0) min[i] = 0;
          if (max[i] < 0) max[i] = 0;
        }
      }
    }
    return { count: this.n, min, max, mean, std };
  }
}

/** Options of {@link normalizeRows}. */
export interface NormalizeOptions {
  /** which normalisation */
  kind: Normalization;
  /** statistics (needed by scale, std, std_l2, scale_power) */
  stats?: CoordinateStats;
  /** power exponent (power: 0.125, scale_power: 0.5) */
  exponent?: number;
  /** the row layout (std_l2: per-layer L2 norms) */
  layout?: GradientLayout;
  /** false: the TypeScript loops even when the native library is loaded */
  native?: boolean;
}

function signedPow(v: number, e: number): number {
  if (e === 0.5) return v < 0 ? -Math.sqrt(-v) : Math.sqrt(v);
  return v < 0 ? -Math.pow(-v, e) : Math.pow(v, e);
}

/** The normalised value of a nonzero entry g at coordinate i (std_l2: before the L2 step). */
function normalizeValue(
  g: number,
  i: number,
  kind: Normalization,
  s: CoordinateStats | undefined,
  e: number,
): number {
  switch (kind) {
    case "scale":
    case "scale_power": {
      const range = s!.max[i] - s!.min[i];
      const n = (g - s!.min[i]) / (range === 0 ? 1 : range);
      return kind === "scale" ? n : signedPow(n, e);
    }
    case "std":
    case "std_l2": {
      const sd = s!.std[i];
      return (g - s!.mean[i]) / (sd === 0 ? 1 : sd);
    }
    case "power":
      return signedPow(g, e);
  }
  return g;
}

function checkStats(o: NormalizeOptions): void {
  if (o.kind !== "none" && o.kind !== "power" && !o.stats) {
    throw new RangeError(`normalisation '${o.kind}' needs statistics`);
  }
}

/**
 * Normalises `rows` ([count, P]) in place; zeros (sparsified entries) stay zero.
 *
 * @example
 * ```ts
 * import { normalizeRows } from "./normalize.ts";
 * const f = (a: number[]) => Float32Array.from(a);
 * const stats = { count: 2, min: f([0, -2]), max: f([4, 2]), mean: f([2, 0]), std: f([2, 2]) };
 * const rows = Float32Array.from([1, 0, 4, -2]);
 * normalizeRows(rows, { kind: "scale", stats }); // (g − min) / (max − min), zeros kept
 * if (rows.join() !== "0.25,0,1,0") throw new Error(rows.join());
 * ```
 */
export function normalizeRows(rows: Float32Array, o: NormalizeOptions): void {
  if (o.kind === "none") return;
  checkStats(o);
  const P = o.stats?.min.length ?? o.layout?.size;
  if (!P) throw new RangeError("normalizeRows needs statistics or a layout to know the row length");
  if (rows.length % P !== 0) {
    throw new RangeError(`rows of length ${rows.length} are not a multiple of ${P}`);
  }
  const count = rows.length / P;
  const e = o.exponent ?? (o.kind === "power" ? 0.125 : 0.5);
  for (let r = 0; r < count; r++) {
    const row = rows.subarray(r * P, (r + 1) * P);
    for (let i = 0; i < P; i++) {
      const g = row[i];
      if (g === 0) continue; // masked entries stay exactly zero
      row[i] = normalizeValue(g, i, o.kind, o.stats, e);
    }
    if (o.kind === "std_l2") {
      if (!o.layout) throw new RangeError("std_l2 needs the layout (per-layer L2 norms)");
      for (const b of o.layout.blocks) {
        const block = row.subarray(b.offset, b.offset + b.size);
        let ss = 0;
        for (let i = 0; i < block.length; i++) ss += block[i] * block[i];
        const norm = Math.sqrt(ss);
        if (norm > 0) { for (let i = 0; i < block.length; i++) block[i] /= norm; }
      }
    }
  }
}

/**
 * Normalises one sparse row in place — its nonzero entries `value` at ascending coordinates
 * `index` — with exactly the arithmetic of {@link normalizeRows} on the dense row.
 */
export function normalizeEntries(
  index: ArrayLike<number>,
  value: Float32Array,
  o: NormalizeOptions,
): void {
  if (o.kind === "none") return;
  checkStats(o);
  const e = o.exponent ?? (o.kind === "power" ? 0.125 : 0.5);
  const scale = scaleStep(o);
  if (scale) {
    const lib = o.native === false ? null : loadedNativeLib();
    if (lib && (index instanceof Uint16Array || index instanceof Uint32Array)) {
      lib.scaleEntries(index, value, scale.min, scale.max, scale.root);
    } else {
      scaleEntries(index, value, o.stats!, scale.root);
    }
    return;
  }
  for (let q = 0; q < value.length; q++) {
    if (value[q] !== 0) value[q] = normalizeValue(value[q], index[q], o.kind, o.stats, e);
  }
  if (o.kind === "std_l2") {
    if (!o.layout) throw new RangeError("std_l2 needs the layout (per-layer L2 norms)");
    let q = 0;
    for (const b of o.layout.blocks) {
      const from = q;
      let ss = 0;
      while (q < value.length && index[q] < b.offset + b.size) {
        ss += value[q] * value[q];
        q++;
      }
      const norm = Math.sqrt(ss);
      if (norm > 0) { for (let j = from; j < q; j++) value[j] /= norm; }
    }
  }
}

/**
 * The statistics of a normalisation that is a plain scale — scale, or scale_power with exponent
 * 0.5 (the paper's: `root`) — as the native kernels take them; null for any other.
 *
 * @example
 * ```ts
 * import { scaleStep } from "./normalize.ts";
 * const one = Float32Array.of(1);
 * const stats = { count: 1, min: Float32Array.of(0), max: Float32Array.of(2), mean: one, std: one };
 * if (scaleStep({ kind: "scale_power", stats })?.root !== true) throw new Error("the paper's is a root scale");
 * if (scaleStep({ kind: "scale_power", stats, exponent: 0.25 }) !== null) throw new Error("not a plain scale");
 * if (scaleStep({ kind: "none" }) !== null) throw new Error("none scales nothing");
 * ```
 */
export function scaleStep(
  o: NormalizeOptions,
): { min: Float32Array; max: Float32Array; root: boolean } | null {
  const e = o.exponent ?? (o.kind === "power" ? 0.125 : 0.5);
  if (o.kind !== "scale" && !(o.kind === "scale_power" && e === 0.5)) return null;
  checkStats(o);
  return { min: o.stats!.min, max: o.stats!.max, root: o.kind === "scale_power" };
}

/**
 * scale (and scale_power with exponent 0.5, the paper's) on sparse entries: the arithmetic of
 * {@link normalizeValue}, and the reference of the native `gl_scale_entries` (kernels.c), which
 * takes 8.5 ms for 100 rows of h = 64 features where the TypeScript loops take 18.
 */
function scaleEntries(
  index: ArrayLike<number>,
  value: Float32Array,
  s: CoordinateStats,
  root: boolean,
): void {
  const min = s.min, max = s.max;
  for (let q = 0; q < value.length; q++) {
    const g = value[q];
    if (g === 0) continue;
    const i = index[q];
    const range = max[i] - min[i];
    const n = (g - min[i]) / (range === 0 ? 1 : range);
    value[q] = root ? (n < 0 ? -Math.sqrt(-n) : Math.sqrt(n)) : n;
  }
}
