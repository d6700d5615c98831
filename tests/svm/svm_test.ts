/** The linear SVM solvers against hand-solved cases, KKT conditions and a brute-force search. */

import assert from "node:assert";
import { decisionFunction, fitBinarySvm, SvmNotConvergedError } from "../../lib/svm/binary.ts";
import { fitCrammerSinger, fitOneVsRest, predictMulticlass } from "../../lib/svm/multiclass.ts";
import { gaussianBlobs } from "../../lib/data/synthetic.ts";
import { Rng } from "../../lib/util/rng.ts";

const HARD = { C: 1e6, loss: "hinge" as const, bias: "free" as const, tol: 1e-6, maxIter: 5000 };

function close(a: number, b: number, tol: number, what: string) {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

Deno.test("two points: w = 2(x₊ − x₋)/‖x₊ − x₋‖² and the boundary at their midpoint", () => {
  const xp = [3, 1], xm = [1, -0.5];
  const m = fitBinarySvm([...xp, ...xm], [1, -1], 2, 2, HARD);
  const diff = [xp[0] - xm[0], xp[1] - xm[1]];
  const n2 = diff[0] ** 2 + diff[1] ** 2;
  close(m.w[0], (2 * diff[0]) / n2, 1e-6, "w0");
  close(m.w[1], (2 * diff[1]) / n2, 1e-6, "w1");
  const mid = [(xp[0] + xm[0]) / 2, (xp[1] + xm[1]) / 2];
  close(m.w[0] * mid[0] + m.w[1] * mid[1] + m.b, 0, 1e-6, "f(midpoint)");
  assert.deepStrictEqual(m.supportVectors, [0, 1]);
});

function separable(seed: number, n: number) {
  const b = gaussianBlobs({ centers: [[-2, -1], [2, 1.5]], sigma: 0.6, counts: n, seed });
  return { x: b.x, y: Array.from(b.y), n: b.n };
}

Deno.test("KKT on random separable sets: α ≥ 0, Σαy = 0, margins ≥ 1, = 1 on support vectors", () => {
  for (const seed of [1, 2, 3]) {
    const { x, y, n } = separable(seed, 40);
    const m = fitBinarySvm(x, y, n, 2, HARD);
    assert.ok(m.converged, `not converged, gap ${m.gap}`);
    const f = decisionFunction(m, x, n, 2);
    let s = 0;
    for (let i = 0; i < n; i++) {
      const yi = y[i] === 1 ? 1 : -1;
      assert.ok(m.alpha[i] >= 0);
      s += m.alpha[i] * yi;
      assert.ok(yi * f[i] >= 1 - 1e-4, `margin ${yi * f[i]} at ${i}`);
      if (m.alpha[i] > 1e-8) close(yi * f[i], 1, 1e-4, `support vector ${i}`);
    }
    close(s, 0, 1e-8, "Σαy");
  }
});

/** Hard-margin SVM in 2-D by enumeration: the best separator touches 2 or 3 points. */
function bruteForce(x: Float32Array, y: number[], n: number): { w: number[]; b: number } {
  const P = [...Array(n).keys()].filter((i) => y[i] === 1),
    M = [...Array(n).keys()].filter((i) => y[i] !== 1);
  const pt = (i: number) => [x[2 * i], x[2 * i + 1]];
  let best = { margin: -1, u: [0, 0], c: 0 };
  const consider = (u: number[], c: number, margin: number) => {
    // boundary u·z = c, positive side u·z > c; check every point keeps the margin
    for (let i = 0; i < n; i++) {
      const s = (y[i] === 1 ? 1 : -1) * (u[0] * x[2 * i] + u[1] * x[2 * i + 1] - c);
      if (s < margin - 1e-9) return;
    }
    if (margin > best.margin) best = { margin, u, c };
  };
  for (const p of P) {
    for (const q of M) {
      const [a, b] = [pt(p), pt(q)];
      const dd = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const u = [(a[0] - b[0]) / dd, (a[1] - b[1]) / dd];
      consider(u, u[0] * (a[0] + b[0]) / 2 + u[1] * (a[1] + b[1]) / 2, dd / 2);
    }
  }
  for (const [same, other, sign] of [[P, M, 1], [M, P, -1]] as const) {
    for (let i = 0; i < same.length; i++) {
      for (let j = i + 1; j < same.length; j++) {
        const [a, b] = [pt(same[i]), pt(same[j])];
        const t = [b[0] - a[0], b[1] - a[1]];
        const tl = Math.hypot(t[0], t[1]);
        if (tl === 0) continue;
        for (const q of other) {
          const c = pt(q);
          let u = [-t[1] / tl, t[0] / tl];
          let dist = u[0] * (a[0] - c[0]) + u[1] * (a[1] - c[1]); // signed, from q to the line
          if (dist < 0) {
            u = [-u[0], -u[1]];
            dist = -dist;
          }
          // u points from q's side towards the line of `same`; orient towards the positive class
          const uu = sign === 1 ? u : [-u[0], -u[1]];
          const mid = [c[0] + u[0] * dist / 2, c[1] + u[1] * dist / 2];
          consider(uu, uu[0] * mid[0] + uu[1] * mid[1], dist / 2);
        }
      }
    }
  }
  const s = 1 / best.margin;
  return { w: [best.u[0] * s, best.u[1] * s], b: -best.c * s };
}

Deno.test("agrees with a brute-force hard-margin search on 20 points", () => {
  for (const seed of [4, 5, 6]) {
    const { x, y, n } = separable(seed, 10);
    const m = fitBinarySvm(x, y, n, 2, HARD);
    const ref = bruteForce(x, y, n);
    close(m.w[0], ref.w[0], 1e-3 * Math.hypot(...ref.w), "w0");
    close(m.w[1], ref.w[1], 1e-3 * Math.hypot(...ref.w), "w1");
    close(m.b, ref.b, 1e-3 * Math.max(1, Math.abs(ref.b)), "b");
  }
});

Deno.test("with a symmetric data set (x, y) ↔ (−x, −y), the free-bias and no-bias solutions agree", () => {
  const rng = new Rng(7);
  const pts: number[] = [], y: number[] = [];
  for (let i = 0; i < 30; i++) {
    const p = [rng.normal() + 2, rng.normal() * 0.5 + 1];
    pts.push(...p, -p[0], -p[1]);
    y.push(1, 0);
  }
  for (const loss of ["hinge", "squared_hinge"] as const) {
    const a = fitBinarySvm(pts, y, 60, 2, { C: 0.5, loss, bias: "free", tol: 1e-7 });
    const b = fitBinarySvm(pts, y, 60, 2, { C: 0.5, loss, bias: "none", tol: 1e-7 });
    close(a.b, 0, 1e-4, `${loss}: free bias`);
    close(a.w[0], b.w[0], 1e-3, `${loss}: w0`);
    close(a.w[1], b.w[1], 1e-3, `${loss}: w1`);
    assert.ok(a.gap >= -1e-9 && b.gap >= -1e-9, "negative duality gap");
  }
});

Deno.test("a class collapsed onto one point, duplicated: the boundary sits half-way", () => {
  const x: number[] = [], y: number[] = [];
  for (let i = 0; i < 50; i++) {
    x.push(0, 0);
    y.push(0);
  }
  const rng = new Rng(8);
  for (let i = 0; i < 50; i++) {
    x.push(6 + rng.float() * 6, rng.uniform(-0.5, 0.5) * 0 + 0);
    y.push(1);
  }
  const m = fitBinarySvm(x, y, 100, 2, HARD);
  assert.ok(m.converged);
  // nearest positive point at x1 = min; boundary at its half
  const minPos = Math.min(...x.filter((_, i) => i % 2 === 0).slice(50));
  close(-m.b / m.w[0], minPos / 2, 1e-4, "boundary");
});

Deno.test("Crammer–Singer on three one-hot points: W_k = e_k − 1/3 (hand-solved)", () => {
  const x = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const m = fitCrammerSinger(x, [0, 1, 2], 3, 3, 3, {
    C: 1e6,
    bias: "none",
    tol: 1e-9,
    maxIter: 10000,
  });
  assert.ok(m.converged, `gap ${m.gap}`);
  for (let k = 0; k < 3; k++) {
    for (let j = 0; j < 3; j++) close(m.W[k][j], (k === j ? 1 : 0) - 1 / 3, 1e-6, `W[${k}][${j}]`);
  }
});

Deno.test("one-vs-rest and Crammer–Singer separate three blobs; their duality gaps close", () => {
  // The paper's blobs ((10,10), (45,75), (80,10), σ 5), centred and scaled by 1/40.
  const raw = gaussianBlobs({
    centers: [[10, 10], [45, 75], [80, 10]],
    sigma: 5,
    counts: 60,
    seed: 9,
  });
  const b = { ...raw, x: raw.x.map((v, i) => (v - (i % 2 === 0 ? 45 : 30)) / 40) };
  for (
    const m of [
      fitOneVsRest(b.x, b.y, b.n, 2, 3, { C: 1, loss: "squared_hinge", bias: "free", tol: 1e-5 }),
      fitCrammerSinger(b.x, b.y, b.n, 2, 3, { C: 1, tol: 1e-5 }),
    ]
  ) {
    assert.ok(m.converged, `gap ${m.gap}`);
    const p = predictMulticlass(m, b.x, b.n, 2);
    assert.ok(p.every((v, i) => v === b.y[i]));
  }
});

Deno.test("SMO: hitting the pair-update cap is an error naming the gap, not a silent result", () => {
  // overlapping classes at C = 1e6: the hard-margin problem has no solution to converge to
  const rng = new Rng(9);
  const n = 200, d = 5;
  const x = rng.normals(n * d);
  const y = Array.from({ length: n }, (_, i) => i % 2);
  assert.throws(
    () => fitBinarySvm(x, y, n, d, { ...HARD, maxIter: 2 }),
    (e: unknown) =>
      e instanceof SvmNotConvergedError && /stopped after 400 pair updates/.test(e.message) &&
      /duality gap/.test(e.message),
  );
});
