import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { join } from "node:path";
import { initBackend } from "../../lib/backend/select.ts";
import { cnnNet, logits, mlpNet } from "../../lib/lastlayer/networks.ts";
import {
  angleDeg,
  binaryOf,
  closestPair,
  gridAgreement,
  marginOffset,
  signedDistance,
} from "../../lib/lastlayer/geometry.ts";
import { compare, fitFeatureSvm } from "../../lib/lastlayer/experiment.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("native", { log: null });

Deno.test("shortcut path: the last layer on φ(x) equals a plain-arithmetic forward pass (x² MLP)", () => {
  const net = mlpNet({
    hidden: 5,
    classes: 2,
    activation: "square",
    initStd: 0.5,
    biasInit: 0.1,
    seed: 1,
  });
  const xs = [[0.3, -0.2], [1.1, 0.4], [-0.7, 0.9]];
  const [W1, b1, W2, b2] = net.phiParams.map((v) => v.arraySync() as number[][] | number[]);
  const W3 = net.lastW.arraySync() as number[][], b3 = net.lastB.arraySync() as number[];
  const got = logits(net, tf.tensor2d(xs)).arraySync();
  xs.forEach((x, r) => {
    const h = (b1 as number[]).map((b, j) =>
      (x[0] * (W1 as number[][])[0][j] + x[1] * (W1 as number[][])[1][j] + b) ** 2
    );
    const phi = (b2 as number[]).map((b, k) =>
      h.reduce((s, v, j) => s + v * (W2 as number[][])[j][k], b) ** 2
    );
    const want = b3.map((b, c) => phi[0] * W3[0][c] + phi[1] * W3[1][c] + b);
    want.forEach((v, c) =>
      assert.ok(Math.abs(v - got[r][c]) < 1e-4 * Math.max(1, Math.abs(v)), `${v} vs ${got[r][c]}`)
    );
  });
});

Deno.test("CNN with a 2-D feature layer: logits and φ equal a float64 loop over its weights (conv, pool, dense)", async () => {
  const net = cnnNet({ inputShape: [12, 12, 1], classes: 3, seed: 2 });
  const n = 3, xs = new Rng(3).normals(n * 144);
  const x = tf.tensor4d(xs, [n, 12, 12, 1]);
  const got = (await logits(net, x).array()) as number[][];
  const gotPhi = (await net.phi(x).array()) as number[][];
  assert.ok(
    gotPhi.flat().some((v) => v > 0),
    "φ all zero: the check would not see the convolutions",
  );
  const [k1, b1, k2, b2, d1, c1, d2, c2] = await Promise.all(
    net.phiParams.map(async (v) => Array.from(await v.data())),
  );
  const W = Array.from(await net.lastW.data()), B = Array.from(await net.lastB.data());
  const relu = (v: number) => Math.max(0, v);
  // 3×3 'same' convolution + ReLU on an HWC image, kernel [3][3][ci][co]
  const conv = (img: number[], h: number, ci: number, k: number[], b: number[], co: number) => {
    const out = new Array(h * h * co).fill(0);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < h; xx++) {
        for (let o = 0; o < co; o++) {
          let s = b[o];
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const iy = y + ky - 1, ix = xx + kx - 1;
              if (iy < 0 || iy >= h || ix < 0 || ix >= h) continue;
              for (let c = 0; c < ci; c++) {
                s += img[(iy * h + ix) * ci + c] * k[((ky * 3 + kx) * ci + c) * co + o];
              }
            }
          }
          out[(y * h + xx) * co + o] = relu(s);
        }
      }
    }
    return out;
  };
  const pool = (img: number[], h: number, c: number) => {
    const g = h / 2, out = new Array(g * g * c);
    for (let y = 0; y < g; y++) {
      for (let xx = 0; xx < g; xx++) {
        for (let ch = 0; ch < c; ch++) {
          out[(y * g + xx) * c + ch] = Math.max(
            ...[0, 1].flatMap((dy) =>
              [0, 1].map((dx) => img[((2 * y + dy) * h + 2 * xx + dx) * c + ch])
            ),
          );
        }
      }
    }
    return out;
  };
  const dense = (v: number[], k: number[], b: number[], m: number, act: boolean) =>
    b.map((bb, o) => {
      let s = bb;
      for (let j = 0; j < v.length; j++) s += v[j] * k[j * m + o];
      return act ? relu(s) : s;
    });
  for (let i = 0; i < n; i++) {
    const img = Array.from(xs.subarray(i * 144, (i + 1) * 144));
    const a = pool(conv(pool(conv(img, 12, 1, k1, b1, 16), 12, 16), 6, 16, k2, b2, 32), 6, 32);
    const phi = dense(dense(a, d1, c1, 64, true), d2, c2, 2, true);
    const z = dense(phi, W, B, 3, false);
    phi.forEach((v, c) =>
      assert.ok(Math.abs(v - gotPhi[i][c]) < 1e-4, `φ ${v} vs ${gotPhi[i][c]}`)
    );
    z.forEach((v, c) => assert.ok(Math.abs(v - got[i][c]) < 1e-4, `logit ${v} vs ${got[i][c]}`));
  }
});

Deno.test("geometry: angles, signed distances and the closest pair by hand", () => {
  assert.ok(Math.abs(angleDeg([1, 0], [1, 1]) - 45) < 1e-12);
  assert.ok(Math.abs(angleDeg([1, 0], [-1, 0]) - 180) < 1e-12);
  assert.strictEqual(signedDistance([3, 4], -5, [3, 4]), 4);
  const cp = closestPair(
    Float32Array.from([0, 0, 5, 5, 3, 0, 9, 9]),
    Int32Array.from([0, 0, 1, 1]),
    1,
    0,
  );
  assert.deepStrictEqual([cp.p, cp.q, cp.mid, cp.distance], [[3, 0], [0, 0], [1.5, 0], 3]);
  // the class-1 point (3, 0) filtered out: the pair moves to (9, 9)–(5, 5)
  const kept = closestPair(
    Float32Array.from([0, 0, 5, 5, 3, 0, 9, 9]),
    Int32Array.from([0, 0, 1, 1]),
    1,
    0,
    { keep: (i) => i !== 2 },
  );
  assert.deepStrictEqual([kept.p, kept.q], [[9, 9], [5, 5]]);
  const m = { W: [[0, 0], [1, 0]], b: [0, -1] };
  assert.deepStrictEqual(binaryOf(m), { w: [1, 0], b: -1 });
  assert.strictEqual(gridAgreement(m, m, [0, 2, 0, 2]), 1);
  // boundary x = 1 vs x = 1.5 on [0, 2]²: they disagree on a quarter of the box
  assert.ok(
    Math.abs(gridAgreement(m, { W: [[0, 0], [1, 0]], b: [0, -1.5] }, [0, 2, 0, 2]) - 0.75) < 1e-3,
  );
});

Deno.test("marginOffset by hand: signed, in units of the SVM's margin, read along its normal", () => {
  // SVM boundary x = 1 with margin hyperplanes x = 0.5 (−1) and x = 1.5 (+1): w = (2, 0), b = −2
  const svm = { w: [2, 0], b: -2 };
  const at = [7, 3]; // projected onto x = 1 first
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(marginOffset(svm, svm, at), 0);
  close(marginOffset({ w: [1, 0], b: -1.25 }, svm, at), 0.5); // x = 1.25
  close(marginOffset({ w: [3, 0], b: -3.75 }, svm, at), 0.5); // same line, other scale
  close(marginOffset({ w: [1, 0], b: -0.5 }, svm, at), -1); // on the negative margin
  close(marginOffset({ w: [-1, 0], b: 1.5 }, svm, at), 1); // x = 1.5, normal flipped
  // tilted: x + y = 4.5 meets the line y = 3 (through the projection (1, 3)) at x = 1.5: +1
  close(marginOffset({ w: [1, 1], b: -4.5 }, svm, at), 1);
  assert.ok(Number.isNaN(marginOffset({ w: [0, 1], b: 0 }, svm, at)), "parallel to the normal");
});

Deno.test("compare() on hand-solved features: angles, signed margin offsets, separability, CE", () => {
  // class 0 at x ∈ {−1, 0}, class 1 at x ∈ {2, 3}: the hard-margin SVM is x = 1 (w = (1, 0),
  // b = −1, margin 1), its support vectors (0, 0), (0, 1), (2, 0), (2, 1) centred at (1, 0.5)
  const phi = Float32Array.from([0, 0, 0, 1, -1, 0.5, 2, 0, 2, 1, 3, 0.5]);
  const y = Int32Array.from([0, 0, 0, 1, 1, 1]);
  const svm = fitFeatureSvm(phi, y, 2, 1e6);
  assert.ok(svm.separable);
  const u = [svm.model.W[1][0] - svm.model.W[0][0], svm.model.W[1][1] - svm.model.W[0][1]];
  assert.ok(Math.abs(u[0] - 1) < 1e-6 && Math.abs(u[1]) < 1e-6, `SVM direction ${u}`);
  assert.ok(Math.abs(svm.model.b[1] - svm.model.b[0] + 1) < 1e-6);
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);
  const at = (w: number[], b: number) => compare(phi, y, 2, { W: [[0, 0], w], b: [0, b] }, svm);
  let r = at([2, 0], -2.5); // x = 1.25: a quarter margin towards class 1, any scale
  close(r.angle_deg, 0, "angle");
  close(r.offset_nn_svm, 0.25, "offset at x = 1.25");
  r = at([1, 0], 0); // x = 0: on class 0's margin hyperplane
  close(r.offset_nn_svm, -1, "offset at x = 0");
  r = at([1, 1], -2); // x + y = 2 crosses y = 0.5 at x = 1.5
  close(r.angle_deg, 45, "tilted angle");
  close(r.offset_nn_svm, 0.5, "tilted offset");
  assert.strictEqual(r.svm_separable, 1);
});

Deno.test("compare() on three classes: per-pair signed offsets, scale invariance and the CE by hand", () => {
  // triangle corners p_c: the multiclass hard-margin SVM is w_c = (2/3)·p_c, b = 0
  const P = [[0, 1], [-Math.sqrt(3) / 2, -0.5], [Math.sqrt(3) / 2, -0.5]];
  const phi = Float32Array.from(P.flat()), y = Int32Array.from([0, 1, 2]);
  const svm = fitFeatureSvm(phi, y, 3, 1e6);
  const exact = { W: P.map(([a, b]) => [(2 / 3) * a, (2 / 3) * b]), b: [0, 0, 0] };
  const same = compare(phi, y, 3, exact, svm);
  assert.ok(same.angle_max_deg < 1e-5 && same.offset_max_abs < 1e-5);
  // CE of the exact SVM: logits 2/3 (own class), −1/3 (others): log(1 + 2/e)
  assert.ok(Math.abs(same.train_ce - Math.log(1 + 2 / Math.E)) < 1e-6, `CE ${same.train_ce}`);
  const scaled = compare(
    phi,
    y,
    3,
    { W: exact.W.map((w) => w.map((v) => 5 * v)), b: [0, 0, 0] },
    svm,
  );
  assert.ok(scaled.angle_max_deg < 1e-5 && scaled.offset_max_abs < 1e-5, "scale changes nothing");
  // class 0's bias raised by 0.5: pairs (0, 1) and (0, 2) move half a margin towards the
  // other class (their positive side), pair (1, 2) stays
  const shifted = compare(phi, y, 3, { W: exact.W, b: [0.5, 0, 0] }, svm);
  assert.ok(Math.abs(shifted.offset_0_1 - 0.5) < 1e-5, `pair 0-1: ${shifted.offset_0_1}`);
  assert.ok(Math.abs(shifted.offset_0_2 - 0.5) < 1e-5, `pair 0-2: ${shifted.offset_0_2}`);
  assert.ok(Math.abs(shifted.offset_1_2) < 1e-5, `pair 1-2: ${shifted.offset_1_2}`);
});

Deno.test({
  name: "lastlayer --preset=smoke writes every artifact",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, LASTLAYER_SPEC } = await import("../../scripts/lastlayer.ts");
    const out = await Deno.makeTempDir();
    const { run, summary } = await main({
      ...DEFAULTS,
      ...LASTLAYER_SPEC.presets.smoke,
      out,
      backend: "native" as const,
    }, { quiet: true });
    assert.strictEqual(summary.length, 2 * LASTLAYER_SPEC.presets.smoke.experiments!.length);
    for (
      const f of [
        "summary.md",
        "summary.html",
        "summary-table.json",
        "A-blobs.html",
        "B-metrics.csv",
        "C.html",
        "angles.svg",
        "offsets.svg",
        "completed",
      ]
    ) {
      assert.ok((await Deno.stat(join(run.path, f))).size > 0, `${f} missing`);
    }
    for (const r of summary) {
      assert.ok(Number.isFinite(r.train_ce) && r.agreement >= 0 && r.agreement <= 1);
    }
  },
});
