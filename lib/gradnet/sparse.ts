/**
 * GradNet trained and evaluated directly on sparse feature rows (see cache.ts), on the host.
 *
 * GradNet's first layer is block-diagonal and its inputs are about 85 % zeros, so a forward pass
 * touches only the weight rows of a row's stored entries, and plain SGD (the paper's optimiser:
 * no momentum, no weight decay) changes only those rows. One step on a batch of 25 rows of the
 * h = 16 MNIST layout (about 2,200 entries each) is about 2 M multiply-adds in tight loops over
 * typed arrays — against a dense TF.js step over 14,640 × 40 weights plus its per-op overhead.
 * The dense TF.js {@link GradNet} stays the reference: a test checks that a step here equals a
 * step of TF.js autodiff on the dense rows.
 *
 * Only the paper's configuration runs here: no dropout, no batch normalisation, plain SGD.
 *
 * With the native backend loaded, steps and forward passes run in C (`gl_gradnet_step`,
 * `gl_gradnet_hidden` in kernels.c, the same algorithm in float32); the TypeScript loops run on
 * every other backend.
 *
 * @module
 */

import type { NamedArray } from "../run/bundle.ts";
import type { GradNet } from "../models/gradnet.ts";
import { loadedNativeLib } from "../backend/select.ts";
import type { GradNetNativeArgs, NativeLib } from "../backend/native/ffi.ts";
import { batchRows, type RowBatch, type SparseRow } from "./cache.ts";

/**
 * GradNet's parameters on the host, with sparse forward, SGD step and the sum test rule.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SparseGradNet } from "./sparse.ts";
 * // two blocks of 2 inputs with 2 hidden units each, 2 classes; small fixed starting weights
 * const w = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => 0.1 * ((i + k) % 3 - 1));
 * const net = new SparseGradNet([2, 2], [2, 2], 2, [w(4, 0), w(2, 1), w(4, 2), w(2, 0), w(8, 1), w(2, 2)]);
 * // class 0 lights input 0 (block 1), class 1 input 2 (block 2): rows store only their nonzeros
 * const row = (at: number) => ({ index: Uint16Array.of(at), value: Float32Array.of(1) });
 * let first = 0, last = 0;
 * for (let s = 0; s < 200; s++) {
 *   const { loss } = net.step([row(0), row(2)], [0, 1], 0.5);
 *   if (s === 0) first = loss;
 *   last = loss;
 * }
 * assert.ok(last < first / 10);
 * assert.equal(net.predictSum([row(0)]), 0);
 * assert.equal(net.predictSum([row(2)]), 1);
 * ```
 */
export class SparseGradNet {
  /** block weights [d_i, h_i] row-major, as the TF.js variables */
  readonly W: Float32Array[];
  /** block biases [h_i] */
  readonly b: Float32Array[];
  /** output weights [H, C] and biases [C] */
  readonly Wo: Float32Array;
  /** output biases [C] */
  readonly bo: Float32Array;
  /** every parameter, back to back (the arrays above are views into it) */
  readonly theta: Float32Array;
  /** first input index of each block, and one past the last */
  private readonly bounds: number[];
  /** first hidden unit of each block */
  private readonly hOff: number[];
  /** hidden units in all */
  readonly H: number;
  /** classes */
  readonly C: number;
  private readonly lib: NativeLib | null;
  private readonly layout: Omit<GradNetNativeArgs, "idx" | "val" | "rowStart" | "rows">;
  private readonly oOff: Int32Array;
  // scratch, grown to the largest batch seen
  private hid = new Float64Array(0);
  private dhid = new Float64Array(0);
  private p = new Float64Array(0);
  private hidF32 = new Float32Array(0);
  private stage: { idx: Uint16Array | Uint32Array; val: Float32Array; rowStart: Int32Array } = {
    idx: new Uint16Array(0),
    val: new Float32Array(0),
    rowStart: new Int32Array(0),
  };

  /**
   * GradNet with blocks of `blockSizes` inputs and `hidden` units each, for `classes` classes.
   * @param values the parameter arrays in GradNet's variable order (copied)
   * @param o.native false: the TypeScript loops even when the native library is loaded
   */
  constructor(
    readonly blockSizes: number[],
    readonly hidden: number[],
    readonly classes: number,
    values: Float32Array[],
    o: { native?: boolean } = {},
  ) {
    const nb = blockSizes.length;
    if (hidden.length !== nb) throw new RangeError("one hidden size per block");
    if (values.length !== 2 * nb + 2) {
      throw new RangeError(`expected ${2 * nb + 2} parameter arrays, got ${values.length}`);
    }
    // One buffer for all parameters: the native kernels take a single pointer and offsets, and
    // a buffer this size lives outside the JS heap, so its address never moves.
    const total = values.reduce((a, v) => a + v.length, 0);
    this.theta = new Float32Array(Math.max(total, 64));
    const views: Float32Array[] = [];
    const offsets: number[] = [];
    let at = 0;
    for (const v of values) {
      this.theta.set(v, at);
      offsets.push(at);
      views.push(this.theta.subarray(at, at + v.length));
      at += v.length;
    }
    this.W = views.filter((_, i) => i < 2 * nb && i % 2 === 0);
    this.b = views.filter((_, i) => i < 2 * nb && i % 2 === 1);
    this.Wo = views[2 * nb];
    this.bo = views[2 * nb + 1];
    this.H = hidden.reduce((a, b) => a + b, 0);
    this.C = classes;
    this.bounds = [0];
    for (const d of blockSizes) this.bounds.push(this.bounds[this.bounds.length - 1] + d);
    this.hOff = [0];
    for (const h of hidden) this.hOff.push(this.hOff[this.hOff.length - 1] + h);
    blockSizes.forEach((d, i) => {
      if (this.W[i].length !== d * hidden[i] || this.b[i].length !== hidden[i]) {
        throw new RangeError(`block ${i}: parameter sizes do not match ${d} × ${hidden[i]}`);
      }
    });
    if (this.Wo.length !== this.H * classes || this.bo.length !== classes) {
      throw new RangeError("output layer sizes do not match");
    }
    this.lib = o.native === false ? null : loadedNativeLib();
    this.layout = {
      bounds: Int32Array.from(this.bounds),
      hidden: Int32Array.from(hidden),
      theta: this.theta,
      wOff: Int32Array.from({ length: nb }, (_, i) => offsets[2 * i]),
      bOff: Int32Array.from({ length: nb }, (_, i) => offsets[2 * i + 1]),
    };
    this.oOff = Int32Array.from([offsets[2 * nb], offsets[2 * nb + 1]]);
  }

  /** Copies rows back to back into the staging buffers the native kernels read. */
  private staged(rows: SparseRow[]): GradNetNativeArgs {
    let n = 0;
    for (const r of rows) n += r.index.length;
    const wide = rows.some((r) => r.index instanceof Uint32Array);
    let { idx, val, rowStart } = this.stage;
    if (idx.length < n || (wide && !(idx instanceof Uint32Array))) {
      const cap = Math.max(2 * n, 1024);
      idx = wide ? new Uint32Array(cap) : new Uint16Array(cap);
      val = new Float32Array(cap);
    }
    if (rowStart.length < rows.length + 1) {
      rowStart = new Int32Array(Math.max(2 * rows.length + 1, 64));
    }
    this.stage = { idx, val, rowStart };
    let at = 0;
    rows.forEach((r, e) => {
      rowStart[e] = at;
      idx.set(r.index, at);
      val.set(r.value, at);
      at += r.index.length;
    });
    rowStart[rows.length] = at;
    return { ...this.layout, idx, val, rowStart, rows: rows.length };
  }

  /** Host copies of a TF.js GradNet's parameters (paper configuration only). */
  static async fromGradNet(net: GradNet, o: { native?: boolean } = {}): Promise<SparseGradNet> {
    const c = net.config;
    if (c.dropout > 0 || c.batchNorm) {
      throw new RangeError("the sparse GradNet has neither dropout nor batch normalisation");
    }
    const values = await Promise.all(net.params.map(async (v) => (await v.data()) as Float32Array));
    return new SparseGradNet(c.blockSizes, c.hidden, c.classes, values, o);
  }

  /** Every parameter array, in GradNet's variable order. */
  arrays(): Float32Array[] {
    const out: Float32Array[] = [];
    this.W.forEach((w, i) => out.push(w, this.b[i]));
    out.push(this.Wo, this.bo);
    return out;
  }

  /** Named arrays in the layout of `GradNet.toArrays()` (checkpoints are interchangeable). */
  toArrays(): NamedArray[] {
    const shapes: number[][] = [];
    this.blockSizes.forEach((d, i) => shapes.push([d, this.hidden[i]], [this.hidden[i]]));
    shapes.push([this.H, this.C], [this.C]);
    return this.arrays().map((values, i) => ({ name: `v${i}`, shape: shapes[i], values }));
  }

  /** Loads arrays written by {@link toArrays}. */
  loadArrays(arrays: Map<string, NamedArray>): void {
    this.arrays().forEach((dst, i) => {
      const a = arrays.get(`v${i}`);
      if (!a || a.values.length !== dst.length) {
        throw new Error(`GradNet weights: v${i} missing or misshapen`);
      }
      dst.set(a.values);
    });
  }

  /** Writes the parameters back into a TF.js GradNet. */
  writeTo(net: GradNet): void {
    const arrays = this.toArrays();
    net.loadArrays(new Map(arrays.map((a) => [a.name, a])));
  }

  /** Makes room for a batch of `rows` rows in the scratch arrays. */
  private grow(rows: number): void {
    if (this.hid.length >= rows * this.H) return;
    this.hid = new Float64Array(rows * this.H);
    this.dhid = new Float64Array(rows * this.H);
    this.p = new Float64Array(rows * this.C);
  }

  /** Where each block's entries start in a row's ascending indices (and where the last ends). */
  private blockRuns(index: ArrayLike<number>): Int32Array {
    const nb = this.hidden.length, runs = new Int32Array(nb + 1);
    let e = 0;
    for (let blk = 0; blk < nb; blk++) {
      runs[blk] = e;
      while (e < index.length && index[e] < this.bounds[blk + 1]) e++;
    }
    runs[nb] = e;
    return runs;
  }

  /** hid[at … at + H) = ReLU(block-diagonal first layer) of one sparse row. */
  private hiddenOf(row: SparseRow, hid: Float64Array, at: number): void {
    const { index, value } = row;
    const H = this.H;
    for (let j = 0; j < H; j++) hid[at + j] = 0;
    const runs = this.blockRuns(index);
    for (let blk = 0; blk < this.hidden.length; blk++) {
      const w = this.W[blk], hb = this.hidden[blk], ho = at + this.hOff[blk];
      const start = this.bounds[blk];
      for (let e = runs[blk]; e < runs[blk + 1]; e++) {
        const v = value[e], base = (index[e] - start) * hb;
        for (let t = 0; t < hb; t++) hid[ho + t] += v * w[base + t];
      }
    }
    for (let blk2 = 0; blk2 < this.hidden.length; blk2++) {
      const bb = this.b[blk2], o = at + this.hOff[blk2];
      for (let t = 0; t < bb.length; t++) {
        const z = hid[o + t] + bb[t];
        hid[o + t] = z > 0 ? z : 0;
      }
    }
  }

  /** Logits of hidden units hid[at … at + H) into out[0 … C) (adds K·bias when `k` given). */
  private outputOf(hid: Float64Array, at: number, out: Float64Array, outAt: number, k = 1): void {
    const H = this.H, C = this.C, Wo = this.Wo;
    for (let c = 0; c < C; c++) out[outAt + c] = k * this.bo[c];
    for (let j = 0; j < H; j++) {
      const h = hid[at + j];
      if (h === 0) continue;
      const r = j * C;
      for (let c = 0; c < C; c++) out[outAt + c] += h * Wo[r + c];
    }
  }

  /**
   * The test rule for one image: the argmax of the logits summed over its K label rows
   * (Σ_k (h_k·Wo + bo) = (Σ_k h_k)·Wo + K·bo).
   */
  predictSum(rows: SparseRow[]): number {
    this.grow(2);
    const H = this.H;
    const sum = this.dhid; // scratch
    for (let j = 0; j < H; j++) sum[j] = 0;
    if (this.lib) {
      if (this.hidF32.length < rows.length * H) this.hidF32 = new Float32Array(rows.length * H);
      this.lib.gradnetHidden(this.staged(rows), this.hidF32);
      for (let r = 0; r < rows.length; r++) {
        for (let j = 0; j < H; j++) sum[j] += this.hidF32[r * H + j];
      }
    } else {
      for (const row of rows) {
        this.hiddenOf(row, this.hid, 0);
        for (let j = 0; j < H; j++) sum[j] += this.hid[j];
      }
    }
    const out = this.p;
    this.outputOf(sum, 0, out, 0, rows.length);
    let best = 0;
    for (let c = 1; c < this.C; c++) if (out[c] > out[best]) best = c;
    return best;
  }

  /**
   * One plain-SGD step on the mean softmax cross-entropy of a batch (rows, or rows back to back):
   * every gradient is taken at the weights before the step, as autodiff does. Returns the batch's summed loss and the
   * number of rows whose argmax is the target.
   */
  step(
    batch: SparseRow[] | RowBatch,
    targets: ArrayLike<number>,
    lr: number,
  ): { loss: number; correct: number } {
    if (this.lib) {
      const t = targets instanceof Int32Array ? targets : Int32Array.from(targets);
      const staged = Array.isArray(batch) ? this.staged(batch) : { ...this.layout, ...batch };
      return this.lib.gradnetStep(staged, this.oOff, this.C, t, lr);
    }
    const rows = Array.isArray(batch) ? batch : batchRows(batch);
    const B = rows.length, H = this.H, C = this.C;
    this.grow(B);
    const hid = this.hid, dhid = this.dhid, p = this.p, Wo = this.Wo;
    let loss = 0, correct = 0;
    for (let e = 0; e < B; e++) {
      this.hiddenOf(rows[e], hid, e * H);
      this.outputOf(hid, e * H, p, e * C);
      // softmax, loss, and dlogits = (p − e_y) / B in place
      const o = e * C, y = targets[e];
      let mx = -Infinity, arg = 0;
      for (let c = 0; c < C; c++) {
        if (p[o + c] > mx) {
          mx = p[o + c];
          arg = c;
        }
      }
      if (arg === y) correct++;
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(p[o + c] - mx);
      loss += Math.log(z) - (p[o + y] - mx);
      for (let c = 0; c < C; c++) p[o + c] = Math.exp(p[o + c] - mx) / z / B;
      p[o + y] -= 1 / B;
    }
    // back through the output layer (old Wo), then update it
    for (let e = 0; e < B; e++) {
      for (let j = 0; j < H; j++) {
        const h = hid[e * H + j];
        if (h <= 0) {
          dhid[e * H + j] = 0;
          continue;
        }
        let s = 0;
        for (let c = 0; c < C; c++) s += p[e * C + c] * Wo[j * C + c];
        dhid[e * H + j] = s;
      }
    }
    for (let j = 0; j < H; j++) {
      for (let c = 0; c < C; c++) {
        let g = 0;
        for (let e = 0; e < B; e++) g += hid[e * H + j] * p[e * C + c];
        Wo[j * C + c] -= lr * g;
      }
    }
    for (let c = 0; c < C; c++) {
      let g = 0;
      for (let e = 0; e < B; e++) g += p[e * C + c];
      this.bo[c] -= lr * g;
    }
    // first layer: biases, then the weight rows of each row's entries
    for (let blk = 0; blk < this.hidden.length; blk++) {
      const bb = this.b[blk], o = this.hOff[blk];
      for (let t = 0; t < bb.length; t++) {
        let g = 0;
        for (let e = 0; e < B; e++) g += dhid[e * H + o + t];
        bb[t] -= lr * g;
      }
    }
    for (let e = 0; e < B; e++) {
      const { index, value } = rows[e];
      const runs = this.blockRuns(index);
      for (let blk = 0; blk < this.hidden.length; blk++) {
        const w = this.W[blk], hb = this.hidden[blk], ho = e * H + this.hOff[blk];
        const start = this.bounds[blk];
        for (let q = runs[blk]; q < runs[blk + 1]; q++) {
          const a = lr * value[q], base = (index[q] - start) * hb;
          for (let t = 0; t < hb; t++) w[base + t] -= a * dhid[ho + t];
        }
      }
    }
    return { loss, correct };
  }
}
