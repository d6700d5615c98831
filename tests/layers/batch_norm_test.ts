/**
 * batchNormTrain() — the native fused kernels and the composed TF.js fallback — against a float64
 * reference: outputs, batch statistics, and gradients by central finite differences.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { BatchNorm, batchNormTrain } from "../../lib/layers/batch_norm.ts";
import { Rng } from "../../lib/util/rng.ts";

const SHAPE: [number, number, number, number] = [3, 4, 5, 6];
const C = SHAPE[3], M = SHAPE[0] * SHAPE[1] * SHAPE[2], EPS = 1e-3;
const rng = new Rng(8);
const X = rng.normals(M * C).map((v, i) => 2 * v + (i % C)); // channel means 0..5
const G = Array.from({ length: C }, () => rng.uniform(0.5, 1.5));
const B = Array.from({ length: C }, () => rng.uniform(-0.5, 0.5));
const R = rng.normals(M * C); // loss = Σ y·R

function reference(x: ArrayLike<number>, g: number[], b: number[]) {
  const mean = new Array(C).fill(0), v = new Array(C).fill(0);
  for (let j = 0; j < x.length; j++) mean[j % C] += x[j] / M;
  for (let j = 0; j < x.length; j++) v[j % C] += (x[j] - mean[j % C]) ** 2 / M;
  const y = Array.from(
    x,
    (xv, j) => g[j % C] * (xv - mean[j % C]) / Math.sqrt(v[j % C] + EPS) + b[j % C],
  );
  return { y, mean, v, loss: y.reduce((s, yv, j) => s + yv * R[j], 0) };
}

function check(backend: string) {
  const x = tf.tensor4d(X, SHAPE),
    g = tf.tensor1d(G),
    b = tf.tensor1d(B),
    r = tf.tensor4d(R, SHAPE);
  const out = batchNormTrain(x, g, b, EPS);
  const ref = reference(X, G, B);
  const close = (a: number, e: number, tol: number, what: string) =>
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${backend} ${what}: ${a} vs ${e}`,
    );
  out.y.dataSync().forEach((v, j) => close(v, ref.y[j], 1e-5, `y[${j}]`));
  out.mean.dataSync().forEach((v, k) => close(v, ref.mean[k], 1e-5, `mean[${k}]`));
  out.variance.dataSync().forEach((v, k) => close(v, ref.v[k], 1e-5, `variance[${k}]`));
  tf.dispose([out.y, out.mean, out.variance]);

  const [dx, dg, db] = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
    const o = batchNormTrain(a as tf.Tensor4D, c as tf.Tensor1D, d as tf.Tensor1D, EPS);
    tf.dispose([o.mean, o.variance]);
    return tf.sum(tf.mul(o.y, r));
  })([x, g, b]).map((t) => t.dataSync());
  const h = 1e-5;
  const fd = (set: (d: number) => void) => {
    set(h);
    const up = reference(X, G, B).loss;
    set(-2 * h);
    const down = reference(X, G, B).loss;
    set(h);
    return (up - down) / (2 * h);
  };
  for (const j of [0, 7, 50, 119, 200, M * C - 1]) {
    close(dx[j], fd((d) => (X[j] += d)), 2e-3, `dx[${j}]`);
  }
  for (let k = 0; k < C; k++) {
    close(dg[k], fd((d) => (G[k] += d)), 2e-3, `dγ[${k}]`);
    close(db[k], fd((d) => (B[k] += d)), 2e-3, `dβ[${k}]`);
  }
  tf.dispose([x, g, b, r]);
}

Deno.test("batchNormTrain on native (fused kernels) equals the float64 reference", async () => {
  await initBackend("native", { log: null });
  assert.ok(tf.getKernel("GradlabBatchNormTrain", tf.getBackend()), "native BN kernel missing");
  check("native");
});

Deno.test("batchNormTrain on cpu (composed from TF.js ops) equals the float64 reference", async () => {
  await initBackend("cpu", { log: null });
  assert.ok(!tf.getKernel("GradlabBatchNormTrain", tf.getBackend()));
  check("cpu");
});

Deno.test("batchNormTrain: multi-threaded native kernels agree with the composed op on a large batch", async () => {
  const shape: [number, number, number, number] = [16, 16, 16, 32];
  const n = shape.reduce((a, b) => a * b);
  const r = new Rng(3), xv = r.normals(n).map((v) => 3 * v + 1), rv = r.normals(n);
  const gv = Array.from({ length: 32 }, () => r.uniform(0.5, 1.5)), bv = r.normals(32);
  const run = () => {
    const [x, g, b, rr] = [
      tf.tensor4d(xv, shape),
      tf.tensor1d(gv),
      tf.tensor1d(bv),
      tf.tensor4d(rv, shape),
    ];
    const y = batchNormTrain(x, g, b, 1e-5);
    const grads = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
      const o = batchNormTrain(a as tf.Tensor4D, c as tf.Tensor1D, d as tf.Tensor1D, 1e-5);
      tf.dispose([o.mean, o.variance]);
      return tf.sum(tf.mul(o.y, rr));
    })([x, g, b]);
    const out = [y.y, y.mean, y.variance, ...grads].map((t) => Array.from(t.dataSync()));
    tf.dispose([x, g, b, rr, y.y, y.mean, y.variance, ...grads]);
    return out;
  };
  await initBackend("native", { log: null });
  const fused = run();
  await initBackend("cpu", { log: null });
  const composed = run();
  const names = ["y", "mean", "variance", "dx", "dγ", "dβ"];
  fused.forEach((a, t) => {
    const scale = composed[t].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    a.forEach((v, i) =>
      assert.ok(
        Math.abs(v - composed[t][i]) <= 1e-4 * scale,
        `${names[t]}[${i}]: ${v} vs ${composed[t][i]}`,
      )
    );
  });
});

for (const backend of ["native", "cpu"] as const) {
  Deno.test(`BatchNorm layer (${backend}): the float64 reference in training mode, Torch's running statistics, inference on them`, async () => {
    await initBackend(backend, { log: null });
    const layer = new BatchNorm({ epsilon: EPS, momentum: 0.9 });
    const x = tf.tensor4d(X, SHAPE), r = tf.tensor4d(R, SHAPE);
    layer.apply(x, { training: false }); // builds γ = 1, β = 0
    const [gamma, beta] = layer.trainableWeights;
    gamma.write(tf.tensor1d(G));
    beta.write(tf.tensor1d(B));
    const ref = reference(X, G, B);
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    const yv = y.dataSync();
    ref.y.forEach((e, j) => assert.ok(Math.abs(yv[j] - e) < 1e-4, `y[${j}] ${yv[j]} vs ${e}`));
    // running statistics: 0.9·start + 0.1·batch, the variance unbiased (m / (m − 1))
    const [mm, mv] = layer.nonTrainableWeights.map((w) => w.read().dataSync());
    for (let k = 0; k < C; k++) {
      assert.ok(Math.abs(mm[k] - 0.1 * ref.mean[k]) < 1e-5, `moving mean ${k}`);
      assert.ok(Math.abs(mv[k] - (0.9 + 0.1 * ref.v[k] * M / (M - 1))) < 1e-4, `moving var ${k}`);
    }
    // gradients of Σ y·R with respect to γ, by the closed form Σ R·x̂
    const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar,
      vars,
    );
    const dGamma = grads[vars[0].name].dataSync(), dBeta = grads[vars[1].name].dataSync();
    for (let k = 0; k < C; k++) {
      let sg = 0, sb = 0;
      for (let j = k; j < X.length; j += C) {
        sg += R[j] * (X[j] - ref.mean[k]) / Math.sqrt(ref.v[k] + EPS);
        sb += R[j];
      }
      assert.ok(Math.abs(dGamma[k] - sg) < 1e-3 * Math.max(1, Math.abs(sg)), `dγ ${k}`);
      assert.ok(Math.abs(dBeta[k] - sb) < 1e-3 * Math.max(1, Math.abs(sb)), `dβ ${k}`);
    }
    // inference normalises with the running statistics
    const [m2, v2] = layer.nonTrainableWeights.map((w) => w.read().dataSync());
    const yi = (layer.apply(x, { training: false }) as tf.Tensor).dataSync();
    for (const j of [0, 7, 100, X.length - 1]) {
      const k = j % C;
      const e = G[k] * (X[j] - m2[k]) / Math.sqrt(v2[k] + EPS) + B[k];
      assert.ok(Math.abs(yi[j] - e) < 1e-4, `inference y[${j}]`);
    }
    tf.dispose([x, r, y, ...Object.values(grads)]);
    layer.dispose();
  });
}
