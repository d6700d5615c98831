/**
 * The SVM solvers against stored scikit-learn 1.2.1 solutions (tests/fixtures/svm/, made by
 * make_svm_fixtures.py there): SVC(kernel="linear") with a free bias — hard margin at C = 1e6,
 * soft at C = 1 with an intercept far from 0 — and LinearSVC's Crammer–Singer with its
 * regularised intercept. Each must match w within 0.5° and b within 1e-2.
 */

import assert from "node:assert";
import { fitBinarySvm } from "../../lib/svm/binary.ts";
import { fitCrammerSinger } from "../../lib/svm/multiclass.ts";

interface Case {
  name: string;
  kind: "binary" | "crammer_singer";
  C: number;
  n: number;
  d: number;
  classes?: number;
  x: number[];
  y: number[];
  w?: number[];
  W?: number[][];
  b: number | number[];
}

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/svm/svm_fixtures.json", import.meta.url)),
) as { sklearn: string; cases: Case[] };

function angleDeg(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let k = 0; k < a.length; k++) {
    ab += a[k] * b[k];
    aa += a[k] * a[k];
    bb += b[k] * b[k];
  }
  return (Math.acos(Math.min(1, ab / Math.sqrt(aa * bb))) * 180) / Math.PI;
}

for (const c of fixtures.cases.filter((c) => c.kind === "binary")) {
  Deno.test(`SMO (free bias, hinge) = scikit-learn SVC: ${c.name}`, () => {
    const m = fitBinarySvm(c.x, c.y, c.n, c.d, {
      C: c.C,
      loss: "hinge",
      bias: "free",
      tol: 1e-8,
      maxIter: 20000,
    });
    assert.ok(m.converged, `gap ${m.gap}`);
    const angle = angleDeg(m.w, c.w!);
    assert.ok(angle < 0.5, `angle to scikit-learn's w: ${angle}°`);
    assert.ok(Math.abs(m.b - (c.b as number)) < 1e-2, `b ${m.b} vs ${c.b}`);
    if (c.C >= 1e6) {
      // hard margin: the data are separable and every margin is at least 1
      for (let i = 0; i < c.n; i++) {
        let f = m.b;
        for (let k = 0; k < c.d; k++) f += m.w[k] * c.x[i * c.d + k];
        assert.ok((c.y[i] === 1 ? f : -f) >= 1 - 1e-4, `margin at ${i}: ${f}`);
      }
    }
  });
}

for (const c of fixtures.cases.filter((c) => c.kind === "crammer_singer")) {
  Deno.test(`Crammer–Singer (regularised bias) = scikit-learn LinearSVC: ${c.name}`, () => {
    const m = fitCrammerSinger(c.x, c.y, c.n, c.d, c.classes!, {
      C: c.C,
      bias: "regularized",
      biasScale: 1,
      tol: 1e-8,
      maxIter: 100000,
    });
    assert.ok(m.converged, `gap ${m.gap}`);
    for (let k = 0; k < c.classes!; k++) {
      const angle = angleDeg(m.W[k].subarray(0, c.d), c.W![k]);
      assert.ok(angle < 0.5, `class ${k}: angle ${angle}°`);
      const bk = (c.b as number[])[k];
      assert.ok(Math.abs(m.b[k] - bk) < 1e-2, `class ${k}: b ${m.b[k]} vs ${bk}`);
    }
  });
}
