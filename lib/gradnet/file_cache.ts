/**
 * GradNet's feature cache in a file, for features that do not fit in memory — the paper's
 * `cnn_cifar(64)` on MNIST: 30,000 examples × 10 labels × ~20,300 stored entries, 38.5 GB. The
 * rows are computed once per base snapshot, as in memory (cache.ts), and written raw (sparsified,
 * not normalised); the normalisation statistics come from the same pass, and each row read back
 * is normalised with them — the same arithmetic on the same values as the in-memory cache, so
 * the same bits (a test compares them).
 *
 * A row is stored as its values (float32) and then its indices as uint16 gaps from the previous
 * index (6 bytes an entry instead of 8; a row whose gaps do not all fit keeps uint32 indices),
 * padded to 4 bytes. One read per row: a training step reads its 25 rows from the page cache or
 * the disk.
 *
 * @module
 */

import { statfsSync } from "node:fs";
import type * as tf from "@tensorflow/tfjs";
import { RunningStats } from "../gradients/normalize.ts";
import { Progress } from "../util/progress.ts";
import { stopIfInterrupted } from "../util/interrupt.ts";
import type { Featurizer } from "./features.ts";
import { loadedNativeLib } from "../backend/select.ts";
import { FeatureCache, featureChunk, type RowBatch, type SparseRow } from "./cache.ts";

/** What training and scoring read from a cache, in memory or in a file. */
export interface FeatureRows {
  /** examples */
  readonly n: number;
  /** rows per example (labels) */
  readonly classes: number;
  /** the stored entries of example i's feature for label k */
  row(i: number, k: number): SparseRow;
}

/** Bytes a row of m entries takes in the file. */
function rowBytes(m: number, wide: boolean): number {
  return wide ? 8 * m : 4 * m + 2 * m + (m % 2) * 2;
}

/** Whether every gap between ascending indices (the first from 0) fits in 16 bits. */
function gapsFit(index: ArrayLike<number>): boolean {
  let prev = 0;
  for (let q = 0; q < index.length; q++) {
    if (index[q] - prev > 0xffff) return false;
    prev = index[q];
  }
  return true;
}

/** Writes row (index, value) into `out` at byte `at` (4-aligned); returns whether it is wide. */
function encodeRow(index: ArrayLike<number>, value: Float32Array, out: Uint8Array, at: number) {
  const m = value.length;
  const wide = !gapsFit(index);
  new Float32Array(out.buffer, out.byteOffset + at, m).set(value);
  if (wide) {
    new Uint32Array(out.buffer, out.byteOffset + at + 4 * m, m).set(index);
  } else {
    const gaps = new Uint16Array(out.buffer, out.byteOffset + at + 4 * m, m);
    let prev = 0;
    for (let q = 0; q < m; q++) {
      gaps[q] = index[q] - prev;
      prev = index[q];
    }
  }
  return wide;
}

/**
 * Free bytes on the file system holding `dir`, or null when it cannot be asked.
 *
 * @example
 * ```ts
 * import { freeDiskBytes } from "./file_cache.ts";
 * const free = freeDiskBytes(Deno.cwd());
 * if (free !== null && !(free >= 0)) throw new Error("bad size");
 * ```
 */
export function freeDiskBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/**
 * Sparse feature rows of n examples × K labels in a file (see the module notes).
 *
 * @example
 * ```ts
 * import { FileFeatureCache } from "./file_cache.ts";
 * // two examples × two labels of 5 coordinates, written raw, read back normalised (here: not)
 * const path = await Deno.makeTempFile();
 * const rows = Float32Array.from([0, 1, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5, 0, 0]);
 * const cache = FileFeatureCache.fromDense(rows, 2, 2, 5, path);
 * const r = cache.row(0, 0);
 * if (Array.from(r.index).join() !== "1,4" || Array.from(r.value).join() !== "1,2") throw new Error();
 * if (cache.row(1, 0).value.length !== 0) throw new Error("an empty row has entries");
 * cache.close();
 * ```
 */
export class FileFeatureCache implements FeatureRows {
  private constructor(
    readonly n: number,
    readonly classes: number,
    readonly size: number,
    /** the file */
    readonly path: string,
    private readonly file: Deno.FsFile,
    /** byte offset of each row, and the file's length last */
    private readonly start: Float64Array,
    /** entries of each row */
    private readonly count: Uint32Array,
    /** 1 where a row keeps uint32 indices */
    private readonly wide: Uint8Array,
    /** normalises rows on reading (null: raw rows) */
    private readonly f: Featurizer | null,
  ) {}

  /** Bytes a file of n examples would take at `entriesPerRow` (for the disk-space decision). */
  static estimateBytes(n: number, classes: number, entriesPerRow: number): number {
    return n * classes * rowBytes(entriesPerRow, false);
  }

  /**
   * Computes the features of every label for examples 0 … n − 1 of a fixed view into the file
   * `path`, taking the featurizer's normalisation statistics from the same raw rows (all labels,
   * as the in-memory cache does); the rows read back are normalised with them.
   */
  static async build(
    f: Featurizer,
    view: (idx: number[]) => tf.Tensor,
    n: number,
    classes: number,
    o: { chunk: number; label: string; path: string; quiet?: boolean },
  ): Promise<FileFeatureCache> {
    const P = f.layout.size;
    const chunk = featureChunk(o.chunk, P, classes);
    const stats = new RunningStats(P);
    const rows = n * classes;
    const start = new Float64Array(rows + 1), count = new Uint32Array(rows);
    const wide = new Uint8Array(rows);
    const file = await Deno.open(o.path, { write: true, create: true, truncate: true });
    const bar = new Progress(o.label, n, { unit: "img", quiet: o.quiet });
    try {
      let at = 0;
      for (let s = 0; s < n; s += chunk) {
        // a Ctrl-C stops the build (minutes at the paper's size) rather than its end
        if (s > 0) await stopIfInterrupted(`while computing ${o.label || "features"}`);
        const idx = Array.from({ length: Math.min(chunk, n - s) }, (_, i) => s + i);
        const x = view(idx);
        const { rows: dense, classes: k } = await f.allLabelRows(x, classes, { normalize: false });
        x.dispose();
        if (k !== classes) {
          throw new RangeError(`the base network has ${k} classes, not ${classes}`);
        }
        const part = FeatureCache.fromDense(dense, idx.length, k, P);
        at = FileFeatureCache.append(file, part, s, stats, { start, count, wide, at });
        bar.tick(idx.length);
      }
      start[rows] = at;
    } catch (e) {
      // a part-built file (up to tens of GB) is of no use: a resume builds it again
      file.close();
      await Deno.remove(o.path).catch(() => {});
      throw e;
    }
    file.close();
    bar.finish();
    f.stats = stats.result();
    return new FileFeatureCache(
      n,
      classes,
      P,
      o.path,
      await Deno.open(o.path),
      start,
      count,
      wide,
      f,
    );
  }

  /** Writes the rows of a chunk of examples (raw) after byte `at`; returns the new end. */
  private static append(
    file: Deno.FsFile,
    part: FeatureCache,
    first: number,
    stats: RunningStats | null,
    t: { start: Float64Array; count: Uint32Array; wide: Uint8Array; at: number },
  ): number {
    const K = part.classes;
    let bytes = 0;
    for (let i = 0; i < part.n; i++) {
      for (let k = 0; k < K; k++) bytes += rowBytes(part.row(i, k).index.length, true);
    }
    const buf = new Uint8Array(bytes);
    let at = 0;
    for (let i = 0; i < part.n; i++) {
      for (let k = 0; k < K; k++) {
        const r = (first + i) * K + k;
        const { index, value } = part.row(i, k);
        stats?.updateSparse(index, value);
        const w = encodeRow(index, value, buf, at);
        t.start[r] = t.at + at;
        t.count[r] = value.length;
        t.wide[r] = w ? 1 : 0;
        at += rowBytes(value.length, w);
      }
    }
    const out = buf.subarray(0, at);
    for (let done = 0; done < out.length;) done += file.writeSync(out.subarray(done));
    return t.at + at;
  }

  /**
   * A file cache of `count` examples × K rows from dense raw rows [count·K, P] (zeros dropped),
   * read back without normalisation — for tests and tools.
   */
  static fromDense(
    dense: Float32Array,
    count: number,
    classes: number,
    P: number,
    path: string,
  ): FileFeatureCache {
    const part = FeatureCache.fromDense(dense, count, classes, P);
    const rows = count * classes;
    const t = {
      start: new Float64Array(rows + 1),
      count: new Uint32Array(rows),
      wide: new Uint8Array(rows),
      at: 0,
    };
    const file = Deno.openSync(path, { write: true, create: true, truncate: true });
    try {
      t.start[rows] = FileFeatureCache.append(file, part, 0, null, t);
    } finally {
      file.close();
    }
    const read = Deno.openSync(path);
    return new FileFeatureCache(count, classes, P, path, read, t.start, t.count, t.wide, null);
  }

  /** The stored entries of example i's feature for label k (fresh arrays), normalised. */
  row(i: number, k: number): SparseRow {
    if (!(i >= 0 && i < this.n && k >= 0 && k < this.classes)) {
      throw new RangeError(`row (${i}, ${k}) outside ${this.n} × ${this.classes}`);
    }
    const r = i * this.classes + k, m = this.count[r], w = this.wide[r] === 1;
    const buf = new Uint8Array(rowBytes(m, w));
    this.file.seekSync(this.start[r], Deno.SeekMode.Start);
    for (let done = 0; done < buf.length;) {
      const got = this.file.readSync(buf.subarray(done));
      if (got === null || got === 0) throw new Error(`${this.path}: row ${r} cut short`);
      done += got;
    }
    const value = new Float32Array(buf.buffer, 0, m);
    let index: Uint32Array;
    if (w) {
      index = new Uint32Array(buf.buffer, 4 * m, m);
    } else {
      const gaps = new Uint16Array(buf.buffer, 4 * m, m);
      index = new Uint32Array(m);
      let at = 0;
      for (let q = 0; q < m; q++) index[q] = at += gaps[q];
    }
    this.f?.normalizeSparse(index, value);
    return { index, value };
  }

  /**
   * Rows number `rows[q]` (= example · K + label) back to back, normalised as {@link row} does
   * them, in `into` when it holds them (else in new arrays; the batch written is returned). With
   * the native library and a scale normalisation (the paper's) the file is read and decoded on a
   * thread of its own, so the caller can compute meanwhile — `into` must then stay untouched until
   * the promise settles.
   */
  async readRows(rows: Int32Array, into: RowBatch | null): Promise<RowBatch> {
    let entries = 0;
    for (const r of rows) {
      if (!(r >= 0 && r < this.count.length)) {
        throw new RangeError(`row ${r} outside ${this.n} × ${this.classes}`);
      }
      entries += this.count[r];
    }
    let b = into;
    if (!b || !(b.idx instanceof Uint32Array) || b.idx.length < entries) {
      const cap = Math.max(entries + (entries >> 2), 1024);
      b = {
        idx: new Uint32Array(cap),
        val: new Float32Array(cap),
        rowStart: b?.rowStart ?? new Int32Array(0),
        rows: 0,
      };
    }
    if (b.rowStart.length < rows.length + 1) b.rowStart = new Int32Array(rows.length + 1);
    b.rows = rows.length;
    const lib = loadedNativeLib();
    const scale = this.f ? this.f.scaleStep() : "raw";
    if (lib && scale !== null) {
      const file = { size: this.size, start: this.start, count: this.count, wide: this.wide };
      await lib.readFeatureRows(
        this.path,
        rows,
        file,
        b as RowBatch & { idx: Uint32Array },
        scale === "raw" ? null : scale,
      );
      return b;
    }
    let at = 0;
    rows.forEach((r, q) => {
      const { index, value } = this.row(Math.floor(r / this.classes), r % this.classes);
      b.rowStart[q] = at;
      b.idx.set(index, at);
      b.val.set(value, at);
      at += value.length;
    });
    b.rowStart[rows.length] = at;
    return b;
  }

  /** Bytes of the file. */
  get bytes(): number {
    return this.start[this.start.length - 1];
  }

  /** Stored entries in all rows. */
  get entries(): number {
    return this.count.reduce((s, c) => s + c, 0);
  }

  /** Closes and deletes the file. */
  close(): void {
    this.file.close();
    try {
      Deno.removeSync(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
