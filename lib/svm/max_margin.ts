/**
 * The multiclass max-margin linear classifier with free biases — the reference the last-layer
 * theory names for K classes:
 *
 *   min_{W,b,ξ} ½ Σ_m ‖w_m‖² + C Σ_{i, m≠y_i} ξ_im
 *   s.t. (w_{y_i} − w_m)·x_i + b_{y_i} − b_m ≥ 1 − ξ_im,  ξ ≥ 0,
 *
 * with C large (1e6 by default): when the data are separable every ξ is 0 and this is the
 * hard-margin SVM; otherwise it is the large-C limit, and `separable` says so. For K = 2 it is
 * the binary hard-margin SVM with a free bias on u = w₁ − w₀ (= 2w₁).
 *
 * Solved in the primal by a log-barrier interior-point method on all n(K−1) constraints at once:
 * the slacks enter the Newton system only through their own diagonal, so each Newton step is a
 * p × p solve (p = K(d + 1)) after one O(n·K·p²) pass — cheap for the low-dimensional features
 * this is used on (coordinate-descent duals crawl at C = 1e6, and cannot keep a free bias).
 * The biases are fixed up to a common shift; Σ b_m = 0 picks one.
 *
 * @example
 * ```ts
 * import { fitMaxMarginMulticlass } from "./max_margin.ts";
 * // one point per class at the corners of an equilateral triangle: w_c = (2/3)·p_c, b = 0
 * const p = [[0, 1], [-Math.sqrt(3) / 2, -0.5], [Math.sqrt(3) / 2, -0.5]];
 * const m = fitMaxMarginMulticlass(p.flat(), [0, 1, 2], 3, 2, 3);
 * if (Math.abs(m.W[0][1] - 2 / 3) > 1e-6 || Math.abs(m.b[0]) > 1e-6) throw new Error("wrong");
 * ```
 *
 * @module
 */

import type { MulticlassSvm } from "./multiclass.ts";

/** Options of {@link fitMaxMarginMulticlass}. */
export interface MaxMarginOptions {
  /** slack penalty; the default 1e6 makes it the hard margin on separable data */
  C?: number;
  /** stop when the barrier's duality-gap bound falls below tol·max(1, objective) */
  tol?: number;
}

/** The fitted classifier, its objective, slacks and the constraint multipliers. */
export interface MaxMarginFit extends MulticlassSvm {
  /** every slack below 1e-6: the hard-margin solution of separable data */
  separable: boolean;
  /** the largest slack ξ */
  maxSlack: number;
  /** ½ Σ‖w_m‖² + C Σ ξ */
  objective: number;
  /** multiplier of constraint (i, m) at index i·K + m (0 for m = y_i) */
  multipliers: Float64Array;
  /** Newton steps taken */
  newtonSteps: number;
}

/** Solves A v = r in place for a symmetric positive definite p × p matrix (Cholesky). */
function choleskySolve(A: Float64Array, r: Float64Array, p: number): Float64Array {
  const L = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * p + j];
      for (let k = 0; k < j; k++) s -= L[i * p + k] * L[j * p + k];
      // a pivot lost to rounding (the barrier's Hessian spans many orders of magnitude near the
      // end) is floored at 1e-13 of its diagonal entry rather than turned into NaN
      if (i === j) L[i * p + i] = Math.sqrt(Math.max(s, 1e-13 * Math.abs(A[i * p + i]), 1e-300));
      else L[i * p + j] = s / L[j * p + j];
    }
  }
  const v = Float64Array.from(r);
  for (let i = 0; i < p; i++) {
    let s = v[i];
    for (let k = 0; k < i; k++) s -= L[i * p + k] * v[k];
    v[i] = s / L[i * p + i];
  }
  for (let i = p - 1; i >= 0; i--) {
    let s = v[i];
    for (let k = i + 1; k < p; k++) s -= L[k * p + i] * v[k];
    v[i] = s / L[i * p + i];
  }
  return v;
}

/**
 * Fits the multiclass max-margin classifier (see the module doc).
 *
 * @param x [n, d] row-major features
 * @param y n labels in 0..K−1
 */
export function fitMaxMarginMulticlass(
  xRaw: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  K: number,
  o: MaxMarginOptions = {},
): MaxMarginFit {
  if (xRaw.length !== n * d) {
    throw new RangeError(`x has ${xRaw.length} values, expected ${n}·${d}`);
  }
  if (y.length !== n) throw new RangeError(`${y.length} labels for ${n} examples`);
  for (let i = 0; i < n; i++) {
    if (!Number.isInteger(y[i]) || y[i] < 0 || y[i] >= K) {
      throw new RangeError(`label ${y[i]} at ${i} is not a class in 0..${K - 1}`);
    }
  }
  const C = o.C ?? 1e6, tol = o.tol ?? 1e-9;
  // The free biases make the problem translation invariant (w unchanged, b_c − w_c·μ): solving on
  // centred features keeps the bias columns of the Newton system from nearly repeating the
  // feature columns — uncentred features far from 0 stalled the centring steps.
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mu[k] += xRaw[i * d + k] / n;
  const x = Float64Array.from({ length: n * d }, (_, q) => xRaw[q] - mu[q % d]);
  const p = K * (d + 1), bOff = K * d; // z = [w_0 … w_{K−1}, b_0 … b_{K−1}]
  // constraints j = (i, m), m ≠ y_i: g_j = a_j·z − 1 + ξ_j with a_j = +x_i at w_{y_i}, −x_i at w_m,
  // +1 at b_{y_i}, −1 at b_m
  const m = n * (K - 1);
  const ci = new Int32Array(m), cm = new Int32Array(m);
  for (let i = 0, j = 0; i < n; i++) {
    for (let c = 0; c < K; c++) {
      if (c === y[i]) continue;
      ci[j] = i;
      cm[j++] = c;
    }
  }
  const margin = (z: Float64Array, j: number) => {
    const i = ci[j], a = y[i], c = cm[j];
    let s = z[bOff + a] - z[bOff + c];
    for (let k = 0; k < d; k++) s += (z[a * d + k] - z[c * d + k]) * x[i * d + k];
    return s;
  };
  // objective part ½‖W‖² + ½(Σb)² (the second term only fixes the common shift of b)
  const quad = (z: Float64Array) => {
    let s = 0, sb = 0;
    for (let k = 0; k < bOff; k++) s += z[k] * z[k];
    for (let c = 0; c < K; c++) sb += z[bOff + c];
    return 0.5 * (s + sb * sb);
  };
  const z = new Float64Array(p);
  const xi = new Float64Array(m).fill(2); // strictly feasible start: g = 1
  const mz = new Float64Array(m);
  // Σ_j w_j a_j a_jᵀ, gathered per ordered class pair as Σ w [x_i; 1][x_i; 1]ᵀ ((d+1)² numbers
  // each) and spread into the four blocks a_j touches: no per-constraint allocation
  const e = d + 1;
  const pairS = new Float64Array(K * K * e * e);
  const ix = (cls: number, k: number) => (k < d ? cls * d + k : bOff + cls);
  const addOuter = (j: number, w: number) => {
    const i = ci[j], base = (y[i] * K + cm[j]) * e * e;
    for (let u = 0; u < e; u++) {
      const xu = u < d ? x[i * d + u] : 1;
      for (let v = 0; v < e; v++) pairS[base + u * e + v] += w * xu * (v < d ? x[i * d + v] : 1);
    }
  };
  const spreadOuter = (H: Float64Array) => {
    for (let a = 0; a < K; a++) {
      for (let c = 0; c < K; c++) {
        if (a === c) continue;
        const base = (a * K + c) * e * e;
        for (let u = 0; u < e; u++) {
          for (let v = 0; v < e; v++) {
            const s = pairS[base + u * e + v];
            H[ix(a, u) * p + ix(a, v)] += s;
            H[ix(c, u) * p + ix(c, v)] += s;
            H[ix(a, u) * p + ix(c, v)] -= s;
            H[ix(c, u) * p + ix(a, v)] -= s;
          }
        }
      }
    }
    pairS.fill(0);
  };
  const addVec = (g: Float64Array, j: number, w: number) => {
    const i = ci[j], a = y[i], c = cm[j];
    for (let k = 0; k < d; k++) {
      g[a * d + k] += w * x[i * d + k];
      g[c * d + k] -= w * x[i * d + k];
    }
    g[bOff + a] += w;
    g[bOff + c] -= w;
  };
  // t·C ≈ 1 at the start: with t = 1 the slack term (C = 1e6) dwarfed the barrier, Newton asked
  // for steps far outside the feasible region, and damped steps of 1e-6 stalled the centring
  let t = Math.min(1, 1 / C), steps = 0, converged = false;
  const tGrowth = 50;
  // the gap bound 2m/t holds only on the central path: an outer step whose centring has not
  // converged is repeated at the same t (up to 5 times) and never ends the solve
  let centred = false, retries = 0;
  for (let outer = 0; outer < 60; outer++) {
    centred = false;
    for (let inner = 0; inner < 100; inner++) {
      steps++;
      // gradient and the Hessian reduced over the slacks
      const H = new Float64Array(p * p);
      const gz = new Float64Array(p);
      for (let k = 0; k < bOff; k++) {
        H[k * p + k] += t;
        gz[k] += t * z[k];
      }
      let sb = 0;
      for (let c = 0; c < K; c++) sb += z[bOff + c];
      for (let u = 0; u < K; u++) {
        gz[bOff + u] += t * sb;
        for (let v = 0; v < K; v++) H[(bOff + u) * p + bOff + v] += t;
      }
      const gxi = new Float64Array(m), Dx = new Float64Array(m), G = new Float64Array(m);
      const rhs = new Float64Array(p);
      for (let j = 0; j < m; j++) {
        mz[j] = margin(z, j);
        const g = mz[j] - 1 + xi[j];
        G[j] = g;
        const ig = 1 / g, ig2 = ig * ig;
        gxi[j] = t * C - ig - 1 / xi[j];
        Dx[j] = ig2 + 1 / (xi[j] * xi[j]);
        addVec(gz, j, -ig);
        // ig2 − ig2²/Dx and ig2·gξ/Dx, written without the cancellation that breaks them once
        // 1/g² ≫ 1/ξ² (a violated constraint of non-separable data at large t·C)
        const gg = g * g, xx = xi[j] * xi[j];
        addOuter(j, 1 / (gg + xx));
        addVec(rhs, j, (gxi[j] * xx) / (gg + xx));
      }
      spreadOuter(H);
      for (let k = 0; k < p; k++) rhs[k] -= gz[k];
      const dz = choleskySolve(H, rhs, p);
      // margins move linearly: a_j·(z + s·dz) = mz_j + s·ad_j
      const ad = new Float64Array(m), dxi = new Float64Array(m);
      let decrement = 0;
      for (let k = 0; k < p; k++) decrement -= gz[k] * dz[k];
      for (let j = 0; j < m; j++) {
        ad[j] = margin(dz, j);
        dxi[j] = (-gxi[j] - ad[j] / (G[j] * G[j])) / Dx[j];
        decrement -= gxi[j] * dxi[j];
      }

      // backtracking: stay strictly feasible, then Armijo on the barrier function
      let s = 1;
      for (let j = 0; j < m; j++) {
        const dg = ad[j] + dxi[j];
        if (dg < 0) s = Math.min(s, (-0.99 * G[j]) / dg);
        if (dxi[j] < 0) s = Math.min(s, (-0.99 * xi[j]) / dxi[j]);
      }
      const along = (st: number): number => {
        const zs = z.map((v, k) => v + st * dz[k]);
        let f = t * quad(zs);
        for (let j = 0; j < m; j++) {
          const xj = xi[j] + st * dxi[j], g = G[j] + st * (ad[j] + dxi[j]);
          if (g <= 0 || xj <= 0) return Infinity;
          f += t * C * xj - Math.log(g) - Math.log(xj);
        }
        return f;
      };
      const f0 = along(0);
      // centred when Newton's decrement (≈ the barrier function's distance to its minimum) is
      // negligible relative to the function itself: at large t an absolute bound is below
      // float64's resolution of it
      if (decrement / 2 < Math.max(1e-10, 1e-13 * Math.abs(f0))) {
        centred = true;
        break;
      }
      for (let ls = 0; ls < 60 && along(s) > f0 - 0.25 * s * decrement; ls++) s *= 0.5;
      for (let k = 0; k < p; k++) z[k] += s * dz[k];
      for (let j = 0; j < m; j++) xi[j] += s * dxi[j];
    }
    if (!centred) {
      if (++retries > 5) break;
      outer--;
      continue;
    }
    // the barrier's duality-gap bound is 2m/t
    let slackCost = 0;
    for (let j = 0; j < m; j++) slackCost += C * xi[j];
    if ((2 * m) / t < tol * Math.max(1, quad(z) + slackCost)) {
      converged = true;
      break;
    }
    t *= tGrowth;
  }
  if (!converged) {
    throw new Error(
      centred
        ? `max-margin solver: the barrier did not close its gap (bound ${(2 * m) / t})`
        : `max-margin solver: Newton's method did not centre at t = ${t} (badly scaled features?)`,
    );
  }
  let maxSlack = 0, slackSum = 0;
  const multipliers = new Float64Array(n * K);
  for (let j = 0; j < m; j++) {
    maxSlack = Math.max(maxSlack, xi[j]);
    slackSum += xi[j];
    multipliers[ci[j] * K + cm[j]] = 1 / (t * (margin(z, j) - 1 + xi[j]));
  }
  const W = Array.from({ length: K }, (_, c) => z.slice(c * d, (c + 1) * d));
  const b = z.slice(bOff);
  for (let c = 0; c < K; c++) for (let k = 0; k < d; k++) b[c] -= W[c][k] * mu[k];
  let wsq = 0;
  for (let k = 0; k < bOff; k++) wsq += z[k] * z[k];
  return {
    W,
    b,
    classes: K,
    gap: (2 * m) / t,
    converged,
    iterations: steps,
    separable: maxSlack < 1e-6,
    maxSlack,
    objective: 0.5 * wsq + C * slackSum,
    multipliers,
    newtonSteps: steps,
  };
}
