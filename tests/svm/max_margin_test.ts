/**
 * The multiclass max-margin solver (free biases) against hand-solved cases, scikit-learn's binary
 * hard-margin SVC (K = 2) and its own optimality conditions.
 */

import assert from "node:assert";
import { fitMaxMarginMulticlass } from "../../lib/svm/max_margin.ts";
import { fitBinarySvm } from "../../lib/svm/binary.ts";
import { gaussianBlobs } from "../../lib/data/synthetic.ts";

const TRIANGLE = [[0, 1], [-Math.sqrt(3) / 2, -0.5], [Math.sqrt(3) / 2, -0.5]];

Deno.test("max margin, hand-solved: triangle → w_c = (2/3)·p_c; translated, only b moves (b_c = −w_c·v)", () => {
  const v = [5, -3];
  for (const shift of [[0, 0], v]) {
    const pts = TRIANGLE.map(([a, b]) => [a + shift[0], b + shift[1]]);
    const m = fitMaxMarginMulticlass(pts.flat(), [0, 1, 2], 3, 2, 3);
    assert.ok(m.separable);
    for (let c = 0; c < 3; c++) {
      for (let k = 0; k < 2; k++) {
        assert.ok(Math.abs(m.W[c][k] - (2 / 3) * TRIANGLE[c][k]) < 1e-6, `W[${c}] ${m.W[c]}`);
      }
      const want = -(m.W[c][0] * shift[0] + m.W[c][1] * shift[1]);
      assert.ok(Math.abs(m.b[c] - want) < 1e-6, `b[${c}] ${m.b[c]} vs ${want}`);
    }
  }
});

Deno.test("max margin, K = 2 = scikit-learn's hard-margin SVC (free bias) on u = w₁ − w₀", async () => {
  const fixtures = JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/svm/svm_fixtures.json", import.meta.url)),
  ) as {
    cases: {
      name: string;
      C: number;
      n: number;
      d: number;
      x: number[];
      y: number[];
      w: number[];
      b: number;
      kind: string;
    }[];
  };
  for (const c of fixtures.cases.filter((c) => c.kind === "binary" && c.C >= 1e6)) {
    const m = fitMaxMarginMulticlass(c.x, c.y, c.n, c.d, 2);
    assert.ok(m.separable, c.name);
    const u = m.W[1].map((v, k) => v - m.W[0][k]);
    let uw = 0, uu = 0, ww = 0;
    for (let k = 0; k < c.d; k++) {
      uw += u[k] * c.w[k];
      uu += u[k] * u[k];
      ww += c.w[k] * c.w[k];
    }
    const angle = (Math.acos(Math.min(1, uw / Math.sqrt(uu * ww))) * 180) / Math.PI;
    assert.ok(angle < 0.5, `${c.name}: angle ${angle}°`);
    assert.ok(Math.abs(Math.sqrt(uu) / Math.sqrt(ww) - 1) < 1e-3, `${c.name}: ‖u‖/‖w‖`);
    assert.ok(Math.abs(m.b[1] - m.b[0] - c.b) < 1e-2, `${c.name}: b ${m.b[1] - m.b[0]} vs ${c.b}`);
  }
});

Deno.test("max margin, 3 separable blobs: margins ≥ 1, KKT stationarity (to 1e-4, the barrier's central path), balance and complementarity", () => {
  const b = gaussianBlobs({
    centers: [[10, 10], [45, 75], [80, 10]],
    sigma: 5,
    counts: 300,
    seed: 7,
  });
  const K = 3, d = 2;
  const m = fitMaxMarginMulticlass(b.x, b.y, b.n, d, K);
  assert.ok(m.separable && m.converged);
  const Wr = Array.from({ length: K }, () => [0, 0]), bal = new Float64Array(K);
  let lmax = 0;
  for (const l of m.multipliers) lmax = Math.max(lmax, l);
  for (let i = 0; i < b.n; i++) {
    const a = b.y[i];
    for (let c = 0; c < K; c++) {
      if (c === a) continue;
      const f = (m.W[a][0] - m.W[c][0]) * b.x[2 * i] + (m.W[a][1] - m.W[c][1]) * b.x[2 * i + 1] +
        m.b[a] - m.b[c];
      assert.ok(f >= 1 - 1e-6, `margin ${f} at (${i}, ${c})`);
      const l = m.multipliers[i * K + c];
      assert.ok(l >= 0);
      if (l > 1e-6 * lmax) assert.ok(Math.abs(f - 1) < 1e-5, `active (${i}, ${c}) has margin ${f}`);
      for (let k = 0; k < d; k++) {
        Wr[a][k] += l * b.x[2 * i + k];
        Wr[c][k] -= l * b.x[2 * i + k];
      }
      bal[a] += l;
      bal[c] -= l;
    }
  }
  const wmax = Math.max(...m.W.flatMap((w) => Array.from(w, Math.abs)));
  for (let c = 0; c < K; c++) {
    for (let k = 0; k < d; k++) {
      assert.ok(
        Math.abs(Wr[c][k] - m.W[c][k]) < 1e-4 * wmax,
        `W[${c}] ${Wr[c]} vs ${m.W[c]}`,
      );
    }
    assert.ok(Math.abs(bal[c]) < 1e-4 * lmax, `balance of class ${c}: ${bal[c]}`);
  }
});

Deno.test("max margin: overlapping classes are the large-C limit, flagged not separable", () => {
  const b = gaussianBlobs({ centers: [[0, 0], [1, 0], [0, 1]], sigma: 1, counts: 60, seed: 2 });
  const m = fitMaxMarginMulticlass(b.x, b.y, b.n, 2, 3);
  assert.strictEqual(m.separable, false);
  assert.ok(m.maxSlack > 0.1, `largest slack ${m.maxSlack}`);
});

Deno.test("max margin: badly scaled, uncentred features (one coordinate ~100, one ~0.03) = SMO's hard margin", () => {
  // the shape of a 2-D feature layer after x² units: one class collapsed near a point, the other
  // spread along a wide coordinate far from 0, the second coordinate narrow (A-annuli's φ)
  const n = 6000, x = new Float64Array(2 * n), y: number[] = [];
  for (let i = 0; i < n; i++) {
    const pos = i % 2 === 1;
    x[2 * i] = pos ? 3 + ((i * 37) % 1400) / 10 : 1e-6 * (i % 50);
    x[2 * i + 1] = pos ? 0.03 + 0.013 * (((i * 7) % 100) / 100) : 0.0205 + 1e-5 * (i % 13);
    y.push(pos ? 1 : 0);
  }
  const m = fitMaxMarginMulticlass(x, y, n, 2, 2);
  const s = fitBinarySvm(x, y, n, 2, {
    C: 1e6,
    loss: "hinge",
    bias: "free",
    tol: 1e-9,
    maxIter: 5000,
  });
  assert.ok(m.separable && s.converged);
  const u = [m.W[1][0] - m.W[0][0], m.W[1][1] - m.W[0][1]];
  const angle = (Math.acos(
    Math.min(
      1,
      (u[0] * s.w[0] + u[1] * s.w[1]) / Math.hypot(u[0], u[1]) / Math.hypot(s.w[0], s.w[1]),
    ),
  ) * 180) / Math.PI;
  assert.ok(angle < 0.5, `angle ${angle}°`);
  assert.ok(Math.abs(m.b[1] - m.b[0] - s.b) < 1e-2, `b ${m.b[1] - m.b[0]} vs ${s.b}`);
});
