/**
 * The implicit bias the last-layer paper rests on (Soudry et al. 2018): gradient descent on the
 * logistic loss over linearly separable data converges in direction to the hard-margin SVM.
 */

import assert from "node:assert";
import { fitBinarySvm } from "../../lib/svm/binary.ts";
import { gaussianBlobs } from "../../lib/data/synthetic.ts";

Deno.test("GD on logistic regression turns toward the hard-margin SVM direction (angle falls below 5°)", () => {
  const b = gaussianBlobs({ centers: [[-2, -1], [2, 1.5]], sigma: 0.6, counts: 50, seed: 3 });
  const y = Array.from(b.y, (v) => (v === 1 ? 1 : -1));
  const svm = fitBinarySvm(b.x, Array.from(b.y), b.n, 2, {
    C: 1e6,
    loss: "hinge",
    bias: "none",
    tol: 1e-9,
    maxIter: 100000,
  });
  assert.ok(svm.converged);
  const w = [0, 0];
  const angle = () => {
    const c = (w[0] * svm.w[0] + w[1] * svm.w[1]) / Math.hypot(w[0], w[1]) /
      Math.hypot(svm.w[0], svm.w[1]);
    return (Math.acos(Math.min(1, c)) * 180) / Math.PI;
  };
  const angles: number[] = [];
  for (let t = 1; t <= 100000; t++) {
    let g0 = 0, g1 = 0;
    for (let i = 0; i < b.n; i++) {
      const m = y[i] * (w[0] * b.x[2 * i] + w[1] * b.x[2 * i + 1]);
      const s = -y[i] / (1 + Math.exp(m));
      g0 += s * b.x[2 * i];
      g1 += s * b.x[2 * i + 1];
    }
    w[0] -= g0 / b.n;
    w[1] -= g1 / b.n;
    if ([100, 1000, 10000, 100000].includes(t)) angles.push(angle());
  }
  for (let k = 1; k < angles.length; k++) assert.ok(angles[k] < angles[k - 1], `angles ${angles}`);
  assert.ok(angles[angles.length - 1] < 5, `final angle ${angles[angles.length - 1]}°`);
});

Deno.test("GD on logistic loss reaches < 1° from the hard-margin SVM (hand-solved: w ∝ (1, 0))", () => {
  // Positives P and negatives −P. Constraints of the two closest, (2, ±1): 2a ± b ≥ 1, so the
  // hard-margin SVM through the origin is w = (1/2, 0); the far points are off-axis and pull GD's
  // early iterates away from it.
  const P = [[2, 1], [2, -1], [4, 0.5], [5, -2], [3.5, 2.2], [6, 3]];
  const pts = [...P, ...P.map(([a, b]) => [-a, -b])];
  const y = pts.map((_, i) => (i < P.length ? 1 : -1));
  const svm = fitBinarySvm(pts.flat(), y, pts.length, 2, {
    C: 1e6,
    loss: "hinge",
    bias: "none",
    tol: 1e-10,
    maxIter: 100000,
  });
  assert.ok(Math.abs(svm.w[0] - 0.5) < 1e-6 && Math.abs(svm.w[1]) < 1e-6, `SVM w ${svm.w}`);
  const w = [0, 0];
  const angles: number[] = [];
  for (let t = 1; t <= 100000; t++) {
    let g0 = 0, g1 = 0;
    for (let i = 0; i < pts.length; i++) {
      const s = -y[i] / (1 + Math.exp(y[i] * (w[0] * pts[i][0] + w[1] * pts[i][1])));
      g0 += s * pts[i][0];
      g1 += s * pts[i][1];
    }
    w[0] -= (0.1 * g0) / pts.length;
    w[1] -= (0.1 * g1) / pts.length;
    if ([100, 1000, 10000, 100000].includes(t)) {
      angles.push((Math.atan2(Math.abs(w[1]), w[0]) * 180) / Math.PI);
    }
  }
  for (let k = 1; k < angles.length; k++) assert.ok(angles[k] < angles[k - 1], `angles ${angles}`);
  assert.ok(angles[2] < 1 && angles[3] < 0.5, `angles at 1e2..1e5 steps: ${angles}`);
});
