/**
 * Multi-class linear SVMs: one-vs-rest (a binary SVM per class) and Crammer–Singer,
 *
 *   min_W ½ Σ_m ‖w_m‖² + C Σ_i max_m (1 − δ_{m,y_i} + w_m·x_i − w_{y_i}·x_i),
 *
 * solved in the dual by LIBLINEAR's sequential method (Keerthi et al. 2008): each example's K dual
 * variables (Σ_m α_i^m = 0, α_i^m ≤ C·δ_{m,y_i}) are optimised exactly in turn, w_m = Σ_i α_i^m x_i.
 * A bias, when asked for, is a constant feature (regularised, as in LIBLINEAR).
 *
 * @module
 */

import { type BinarySvm, type BinarySvmOptions, fitBinarySvm } from "./binary.ts";
import { Rng } from "../util/rng.ts";

/** A multi-class linear model: scores s_m(x) = W[m]·x + b[m], prediction argmax. */
export interface MulticlassSvm {
  /** one weight vector per class */
  W: Float64Array[];
  /** one intercept per class */
  b: Float64Array;
  /** number of classes */
  classes: number;
  /** duality gap (or its bound) at exit */
  gap: number;
  /** the gap reached the tolerance */
  converged: boolean;
  /** iterations (solver-specific) */
  iterations: number;
}

/** One binary SVM per class (class m vs the rest). */
export function fitOneVsRest(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  K: number,
  o: BinarySvmOptions = {},
): MulticlassSvm & { models: BinarySvm[] } {
  const models: BinarySvm[] = [];
  for (let m = 0; m < K; m++) {
    const ym = new Float64Array(n);
    for (let i = 0; i < n; i++) ym[i] = y[i] === m ? 1 : -1;
    models.push(fitBinarySvm(x, ym, n, d, o));
  }
  return {
    W: models.map((m) => m.w),
    b: Float64Array.from(models, (m) => m.b),
    classes: K,
    gap: Math.max(...models.map((m) => m.gap)),
    converged: models.every((m) => m.converged),
    iterations: Math.max(...models.map((m) => m.iterations)),
    models,
  };
}

/** Options of {@link fitCrammerSinger}. */
export interface CrammerSingerOptions {
  /** slack penalty (default 1) */
  C?: number;
  /** "regularized": a constant feature of value `biasScale`; "none": no intercept */
  bias?: "regularized" | "none";
  /** value of the constant feature (default 1) */
  biasScale?: number;
  /** relative duality-gap tolerance */
  tol?: number;
  /** sweeps before giving up */
  maxIter?: number;
  /** seed of the example order */
  seed?: number;
}

/**
 * Crammer–Singer multi-class SVM (see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitCrammerSinger, predictMulticlass } from "./multiclass.ts";
 * // three classes around (4, 0), (−4, 0) and (0, 4): a point and two neighbours each
 * const centres = [[4, 0], [-4, 0], [0, 4]];
 * const x = centres.flatMap(([a, b]) => [a, b, a + 0.5, b, a, b + 0.5]);
 * const y = [0, 0, 0, 1, 1, 1, 2, 2, 2];
 * const svm = fitCrammerSinger(x, y, 9, 2, 3, { C: 10 });
 * assert.ok(svm.converged);
 * assert.deepEqual(Array.from(predictMulticlass(svm, x, 9, 2)), y);
 * ```
 */
export function fitCrammerSinger(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  K: number,
  o: CrammerSingerOptions = {},
): MulticlassSvm & { alpha: Float64Array[] } {
  const C = o.C ?? 1, tol = o.tol ?? 1e-4;
  const B = (o.bias ?? "regularized") === "regularized" ? (o.biasScale ?? 1) : 0;
  const D = d + (B ? 1 : 0);
  const feat = (i: number, k: number) => (k < d ? x[i * d + k] : B);
  const W = Array.from({ length: K }, () => new Float64Array(D));
  const alpha = Array.from({ length: n }, () => new Float64Array(K));
  const A = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += feat(i, k) ** 2;
    A[i] = s;
  }
  const G = new Float64Array(K), Bv = new Float64Array(K), next = new Float64Array(K);
  const rng = new Rng(o.seed ?? 0);
  const order = Array.from({ length: n }, (_, i) => i);
  const maxIter = o.maxIter ?? 1000;
  let iter = 0, gap = Infinity, converged = false;
  for (; iter < maxIter; iter++) {
    rng.shuffle(order);
    for (const i of order) {
      if (A[i] === 0) continue;
      const yi = y[i];
      for (let m = 0; m < K; m++) {
        let s = m === yi ? 0 : 1;
        for (let k = 0; k < D; k++) s += W[m][k] * feat(i, k);
        G[m] = s;
      }
      // optimality of this block: max_m G over the free side vs min over the movable side
      let minG = Infinity, maxG = -Infinity;
      for (let m = 0; m < K; m++) {
        if (alpha[i][m] < 0 && G[m] < minG) minG = G[m];
        if (G[m] > maxG) maxG = G[m];
      }
      if (alpha[i][yi] < C && G[yi] < minG) minG = G[yi];
      if (maxG - minG <= 1e-12) continue;
      for (let m = 0; m < K; m++) Bv[m] = G[m] - A[i] * alpha[i][m];
      solveSubproblem(A[i], yi, C, Bv, next, K);
      for (let m = 0; m < K; m++) {
        const delta = next[m] - alpha[i][m];
        if (delta === 0) continue;
        alpha[i][m] = next[m];
        for (let k = 0; k < D; k++) W[m][k] += delta * feat(i, k);
      }
    }
    // duality gap: P = ½ΣW² + C Σ_i max_m(e_i^m + W_m·x_i − W_yi·x_i), D = −½ΣW² − Σ e_i^m α_i^m
    let wsq = 0;
    for (const w of W) for (let k = 0; k < D; k++) wsq += w[k] * w[k];
    let loss = 0, lin = 0;
    for (let i = 0; i < n; i++) {
      const yi = y[i];
      let sy = 0;
      for (let k = 0; k < D; k++) sy += W[yi][k] * feat(i, k);
      let worst = 0;
      for (let m = 0; m < K; m++) {
        if (m === yi) continue;
        let sm = 1;
        for (let k = 0; k < D; k++) sm += W[m][k] * feat(i, k);
        worst = Math.max(worst, sm - sy);
        lin += alpha[i][m];
      }
      loss += worst;
    }
    const primal = 0.5 * wsq + C * loss, dual = -0.5 * wsq - lin;
    gap = primal - dual;
    if (gap <= tol * Math.max(1, Math.abs(primal))) {
      converged = true;
      iter++;
      break;
    }
  }
  return {
    W: W.map((w) => w.slice(0, d)),
    b: Float64Array.from(W, (w) => (B ? w[d] * B : 0)),
    classes: K,
    gap,
    converged,
    iterations: iter,
    alpha,
  };
}

/**
 * The exact minimiser of one example's sub-problem (LIBLINEAR's solve_sub_problem):
 * min Σ_m ½A α_m² + B_m α_m  s.t. Σ α_m = 0, α_m ≤ C·δ_{m,y}.
 */
function solveSubproblem(
  A: number,
  yi: number,
  C: number,
  B: Float64Array,
  out: Float64Array,
  K: number,
): void {
  const D = Array.from(B);
  D[yi] += A * C;
  D.sort((p, q) => q - p);
  let beta = D[0] - A * C;
  let r = 1;
  for (; r < K && beta < r * D[r]; r++) beta += D[r];
  beta /= r;
  for (let m = 0; m < K; m++) {
    out[m] = m === yi ? Math.min(C, (beta - B[m]) / A) : Math.min(0, (beta - B[m]) / A);
  }
}

/** Scores [n, K] and predictions of a multi-class linear model. */
export function predictMulticlass(
  m: { W: ArrayLike<number>[]; b: ArrayLike<number> },
  x: ArrayLike<number>,
  n: number,
  d: number,
): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity, arg = 0;
    for (let c = 0; c < m.W.length; c++) {
      let s = m.b[c];
      for (let k = 0; k < d; k++) s += m.W[c][k] * x[i * d + k];
      if (s > best) {
        best = s;
        arg = c;
      }
    }
    out[i] = arg;
  }
  return out;
}
