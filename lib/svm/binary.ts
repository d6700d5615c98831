/**
 * Binary linear SVMs in the dual, written here:
 *
 *   min_{w,b} ½‖w‖² + C Σ_i ξ(1 − y_i(w·x_i + b)),  ξ(t) = max(0, t) (hinge) or max(0, t)² (squared)
 *
 * - `bias: "regularized"` (LIBLINEAR's and scikit-learn's LinearSVC convention): x is augmented with
 *   a constant feature `biasScale`, so b is penalised like w. Solved by dual coordinate descent
 *   (Hsieh et al. 2008): one α_i at a time, w kept up to date, random order each sweep.
 * - `bias: "free"` (the textbook SVM; hard margin as C → ∞): the dual gains the constraint
 *   Σ α_i y_i = 0, so coordinates move in pairs (SMO with LIBSVM's second-order pair selection),
 *   still keeping w explicitly (linear kernel).
 * - `bias: "none"`: a hyperplane through the origin (implicit-bias theory without intercept).
 *
 * Both stop when the duality gap P(w, b) − D(α) falls under `tol`·max(1, |P|), and return the
 * dual variables, the support vectors and the gap. Duplicated points and a class collapsed onto a
 * single point are fine (the dual is then simply degenerate).
 *
 * @module
 */

import { Rng } from "../util/rng.ts";

/** Loss: hinge (L1-loss SVM) or squared hinge (L2-loss SVM). */
export type SvmLoss = "hinge" | "squared_hinge";
/** How the intercept is treated. */
export type BiasMode = "free" | "regularized" | "none";

/** Options of {@link fitBinarySvm}. */
export interface BinarySvmOptions {
  /** slack penalty (default 1; 1e6 ≈ hard margin) */
  C?: number;
  /** hinge or squared hinge (default squared hinge, as LinearSVC) */
  loss?: SvmLoss;
  /** free, regularised (default) or none */
  bias?: BiasMode;
  /** value of the constant feature for `bias: "regularized"` (scikit-learn's intercept_scaling) */
  biasScale?: number;
  /** relative duality-gap tolerance */
  tol?: number;
  /** sweeps (coordinate descent) or pair updates ÷ n (SMO) before giving up */
  maxIter?: number;
  /** seed of the coordinate order */
  seed?: number;
}

/** A fitted binary SVM: decision f(x) = w·x + b, positive class where f > 0. */
export interface BinarySvm {
  /** weights */
  w: Float64Array;
  /** intercept */
  b: number;
  /** dual variables */
  alpha: Float64Array;
  /** indices of the examples with α > 0 */
  supportVectors: number[];
  /** primal objective at exit */
  primal: number;
  /** dual objective at exit */
  dual: number;
  /** P − D ≥ 0 */
  gap: number;
  /** sweeps (coordinate descent) or pair updates (SMO) */
  iterations: number;
  /** the gap reached the tolerance */
  converged: boolean;
}

/** Labels as ±1 from {−1, +1}, {0, 1} or booleans. */
export function signs(y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    if (y[i] === 1) out[i] = 1;
    else if (y[i] === 0 || y[i] === -1) out[i] = -1;
    else throw new RangeError(`binary SVM labels must be 0/1 or ±1, got ${y[i]} at ${i}`);
  }
  return out;
}

function dot(x: ArrayLike<number>, o: number, w: Float64Array, d: number): number {
  let s = 0;
  for (let k = 0; k < d; k++) s += x[o + k] * w[k];
  return s;
}

/** Primal objective with the regularised augmented weight (b penalised via its feature). */
function primalValue(
  x: ArrayLike<number>,
  y: Float64Array,
  d: number,
  w: Float64Array,
  b: number,
  C: number,
  loss: SvmLoss,
  extraReg: number,
): number {
  let reg = extraReg;
  for (let k = 0; k < d; k++) reg += w[k] * w[k];
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    const t = 1 - y[i] * (dot(x, i * d, w, d) + b);
    if (t > 0) sum += loss === "hinge" ? t : t * t;
  }
  return 0.5 * reg + C * sum;
}

/**
 * Fits a binary linear SVM.
 *
 * @example
 * ```ts
 * import { fitBinarySvm } from "./binary.ts";
 * // two points, hard margin, free bias: w = 2(x₊ − x₋)/‖x₊ − x₋‖², the boundary at their midpoint
 * const m = fitBinarySvm([3, 1, 1, 1], [1, -1], 2, 2, { C: 1e6, loss: "hinge", bias: "free" });
 * if (Math.abs(m.w[0] - 1) > 1e-6 || Math.abs(m.w[1]) > 1e-6 || Math.abs(m.b + 2) > 1e-6) {
 *   throw new Error(`w ${m.w}, b ${m.b}`);
 * }
 * ```
 *
 * @param x [n, d] row-major features
 * @param y n labels (0/1 or ±1)
 */
export function fitBinarySvm(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  o: BinarySvmOptions = {},
): BinarySvm {
  if (x.length !== n * d) throw new RangeError(`x has ${x.length} values, expected ${n}·${d}`);
  if (y.length !== n) throw new RangeError(`${y.length} labels for ${n} examples`);
  const ys = signs(y);
  const bias = o.bias ?? "regularized";
  if (bias === "free") {
    if (!ys.some((v) => v > 0) || !ys.some((v) => v < 0)) {
      throw new RangeError("an SVM with a free bias needs examples of both classes");
    }
    return smo(x, ys, n, d, o);
  }
  return dcd(x, ys, n, d, o);
}

/**
 * Dual coordinate descent (LIBLINEAR), bias regularised through an augmented feature, or none.
 *
 * With LIBLINEAR's shrinking: a variable at a bound whose gradient points outward beyond last
 * sweep's extreme projected gradients leaves the active set. When the projected gradients of the
 * active set span less than `pgTol`, all variables return; if they also agree, the duality gap is
 * checked, and `pgTol` tightened tenfold while the gap is still above `tol`.
 */
function dcd(
  xIn: ArrayLike<number>,
  y: Float64Array,
  n: number,
  d: number,
  o: BinarySvmOptions,
): BinarySvm {
  const C = o.C ?? 1, loss = o.loss ?? "squared_hinge", tol = o.tol ?? 1e-4;
  const B = (o.bias ?? "regularized") === "regularized" ? (o.biasScale ?? 1) : 0;
  const U = loss === "hinge" ? C : Infinity;
  const Dii = loss === "hinge" ? 0 : 1 / (2 * C);
  // one monomorphic, double-precision copy: the inner loops below are the whole cost
  const x = xIn instanceof Float64Array ? xIn : Float64Array.from(xIn);
  const w = new Float64Array(d);
  let wb = 0; // weight of the constant feature: b = wb·B
  const alpha = new Float64Array(n);
  const qd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = B * B + Dii;
    for (let k = 0, o = i * d; k < d; k++) s += x[o + k] * x[o + k];
    qd[i] = s;
  }
  const rng = new Rng(o.seed ?? 0);
  const index = Int32Array.from({ length: n }, (_, i) => i);
  let active = n;
  let pgMaxOld = Infinity, pgMinOld = -Infinity;
  let pgTol = 0.1;
  const maxIter = o.maxIter ?? 1000;
  let iter = 0, primal = 0, dual = 0, converged = false;
  for (; iter < maxIter; iter++) {
    // Fisher–Yates over the active part
    for (let s = active - 1; s > 0; s--) {
      const r = rng.int(s + 1), t = index[s];
      index[s] = index[r];
      index[r] = t;
    }
    let pgMax = -Infinity, pgMin = Infinity;
    for (let s = 0; s < active; s++) {
      const i = index[s], off = i * d;
      const G = y[i] * (dot64(w, x, off, d) + wb * B) - 1 + Dii * alpha[i];
      let pg = 0;
      if (alpha[i] === 0) {
        if (G > pgMaxOld) {
          index[s--] = index[--active];
          index[active] = i;
          continue;
        }
        if (G < 0) pg = G;
      } else if (alpha[i] === U) {
        if (G < pgMinOld) {
          index[s--] = index[--active];
          index[active] = i;
          continue;
        }
        if (G > 0) pg = G;
      } else pg = G;
      if (pg > pgMax) pgMax = pg;
      if (pg < pgMin) pgMin = pg;
      if (Math.abs(pg) < 1e-15 || qd[i] === 0) continue;
      const old = alpha[i];
      alpha[i] = Math.min(Math.max(old - G / qd[i], 0), U);
      const delta = (alpha[i] - old) * y[i];
      axpy64(delta, x, off, w, d);
      wb += delta * B;
    }
    if (pgMax - pgMin <= pgTol) {
      if (active < n) { // unshrink and verify on every variable
        active = n;
        pgMaxOld = Infinity;
        pgMinOld = -Infinity;
        continue;
      }
      ({ primal, dual } = dcdObjectives(x, y, n, d, w, wb, B, alpha, C, loss));
      if (primal - dual <= tol * Math.max(1, Math.abs(primal))) {
        converged = true;
        iter++;
        break;
      }
      pgTol /= 10;
    }
    pgMaxOld = pgMax > 0 ? pgMax : Infinity;
    pgMinOld = pgMin < 0 ? pgMin : -Infinity;
  }
  if (!converged) ({ primal, dual } = dcdObjectives(x, y, n, d, w, wb, B, alpha, C, loss));
  return finish(w, wb * B, alpha, primal, dual, iter, converged);
}

/** w·x[off, off + d), four accumulators (the loop is latency-bound otherwise). */
function dot64(w: Float64Array, x: Float64Array, off: number, d: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
  for (; k + 3 < d; k += 4) {
    s0 += w[k] * x[off + k];
    s1 += w[k + 1] * x[off + k + 1];
    s2 += w[k + 2] * x[off + k + 2];
    s3 += w[k + 3] * x[off + k + 3];
  }
  for (; k < d; k++) s0 += w[k] * x[off + k];
  return (s0 + s1) + (s2 + s3);
}

/** w += a·x[off, off + d). */
function axpy64(a: number, x: Float64Array, off: number, w: Float64Array, d: number): void {
  let k = 0;
  for (; k + 3 < d; k += 4) {
    w[k] += a * x[off + k];
    w[k + 1] += a * x[off + k + 1];
    w[k + 2] += a * x[off + k + 2];
    w[k + 3] += a * x[off + k + 3];
  }
  for (; k < d; k++) w[k] += a * x[off + k];
}

function dcdObjectives(
  x: Float64Array,
  y: Float64Array,
  n: number,
  d: number,
  w: Float64Array,
  wb: number,
  B: number,
  alpha: Float64Array,
  C: number,
  loss: SvmLoss,
): { primal: number; dual: number } {
  let aSum = 0, aSq = 0;
  for (let i = 0; i < n; i++) {
    aSum += alpha[i];
    aSq += alpha[i] * alpha[i];
  }
  let wsq = wb * wb;
  for (let k = 0; k < d; k++) wsq += w[k] * w[k];
  const dual = aSum - 0.5 * wsq - (loss === "squared_hinge" ? aSq / (4 * C) : 0);
  return { primal: primalValue(x, y, d, w, wb * B, C, loss, wb * wb), dual };
}

function finish(
  w: Float64Array,
  b: number,
  alpha: Float64Array,
  primal: number,
  dual: number,
  iterations: number,
  converged: boolean,
): BinarySvm {
  const supportVectors: number[] = [];
  alpha.forEach((a, i) => {
    if (a > 1e-12) supportVectors.push(i);
  });
  return { w, b, alpha, supportVectors, primal, dual, gap: primal - dual, iterations, converged };
}

/** SMO stopped at its pair-update cap before its duality gap reached the tolerance. */
export class SvmNotConvergedError extends Error {
  /** the error's name */
  override name = "SvmNotConvergedError";
}

/**
 * SMO with a free bias: min ½αᵀQ̄α − Σα s.t. yᵀα = 0, 0 ≤ α ≤ U, moving pairs chosen by LIBSVM's
 * second-order rule. ∇_i = y_i w·x_i − 1 + D_ii α_i is updated incrementally from the two kernel
 * rows of the moved pair, O(n) per update once the rows are cached (LIBSVM's scheme; hard-margin
 * problems keep revisiting the same few support vectors), and recomputed from w at every gap check
 * so rounding cannot drift. Hitting the cap throws {@link SvmNotConvergedError}.
 */
function smo(
  x: ArrayLike<number>,
  y: Float64Array,
  n: number,
  d: number,
  o: BinarySvmOptions,
): BinarySvm {
  const C = o.C ?? 1, loss = o.loss ?? "squared_hinge", tol = o.tol ?? 1e-4;
  const U = loss === "hinge" ? C : Infinity;
  const Dii = loss === "hinge" ? 0 : 1 / (2 * C);
  const w = new Float64Array(d);
  const alpha = new Float64Array(n);
  const grad = new Float64Array(n).fill(-1);
  const kd = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = Dii;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    kd[i] = s;
  }
  const maxPairs = (o.maxIter ?? 1000) * Math.max(n, 100);
  // kernel rows x_i·x_t, least recently used dropped first, up to 64 MiB
  const capacity = Math.max(2, Math.floor((64 * 2 ** 20) / (8 * n)));
  const rows = new Map<number, Float64Array>();
  const kernelRow = (i: number): Float64Array => {
    let r = rows.get(i);
    if (r) {
      rows.delete(i);
    } else {
      r = new Float64Array(n);
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += x[i * d + k] * x[t * d + k];
        r[t] = s;
      }
      if (rows.size >= capacity) rows.delete(rows.keys().next().value!);
    }
    rows.set(i, r);
    return r;
  };
  // Maximal KKT violation (in units of the margin) at which the dual counts as solved exactly;
  // with a huge C (hard margin) the duality gap is then dominated by rounding.
  const eps = 1e-9;
  let it = 0, primal = 0, dual = 0, b = 0, converged = false;
  const checkEvery = Math.max(10, Math.floor(n / 2));
  for (; it < maxPairs; it++) {
    // i: maximal −y_i∇_i over I_up
    let gmax = -Infinity, i = -1;
    for (let t = 0; t < n; t++) {
      const up = y[t] > 0 ? alpha[t] < U : alpha[t] > 0;
      if (up && -y[t] * grad[t] >= gmax) {
        gmax = -y[t] * grad[t];
        i = t;
      }
    }
    // j: second order over I_low with −y_t∇_t < gmax
    let gmin = Infinity, best = Infinity, j = -1;
    const Ki = i >= 0 ? kernelRow(i) : null;
    for (let t = 0; t < n; t++) {
      const low = y[t] > 0 ? alpha[t] > 0 : alpha[t] < U;
      if (!low) continue;
      const v = -y[t] * grad[t];
      if (v < gmin) gmin = v;
      const bdiff = gmax - v;
      if (bdiff > 0 && Ki) {
        let a = kd[i] + kd[t] - 2 * Ki[t];
        if (a <= 0) a = 1e-12;
        const score = -(bdiff * bdiff) / a;
        if (score <= best) {
          best = score;
          j = t;
        }
      }
    }
    const stop = i < 0 || j < 0 || gmax - gmin < eps;
    if (stop || it % checkEvery === 0) {
      for (let t = 0; t < n; t++) grad[t] = y[t] * dot(x, t * d, w, d) - 1 + Dii * alpha[t];
      b = biasFromGradient(y, grad, alpha, U);
      ({ primal, dual } = gapSmo(x, y, n, d, w, b, alpha, C, loss));
      if (primal - dual <= tol * Math.max(1, Math.abs(primal))) {
        converged = true;
        break;
      }
      if (stop) {
        converged = i < 0 || j < 0 || gmax - gmin < eps;
        break;
      }
    }
    // analytic two-variable update along y_i·Δα_i = −y_j·Δα_j
    const Kj = kernelRow(j);
    let quad = kd[i] + kd[j] - 2 * Kj[i];
    if (quad <= 0) quad = 1e-12;
    const ai = alpha[i], aj = alpha[j];
    // step in the direction that increases y_i α_i, decreases y_j α_j by the same amount
    let step = (-y[i] * grad[i] + y[j] * grad[j]) / quad;
    // box constraints: α_i + y_i step ∈ [0, U], α_j − y_j step ∈ [0, U]
    const clip = (lo: number, hi: number) => (step = Math.min(Math.max(step, lo), hi));
    if (y[i] > 0) clip(-ai, U - ai);
    else clip(ai - U, ai);
    if (y[j] > 0) clip(aj - U, aj);
    else clip(-aj, U - aj);
    alpha[i] = ai + y[i] * step;
    alpha[j] = aj - y[j] * step;
    const di = (alpha[i] - ai) * y[i], dj = (alpha[j] - aj) * y[j];
    for (let k = 0; k < d; k++) w[k] += di * x[i * d + k] + dj * x[j * d + k];
    const Kin = kernelRow(i); // still cached: used for this pair's selection
    for (let t = 0; t < n; t++) grad[t] += y[t] * (di * Kin[t] + dj * Kj[t]);
    grad[i] += Dii * (alpha[i] - ai);
    grad[j] += Dii * (alpha[j] - aj);
  }
  for (let t = 0; t < n; t++) grad[t] = y[t] * dot(x, t * d, w, d) - 1 + Dii * alpha[t];
  b = biasFromGradient(y, grad, alpha, U);
  ({ primal, dual } = gapSmo(x, y, n, d, w, b, alpha, C, loss));
  if (!converged) {
    throw new SvmNotConvergedError(
      `SMO stopped after ${it} pair updates (its cap, maxIter ${o.maxIter ?? 1000} × n) with ` +
        `duality gap ${(primal - dual).toExponential(2)} above tol ${tol} × |primal|: raise ` +
        `maxIter or loosen tol`,
    );
  }
  return finish(w, b, alpha, primal, dual, it, converged);
}

/** b from the KKT conditions: the mean over free SVs of −y_i∇_i, else the middle of its bounds. */
function biasFromGradient(
  y: Float64Array,
  grad: Float64Array,
  alpha: Float64Array,
  U: number,
): number {
  let sum = 0, count = 0, ub = Infinity, lb = -Infinity;
  for (let t = 0; t < y.length; t++) {
    const v = -y[t] * grad[t];
    if (alpha[t] > 0 && alpha[t] < U) {
      sum += v;
      count++;
    } else {
      // at a bound, v bounds b from one side
      const up = y[t] > 0 ? alpha[t] < U : alpha[t] > 0;
      if (up) lb = Math.max(lb, v);
      else ub = Math.min(ub, v);
    }
  }
  if (count) return sum / count;
  return Number.isFinite(ub) && Number.isFinite(lb) ? (ub + lb) / 2 : Number.isFinite(ub) ? ub : lb;
}

function gapSmo(
  x: ArrayLike<number>,
  y: Float64Array,
  n: number,
  d: number,
  w: Float64Array,
  b: number,
  alpha: Float64Array,
  C: number,
  loss: SvmLoss,
): { primal: number; dual: number } {
  let aSum = 0, aSq = 0, wsq = 0;
  for (let i = 0; i < n; i++) {
    aSum += alpha[i];
    aSq += alpha[i] * alpha[i];
  }
  for (let k = 0; k < d; k++) wsq += w[k] * w[k];
  const dual = aSum - 0.5 * wsq - (loss === "squared_hinge" ? aSq / (4 * C) : 0);
  return { primal: primalValue(x, y, d, w, b, C, loss, 0), dual };
}

/** f(x) = w·x + b for every row of x. */
export function decisionFunction(
  m: { w: ArrayLike<number>; b: number },
  x: ArrayLike<number>,
  n: number,
  d: number,
): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = m.b;
    for (let k = 0; k < d; k++) s += m.w[k] * x[i * d + k];
    out[i] = s;
  }
  return out;
}
