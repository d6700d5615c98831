/**
 * GradNet's feature cache. When an example's view never changes (MNIST, Fashion-MNIST, CIFAR
 * with `--augment=none`), its processed gradient g(x, k) for every label k is the same on every
 * visit, so it is computed once per base snapshot and stored sparsely: after the top-15 %
 * sparsification a row keeps about 15 % of its entries, stored as (index, value) pairs in
 * float32 — exactly the on-the-fly values (a test compares them bit for bit).
 *
 * Rows are stored in chunks of examples, K rows per example (example-major, label-minor), so no
 * single array grows past what a typed array can hold.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";
import { loadedNativeLib } from "../backend/select.ts";
import { RunningStats } from "../gradients/normalize.ts";
import { Progress } from "../util/progress.ts";
import { stopIfInterrupted } from "../util/interrupt.ts";
import type { Featurizer } from "./features.ts";

/**
 * Examples per all-label gradient batch: at most `chunk`, and few enough that the batch's dense
 * gradients (examples × K × P floats) stay under 256 MiB — the wasm heap holds 4 GB, and h = 64
 * rows have 135,360 numbers.
 */
export function featureChunk(chunk: number, P: number, classes: number): number {
  return Math.max(1, Math.min(chunk, Math.floor(2 ** 28 / (4 * P * classes))));
}

/** The stored entries of one feature row: ascending indices and their values. */
export interface SparseRow {
  /** ascending feature indices of the stored entries */
  index: Uint16Array | Uint32Array;
  /** their values */
  value: Float32Array;
}

/** Sparse rows back to back: row r's entries are rowStart[r] … rowStart[r + 1] − 1. */
export interface RowBatch {
  /** ascending feature indices of each row's entries */
  idx: Uint16Array | Uint32Array;
  /** their values */
  val: Float32Array;
  /** where each row starts, and one past the last */
  rowStart: Int32Array;
  /** rows */
  rows: number;
}

/**
 * The rows of a batch as views into it.
 *
 * @example
 * ```ts
 * import { batchRows } from "./cache.ts";
 * const b = { idx: Uint32Array.of(1, 4, 2), val: Float32Array.of(5, 6, 7), rowStart: Int32Array.of(0, 2, 3), rows: 2 };
 * const [r0, r1] = batchRows(b);
 * if (Array.from(r0.index).join() !== "1,4" || r1.value[0] !== 7) throw new Error("wrong rows");
 * ```
 */
export function batchRows(b: RowBatch): SparseRow[] {
  return Array.from({ length: b.rows }, (_, r) => ({
    index: b.idx.subarray(b.rowStart[r], b.rowStart[r + 1]),
    value: b.val.subarray(b.rowStart[r], b.rowStart[r + 1]),
  }));
}

interface Chunk {
  start: number;
  count: number;
  /** rowStart[r] … rowStart[r + 1] are row r's entries (r = (example − start)·K + label) */
  rowStart: Uint32Array;
  index: Uint16Array | Uint32Array;
  value: Float32Array;
}

/** Sparse feature rows of n examples × K labels, each row of length `size`. */
export class FeatureCache {
  private constructor(
    readonly n: number,
    readonly classes: number,
    readonly size: number,
    readonly chunkSize: number,
    private readonly chunks: Chunk[],
  ) {}

  /**
   * Compresses dense rows [count·K, P] of examples start … start + count − 1 into a chunk.
   * Zeros are dropped: they are exactly the entries GradNet's sparsification removed.
   */
  private static compress(
    dense: Float32Array,
    start: number,
    count: number,
    classes: number,
    P: number,
  ): Chunk {
    const rows = count * classes;
    const lib = loadedNativeLib();
    if (lib) {
      // measured (machine under load): 1.2 → 0.5 ms per MNIST image (10 rows of 14,640)
      const c = lib.compressRows(dense.subarray(0, rows * P), P);
      return { start, count, ...c };
    }
    let nnz = 0;
    for (let i = 0; i < dense.length; i++) if (dense[i] !== 0) nnz++;
    const index = P <= 65536 ? new Uint16Array(nnz) : new Uint32Array(nnz);
    const value = new Float32Array(nnz);
    const rowStart = new Uint32Array(rows + 1);
    let e = 0;
    for (let r = 0; r < rows; r++) {
      rowStart[r] = e;
      const o = r * P;
      for (let j = 0; j < P; j++) {
        const v = dense[o + j];
        if (v !== 0) {
          index[e] = j;
          value[e++] = v;
        }
      }
    }
    rowStart[rows] = e;
    return { start, count, rowStart, index, value };
  }

  /**
   * Computes the features of every label for examples 0 … n − 1 of a fixed view.
   *
   * @param view the (deterministic) input batch of the examples at `idx`; the caller's tensor
   *   is disposed here
   * @param o.statistics when true, the featurizer's normalisation statistics are first taken
   *   over every row (all examples, all labels — the rows training draws its random labels
   *   from, so every training feature of scale/scale_power lies in [0, 1]), then every row is
   *   normalised; otherwise `f.stats` must already be set
   */
  static async build(
    f: Featurizer,
    view: (idx: number[]) => tf.Tensor,
    n: number,
    classes: number,
    o: { chunk: number; label: string; quiet?: boolean; statistics?: boolean },
  ): Promise<FeatureCache> {
    const P = f.layout.size;
    const chunk = featureChunk(o.chunk, P, classes);
    const chunks: Chunk[] = [];
    const stats = o.statistics ? new RunningStats(P) : null;
    const bar = new Progress(o.label, n, { unit: "img", quiet: o.quiet });
    for (let s = 0; s < n; s += chunk) {
      if (s > 0) await stopIfInterrupted(`while computing ${o.label || "features"}`);
      const idx = Array.from({ length: Math.min(chunk, n - s) }, (_, i) => s + i);
      const x = view(idx);
      const { rows, classes: k } = await f.allLabelRows(x, classes, { normalize: false });
      x.dispose();
      if (k !== classes) throw new RangeError(`the base network has ${k} classes, not ${classes}`);
      const c = FeatureCache.compress(rows, s, idx.length, k, P);
      if (stats) FeatureCache.addToStats(c, stats);
      else FeatureCache.normalizeChunk(c, f);
      chunks.push(c);
      bar.tick(idx.length);
    }
    bar.finish();
    const cache = new FeatureCache(n, classes, P, chunk, chunks);
    if (stats) {
      f.stats = stats.result();
      cache.normalizeInPlace(f);
    }
    return cache;
  }

  /** Adds every row of a chunk (raw values) to running statistics. */
  private static addToStats(c: Chunk, stats: RunningStats): void {
    for (let r = 0; r + 1 < c.rowStart.length; r++) {
      const a = c.rowStart[r], b = c.rowStart[r + 1];
      stats.updateSparse(c.index.subarray(a, b), c.value.subarray(a, b));
    }
  }

  /** Statistics of the raw rows of dense `rows` [count, P] (sparsified, not normalised). */
  static statsOf(rows: Float32Array, P: number, stats: RunningStats): void {
    FeatureCache.addToStats(FeatureCache.compress(rows, 0, rows.length / P, 1, P), stats);
  }

  /**
   * A cache of `count` examples × K rows from dense rows [count·K, P] (zeros dropped), normalised
   * with `f` when given — for features that are used once (augmented views).
   */
  static fromDense(
    dense: Float32Array,
    count: number,
    classes: number,
    P: number,
    f?: Featurizer,
  ): FeatureCache {
    const c = FeatureCache.compress(dense, 0, count, classes, P);
    if (f) FeatureCache.normalizeChunk(c, f);
    return new FeatureCache(count, classes, P, Math.max(count, 1), [c]);
  }

  /** Normalises every row of a chunk with `f`, on its stored entries. */
  private static normalizeChunk(c: Chunk, f: Featurizer): void {
    if (f.o.normalization !== "std_l2" && loadedNativeLib()) {
      // entry by entry (no per-row norms): the chunk in one native call, on every thread. In
      // TypeScript one pass over a whole chunk was slower than row by row (30 against 18 ms for
      // 100 rows of h = 64 features).
      f.normalizeSparse(c.index, c.value);
      return;
    }
    const rows = c.rowStart.length - 1;
    for (let r = 0; r < rows; r++) {
      const a = c.rowStart[r], b = c.rowStart[r + 1];
      f.normalizeSparse(c.index.subarray(a, b), c.value.subarray(a, b));
    }
  }

  /** Normalises every stored row with `f` (the values only: zeros stay zero). */
  private normalizeInPlace(f: Featurizer): void {
    for (const c of this.chunks) FeatureCache.normalizeChunk(c, f);
  }

  /** The chunk holding example `i`. */
  private chunkOf(i: number): Chunk {
    if (!(i >= 0 && i < this.n)) throw new RangeError(`example ${i} outside 0 … ${this.n - 1}`);
    return this.chunks[Math.floor(i / this.chunkSize)];
  }

  /** The stored entries of example i's feature for label k (views, not copies). */
  row(i: number, k: number): SparseRow {
    const c = this.chunkOf(i);
    const r = (i - c.start) * this.classes + k;
    const a = c.rowStart[r], b = c.rowStart[r + 1];
    return { index: c.index.subarray(a, b), value: c.value.subarray(a, b) };
  }

  /** Example i's feature for label k as a dense row. */
  dense(i: number, k: number, out: Float32Array = new Float32Array(this.size)): Float32Array {
    const { index, value } = this.row(i, k);
    out.fill(0);
    for (let e = 0; e < index.length; e++) out[index[e]] = value[e];
    return out;
  }

  /** Stored entries in all rows. */
  get entries(): number {
    return this.chunks.reduce((s, c) => s + c.value.length, 0);
  }

  /** Bytes held by the cache. */
  get bytes(): number {
    return this.chunks.reduce(
      (s, c) => s + c.value.byteLength + c.index.byteLength + c.rowStart.byteLength,
      0,
    );
  }

  /** Bytes a cache of n examples would take at `entriesPerRow` (for the in-memory decision). */
  static estimateBytes(n: number, classes: number, size: number, entriesPerRow: number): number {
    return n * classes * (entriesPerRow * (4 + (size <= 65536 ? 2 : 4)) + 4);
  }
}
