/**
 * The numbers "last layer = SVM" is judged by, in the 2-D feature space φ: the angle between the
 * network's last-layer direction and the SVM's, where each boundary sits relative to the other and
 * to the midpoint of the two classes' closest points, and how often the two classify a grid of
 * points alike.
 *
 * @module
 */

/** A linear classifier on 2-D features: scores s_k(φ) = W[k]·φ + b[k] (W: [K][2]). */
export interface Linear2 {
  /** one 2-D weight vector per class */
  W: number[][];
  /** one bias per class */
  b: number[];
}

/** The binary direction and offset of a two-class linear classifier: (w1 − w0, b1 − b0). */
export function binaryOf(m: Linear2, pos = 1, neg = 0): { w: [number, number]; b: number } {
  return {
    w: [m.W[pos][0] - m.W[neg][0], m.W[pos][1] - m.W[neg][1]],
    b: m.b[pos] - m.b[neg],
  };
}

/** Angle in degrees between two 2-D directions (0 when parallel and equally oriented). */
export function angleDeg(u: ArrayLike<number>, v: ArrayLike<number>): number {
  const nu = Math.hypot(u[0], u[1]), nv = Math.hypot(v[0], v[1]);
  if (nu === 0 || nv === 0) return NaN;
  const c = Math.max(-1, Math.min(1, (u[0] * v[0] + u[1] * v[1]) / (nu * nv)));
  return (Math.acos(c) * 180) / Math.PI;
}

/** Signed distance of point p from the line w·φ + b = 0 (positive on the positive side). */
export function signedDistance(w: ArrayLike<number>, b: number, p: ArrayLike<number>): number {
  return (w[0] * p[0] + w[1] * p[1] + b) / Math.hypot(w[0], w[1]);
}

/**
 * Where a boundary w·φ + b = 0 sits relative to a reference SVM (w_s, b_s), measured along the
 * SVM's normal in units of its margin 1/‖w_s‖ and signed: 0 on the SVM's boundary, +1 on its
 * positive margin hyperplane (w_s·φ + b_s = +1), −1 on the negative one. In 2-D two lines that are
 * not parallel cross somewhere, so the offset is read at one place: `at`, a point projected first
 * onto the SVM's boundary — the middle of the support vectors is where the margin is decided.
 * NaN when the boundary is parallel to the SVM's normal.
 *
 * @example
 * ```ts
 * import { marginOffset } from "./geometry.ts";
 * // SVM boundary x = 1, margin ½ (w = (2, 0)); a boundary at x = 1.25 is half a margin across
 * const off = marginOffset({ w: [1, 0], b: -1.25 }, { w: [2, 0], b: -2 }, [0, 0]);
 * if (Math.abs(off - 0.5) > 1e-12) throw new Error(`offset ${off}`);
 * ```
 */
export function marginOffset(
  boundary: { w: ArrayLike<number>; b: number },
  svm: { w: ArrayLike<number>; b: number },
  at: ArrayLike<number>,
): number {
  const [s0, s1] = [svm.w[0], svm.w[1]];
  const ss = s0 * s0 + s1 * s1;
  if (ss === 0) return NaN;
  // c: `at` moved along the SVM's normal onto its boundary
  const fs = s0 * at[0] + s1 * at[1] + svm.b;
  const c0 = at[0] - (fs * s0) / ss, c1 = at[1] - (fs * s1) / ss;
  // c + t·w_s/‖w_s‖ lies on the boundary: t = −f(c)·‖w_s‖ / (w·w_s); in margin units × ‖w_s‖
  const along = boundary.w[0] * s0 + boundary.w[1] * s1;
  if (along === 0) return NaN;
  const fc = boundary.w[0] * c0 + boundary.w[1] * c1 + boundary.b;
  return (-fc * ss) / along;
}

/**
 * The closest pair of points between class `a` and class `b` (brute force over a subsample of at
 * most `cap` points per class; only the points `keep` accepts, when given) and its midpoint.
 */
export function closestPair(
  phi: ArrayLike<number>,
  labels: ArrayLike<number>,
  a: number,
  b: number,
  o: { keep?: (i: number) => boolean; cap?: number } = {},
): { p: [number, number]; q: [number, number]; mid: [number, number]; distance: number } {
  const cap = o.cap ?? 8000;
  const pick = (c: number) => {
    const idx: number[] = [];
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === c && (!o.keep || o.keep(i))) idx.push(i);
    }
    if (idx.length <= cap) return idx;
    const step = idx.length / cap;
    return Array.from({ length: cap }, (_, k) => idx[Math.floor(k * step)]);
  };
  const A = pick(a), B = pick(b);
  if (!A.length || !B.length) {
    throw new RangeError(`closestPair: class ${A.length ? b : a} is empty`);
  }
  let best = Infinity, bi = A[0], bj = B[0];
  for (const i of A) {
    const x = phi[2 * i], y = phi[2 * i + 1];
    for (const j of B) {
      const d = (x - phi[2 * j]) ** 2 + (y - phi[2 * j + 1]) ** 2;
      if (d < best) {
        best = d;
        bi = i;
        bj = j;
      }
    }
  }
  const p: [number, number] = [phi[2 * bi], phi[2 * bi + 1]],
    q: [number, number] = [phi[2 * bj], phi[2 * bj + 1]];
  return { p, q, mid: [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2], distance: Math.sqrt(best) };
}

/** The box holding all points, widened by `pad` of its size on each side. */
export function boundingBox(phi: ArrayLike<number>, pad = 0.1): [number, number, number, number] {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < phi.length; i += 2) {
    x0 = Math.min(x0, phi[i]);
    x1 = Math.max(x1, phi[i]);
    y0 = Math.min(y0, phi[i + 1]);
    y1 = Math.max(y1, phi[i + 1]);
  }
  const dx = Math.max(x1 - x0, 1e-6) * pad, dy = Math.max(y1 - y0, 1e-6) * pad;
  return [x0 - dx, x1 + dx, y0 - dy, y1 + dy];
}

/** The class each classifier gives a point. */
export function predict2(m: Linear2, x: number, y: number): number {
  let best = -Infinity, arg = 0;
  for (let k = 0; k < m.W.length; k++) {
    const s = m.W[k][0] * x + m.W[k][1] * y + m.b[k];
    if (s > best) {
      best = s;
      arg = k;
    }
  }
  return arg;
}

/** Fraction of `count` points drawn uniformly in `box` (seeded) that two classifiers label alike. */
export function gridAgreement(
  a: Linear2,
  b: Linear2,
  box: [number, number, number, number],
  count = 30000,
): number {
  let same = 0;
  // A low-discrepancy (Halton 2,3) sample: deterministic and even.
  for (let i = 1; i <= count; i++) {
    const u = halton(i, 2), v = halton(i, 3);
    const x = box[0] + u * (box[1] - box[0]), y = box[2] + v * (box[3] - box[2]);
    if (predict2(a, x, y) === predict2(b, x, y)) same++;
  }
  return same / count;
}

function halton(i: number, base: number): number {
  let f = 1, r = 0;
  while (i > 0) {
    f /= base;
    r += f * (i % base);
    i = Math.floor(i / base);
  }
  return r;
}

/** Class regions of a classifier on a grid (for heat maps): z[row][col] over xs × ys. */
export function regionGrid(
  m: Linear2,
  box: [number, number, number, number],
  size = 120,
): { xs: number[]; ys: number[]; z: number[][] } {
  const xs = Array.from({ length: size }, (_, i) => box[0] + ((box[1] - box[0]) * i) / (size - 1));
  const ys = Array.from({ length: size }, (_, i) => box[2] + ((box[3] - box[2]) * i) / (size - 1));
  return { xs, ys, z: ys.map((y) => xs.map((x) => predict2(m, x, y))) };
}
