/**
 * GradNet's input vectors (spec §2): the per-example gradient of the base network's loss with
 * respect to its kernels, sparsified per layer to the top q % by magnitude, then normalised with
 * per-coordinate statistics taken in one pass over the GradNet training half.
 *
 * @module
 */

import type { Tensor } from "../util/tf_types.ts";
import {
  type GradientLayout,
  gradientLayout,
  labelGradientBlocks,
  perExampleGradients,
  type PerExampleOptions,
} from "../gradients/per_example.ts";
import type { NetOp } from "../gradients/network.ts";
import { sparsifyRows } from "../gradients/sparsify.ts";
import {
  type CoordinateStats,
  type Normalization,
  normalizeEntries,
  normalizeRows,
  scaleStep,
} from "../gradients/normalize.ts";

/** How gradient rows become features. */
export interface FeatureOptions {
  /** sparsify to the top `selectionPercent` % per layer (false: keep every entry) */
  sparsify: boolean;
  /** percent of entries kept per layer */
  selectionPercent: number;
  /** how the kept entries are normalised */
  normalization: Normalization;
  /** power exponent (default: 0.125 for power, 0.5 for scale_power) */
  exponent?: number;
}

/** Turns base-network gradients into GradNet features. */
export class Featurizer {
  /** coordinate statistics for the normalisation (null until computed or loaded) */
  stats: CoordinateStats | null = null;
  /** where each layer's gradient lies in a feature row */
  readonly layout: GradientLayout;

  /** Features of the network `ops` with options `o`; `gradients` tunes the per-example gradient computation. */
  constructor(
    readonly ops: NetOp[],
    readonly o: FeatureOptions,
    readonly gradients: PerExampleOptions = {},
  ) {
    this.layout = gradientLayout(ops, gradients);
  }

  /** Raw gradient rows → sparsified rows (in place). */
  private sparsified(rows: Float32Array): Float32Array {
    if (this.o.sparsify) sparsifyRows(rows, this.layout, this.o.selectionPercent);
    return rows;
  }

  /** Sparsified (not normalised) rows for one label per example — the statistics pass. */
  async rawRows(x: Tensor, labels: ArrayLike<number>): Promise<Float32Array> {
    const { gradients } = perExampleGradients(this.ops, x, labels, this.gradients);
    const rows = (await gradients.data()) as Float32Array;
    gradients.dispose();
    return this.sparsified(rows);
  }

  /** Normalises sparsified rows in place. */
  normalize(rows: Float32Array): Float32Array {
    this.needStats();
    normalizeRows(rows, {
      kind: this.o.normalization,
      stats: this.stats ?? undefined,
      exponent: this.o.exponent,
      layout: this.layout,
    });
    return rows;
  }

  /** Normalises one sparse row (ascending `index`, its `value`s) in place, as {@link normalize}. */
  normalizeSparse(index: ArrayLike<number>, value: Float32Array): void {
    this.needStats();
    normalizeEntries(index, value, {
      kind: this.o.normalization,
      stats: this.stats ?? undefined,
      exponent: this.o.exponent,
      layout: this.layout,
    });
  }

  /** The normalisation as the native row reader takes it: "raw", a plain scale, or null (other). */
  scaleStep(): ReturnType<typeof scaleStep> | "raw" {
    this.needStats();
    if (this.o.normalization === "none") return "raw";
    return scaleStep({
      kind: this.o.normalization,
      stats: this.stats ?? undefined,
      exponent: this.o.exponent,
    });
  }

  /** Throws unless the normalisation statistics are there. */
  private needStats(): void {
    if (this.o.normalization !== "none" && this.o.normalization !== "power" && !this.stats) {
      throw new Error("Featurizer: statistics are needed before normalising");
    }
  }

  /** Feature rows [N, P] for one label per example. */
  async rows(x: Tensor, labels: ArrayLike<number>): Promise<Float32Array> {
    return this.normalize(await this.rawRows(x, labels));
  }

  /**
   * Feature rows [N, K, P] for every label (label-major within each example). With
   * `normalize: false` the rows are only sparsified (the feature cache normalises them once the
   * statistics are known).
   */
  async allLabelRows(
    x: Tensor,
    labelChunk = 10,
    o: { normalize?: boolean } = {},
  ): Promise<{ rows: Float32Array; classes: number }> {
    const n = x.shape[0];
    let out: Float32Array | null = null;
    let k = 0;
    for (const b of labelGradientBlocks(this.ops, x, { ...this.gradients, labelChunk })) {
      const [, kk, p] = b.gradients.shape;
      k = b.probabilities.shape[1];
      const block = (await b.gradients.data()) as Float32Array;
      b.gradients.dispose();
      this.sparsified(block);
      if (o.normalize !== false) this.normalize(block);
      // one block of every label is already the [N, K, P] layout: no copy (h = 64: 265 MB a chunk)
      if (kk === k && out === null) return { rows: block, classes: k };
      out ??= new Float32Array(n * k * p);
      for (let i = 0; i < n; i++) {
        out.set(block.subarray(i * kk * p, (i + 1) * kk * p), (i * k + b.labels[0]) * p);
      }
    }
    return { rows: out!, classes: k };
  }
}
