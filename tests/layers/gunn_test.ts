/**
 * GUNN layer: against a naive float64 reference (forward, and every gradient by finite
 * differences), S = 1 as an ordinary residual block, causality of the ordering, the identity
 * case, running statistics, parameter counts, save/load and gradient coverage.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../../lib/backend/select.ts";
import { GunnLayer, type UpdateMode } from "../../lib/layers/gunn.ts";
import { allowFusedGunnUnits } from "../../lib/layers/gunn_fused.ts";
import { loadedNativeLib } from "../../lib/backend/select.ts";
import {
  GUNN15,
  gunnNetwork,
  gunnParamCount,
  MINI_GUNN,
  SMALL_GUNN,
  trainableCount,
} from "../../lib/models/gunn.ts";
import { loadModel, saveModel } from "../../lib/run/model_io.ts";
import { Rng } from "../../lib/util/rng.ts";
import { refGunn, type RefUnit, type Volume } from "./gunn_reference.ts";

await initBackend("native", { log: null });

const SHAPE: [number, number, number, number] = [3, 5, 5, 6]; // batch 3, 5×5, C = 6

/** A built layer whose γ and β are random too (so that no term hides behind γ = 1, β = 0). */
function makeLayer(mode: UpdateMode, segments = 3, seed = 1): GunnLayer {
  const layer = new GunnLayer({ segments, mode, seed });
  layer.apply(tf.zeros(SHAPE), { training: false });
  const rng = new Rng(seed + 100);
  for (const w of layer.trainableWeights) {
    if (/gamma|beta/.test(w.name)) {
      const n = w.shape[0] as number;
      w.write(
        tf.tensor1d(
          Array.from(
            { length: n },
            () => (w.name.includes("gamma") ? 1 : 0) + rng.uniform(-0.5, 0.5),
          ),
        ),
      );
    }
  }
  return layer;
}

/**
 * Runs `body` with the training-mode units fused (one native kernel each way, the default on this
 * backend) or composed from stock ops, and checks that the fused kernels did (or did not) run.
 */
async function onPath(path: GunnPath, body: () => void | Promise<void>): Promise<void> {
  const lib = loadedNativeLib()!;
  const before = lib.calls.gunnLayerForward ?? 0;
  const was = allowFusedGunnUnits(path === "fused");
  try {
    await body();
  } finally {
    allowFusedGunnUnits(was);
  }
  const ran = (lib.calls.gunnLayerForward ?? 0) > before;
  assert.strictEqual(ran, path === "fused", `fused GUNN kernels ${ran ? "ran" : "did not run"}`);
}
type GunnPath = "fused" | "stock ops";
const PATHS: GunnPath[] = ["fused", "stock ops"];

function input(seed = 7): tf.Tensor4D {
  return tf.tensor4d(new Rng(seed).normals(SHAPE.reduce((a, b) => a * b)), SHAPE);
}

/** The layer's weights as float64 arrays for the reference. */
function refUnits(layer: GunnLayer): RefUnit[] {
  const f = (t: tf.Tensor) => Float64Array.from(t.dataSync());
  return layer.unitWeights().map((u) => ({
    conv1: f(u.conv1),
    g1: f(u.bn1.gamma),
    b1: f(u.bn1.beta),
    conv2: f(u.conv2),
    g2: f(u.bn2.gamma),
    b2: f(u.bn2.beta),
    conv3: f(u.conv3),
    g3: f(u.bn3.gamma),
    b3: f(u.bn3.beta),
    proj: u.projection && f(u.projection.conv),
    gp: u.projection && f(u.projection.bn.gamma),
    bp: u.projection && f(u.projection.bn.beta),
  }));
}

function volume(x: tf.Tensor4D): Volume {
  const [n, h, w, c] = x.shape;
  return { data: Float64Array.from(x.dataSync()), n, h, w, c };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const path of PATHS) {
  for (const mode of ["gradual", "simultaneous"] as const) {
    Deno.test(`GUNN ${mode} (${path}): forward (training mode) equals the naive float64 reference`, () =>
      onPath(path, () => {
        const layer = makeLayer(mode);
        const x = input();
        const y = layer.apply(x, { training: true }) as tf.Tensor;
        const ref = refGunn(volume(x), refUnits(layer), mode);
        assert.ok(
          maxAbsDiff(y.dataSync(), ref.data) < 1e-5,
          `max diff ${maxAbsDiff(y.dataSync(), ref.data)}`,
        );
        tf.dispose([x, y]);
        layer.dispose();
      }));

    Deno.test(`GUNN ${mode} (${path}): input and parameter gradients equal finite differences of the reference`, () =>
      onPath(path, () => {
        const layer = makeLayer(mode, 3, 2);
        const x = input(3);
        const R = new Rng(5).normals(SHAPE.reduce((a, b) => a * b));
        const Rt = tf.tensor4d(R, SHAPE);
        const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const lossOf = (t: tf.Tensor4D) =>
          tf.sum(tf.mul(layer.apply(t, { training: true }) as tf.Tensor, Rt)) as tf.Scalar;
        const gx = tf.grad((t: tf.Tensor) => lossOf(t as tf.Tensor4D))(x);
        const { grads } = tf.variableGrads(() => lossOf(x), vars);

        const xv = volume(x), units = refUnits(layer);
        const refLoss = (xx: Volume, uu: RefUnit[]) =>
          refGunn(xx, uu, mode).data.reduce((s, v, i) => s + v * R[i], 0);
        const h = 1e-6;
        const fd = (set: (d: number) => void) => {
          set(h);
          const up = refLoss(xv, units);
          set(-2 * h);
          const down = refLoss(xv, units);
          set(h);
          return (up - down) / (2 * h);
        };
        const close = (a: number, b: number, what: string) =>
          assert.ok(
            Math.abs(a - b) <= 2e-3 * Math.max(1, Math.abs(b)),
            `${what}: autodiff ${a} vs finite difference ${b}`,
          );

        const gxv = gx.dataSync();
        for (const i of [0, 17, 44, 101, 149, 222, 311, 449]) {
          close(gxv[i], fd((d) => (xv.data[i] += d)), `∂/∂x[${i}]`);
        }
        // every parameter tensor: three entries each
        const keys: (keyof RefUnit)[] = [
          "conv1",
          "g1",
          "b1",
          "conv2",
          "g2",
          "b2",
          "conv3",
          "g3",
          "b3",
          "proj",
          "gp",
          "bp",
        ];
        const names = [
          "conv1",
          "bn1/gamma",
          "bn1/beta",
          "conv2",
          "bn2/gamma",
          "bn2/beta",
          "conv3",
          "bn3/gamma",
          "bn3/beta",
          "proj",
          "proj_bn/gamma",
          "proj_bn/beta",
        ];
        let checked = 0;
        units.forEach((u, s) => {
          keys.forEach((k, j) => {
            const v = vars.find((t) => t.name.endsWith(`unit${s}/${names[j]}`));
            assert.ok(v, `variable unit${s}/${names[j]}`);
            const g = grads[v!.name].dataSync(), arr = u[k] as Float64Array;
            for (const i of [0, Math.floor(arr.length / 2), arr.length - 1]) {
              close(g[i], fd((d) => (arr[i] += d)), `∂/∂unit${s}/${names[j]}[${i}]`);
              checked++;
            }
          });
        });
        assert.strictEqual(checked, 3 * 12 * 3);
        tf.dispose([x, Rt, gx, ...Object.values(grads)]);
        layer.dispose();
      }));
  }
}

/**
 * The spec's reference written with stock TF.js ops: tf.moments + tf.batchNorm, and in the
 * gradual mode the state rebuilt by concatenating slices at every step. `w` holds, per unit,
 * conv1, γ1, β1, conv2, γ2, β2, conv3, γ3, β3, projection, γp, βp.
 */
function naiveTfGunn(x: tf.Tensor4D, w: tf.Tensor[], S: number, mode: UpdateMode): tf.Tensor4D {
  const C = x.shape[3], o = C / S;
  const bn = (t: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(t, [0, 1, 2]);
    return tf.batchNorm(t, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5) as tf.Tensor4D;
  };
  const conv = (t: tf.Tensor4D, k: tf.Tensor) => tf.conv2d(t, k as tf.Tensor4D, 1, "same");
  const seg = (t: tf.Tensor4D, from: number, width: number) =>
    tf.slice(t, [0, 0, 0, from], [-1, -1, -1, width]);
  let cur = x;
  const fresh: tf.Tensor4D[] = [];
  for (let i = 0; i < S; i++) {
    const [c1, g1, b1, c2, g2, b2, c3, g3, b3, p, gp, bp] = w.slice(12 * i, 12 * i + 12);
    const state = mode === "gradual" ? cur : x;
    let h = tf.relu(bn(conv(state, c1), g1, b1));
    h = tf.relu(bn(conv(h, c2), g2, b2));
    const unit = tf.add(bn(conv(h, c3), g3, b3), bn(conv(state, p), gp, bp));
    const updated = tf.add(seg(x, i * o, o), unit) as tf.Tensor4D;
    if (mode === "simultaneous") {
      fresh.push(updated);
      continue;
    }
    const parts = [];
    if (i > 0) parts.push(seg(cur, 0, i * o));
    parts.push(updated);
    if (i + 1 < S) parts.push(seg(cur, (i + 1) * o, C - (i + 1) * o));
    cur = tf.concat(parts, 3) as tf.Tensor4D;
  }
  return mode === "gradual" ? cur : tf.concat(fresh, 3) as tf.Tensor4D;
}

for (const path of PATHS) {
  for (const mode of ["gradual", "simultaneous"] as const) {
    Deno.test(`GUNN ${mode} (${path}): output, input and parameter gradients equal the stock-op reference (1e-5)`, () =>
      onPath(path, () => {
        const layer = makeLayer(mode, 3, 4);
        const x = input(9);
        const R = tf.tensor4d(new Rng(10).normals(SHAPE.reduce((a, b) => a * b)), SHAPE);
        const w = layer.unitWeights().flatMap((u) => [
          u.conv1,
          u.bn1.gamma,
          u.bn1.beta,
          u.conv2,
          u.bn2.gamma,
          u.bn2.beta,
          u.conv3,
          u.bn3.gamma,
          u.bn3.beta,
          u.projection!.conv,
          u.projection!.bn.gamma,
          u.projection!.bn.beta,
        ]);
        const ours = tf.grads((xx: tf.Tensor, ..._w: tf.Tensor[]) =>
          tf.sum(tf.mul(layer.apply(xx, { training: true }) as tf.Tensor, R))
        );
        // the layer reads its own variables: their gradients come from variableGrads
        const gx = ours([x, ...w])[0];
        const { grads } = tf.variableGrads(
          () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, R)) as tf.Scalar,
          w as tf.Variable[],
        );
        const ref = tf.grads((xx: tf.Tensor, ...ww: tf.Tensor[]) =>
          tf.sum(tf.mul(naiveTfGunn(xx as tf.Tensor4D, ww, 3, mode), R))
        )([x, ...w]);
        const yOurs = (layer.apply(x, { training: true }) as tf.Tensor).dataSync();
        const yRef = naiveTfGunn(x, w, 3, mode).dataSync();
        const within = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
          const scale = Math.max(1, ...Array.from(b, Math.abs));
          const d = maxAbsDiff(a, b);
          assert.ok(d <= 1e-5 * scale, `${what}: max difference ${d} (scale ${scale})`);
        };
        within(yOurs, yRef, "output");
        within(gx.dataSync(), ref[0].dataSync(), "∂/∂x");
        w.forEach((t, k) =>
          within(grads[(t as tf.Variable).name].dataSync(), ref[k + 1].dataSync(), `∂/∂w[${k}]`)
        );
        tf.dispose([x, R, gx, ...ref, ...Object.values(grads)]);
        layer.dispose();
      }));
  }
}

for (const mode of ["gradual", "simultaneous"] as const) {
  Deno.test(`GUNN ${mode}: fused and stock-op paths move every norm's running statistics alike`, async () => {
    const x = input(21);
    const stats: number[][][] = [];
    for (const path of PATHS) {
      await onPath(path, () => {
        const layer = makeLayer(mode, 3, 6);
        const y = layer.apply(x, { training: true }) as tf.Tensor;
        // every non-trainable weight: moving mean and variance of bn1, bn2, bn3, proj_bn per unit
        stats.push(layer.nonTrainableWeights.map((w) => Array.from(w.read().dataSync())));
        tf.dispose(y);
        layer.dispose();
      });
    }
    assert.strictEqual(stats[0].length, 3 * 4 * 2);
    stats[0].forEach((a, k) => {
      assert.ok(maxAbsDiff(a, stats[1][k]) < 1e-5, `statistic ${k}: ${a} vs ${stats[1][k]}`);
      // every statistic moved from its start (mean 0, variance 1)
      assert.ok(a.some((v) => v !== 0 && v !== 1), `statistic ${k} did not move`);
    });
    x.dispose();
  });
}

Deno.test("GUNN with S = 1 is an ordinary residual block (x + projection + bottleneck) built from TF.js layers", () => {
  const layer = makeLayer("gradual", 1, 4);
  const x = input(9);
  const w = layer.unitWeights()[0];
  // the same block from stock layers, with the layer's weights
  const inp = tf.input({ shape: SHAPE.slice(1) });
  const conv = (k: number, f: number, kernel: tf.Tensor) =>
    tf.layers.conv2d({
      kernelSize: k,
      filters: f,
      padding: "same",
      useBias: false,
      weights: [kernel],
    });
  const bn = (b: typeof w.bn1) =>
    tf.layers.batchNormalization({
      epsilon: 1e-5,
      weights: [b.gamma, b.beta, b.movingMean, b.movingVariance],
    });
  let hdn = bn(w.bn1).apply(conv(1, 12, w.conv1).apply(inp)) as tf.SymbolicTensor;
  hdn = tf.layers.reLU().apply(hdn) as tf.SymbolicTensor;
  hdn = tf.layers.reLU().apply(
    bn(w.bn2).apply(conv(3, 12, w.conv2).apply(hdn)),
  ) as tf.SymbolicTensor;
  hdn = bn(w.bn3).apply(conv(1, 6, w.conv3).apply(hdn)) as tf.SymbolicTensor;
  const proj = bn(w.projection!.bn).apply(
    conv(1, 6, w.projection!.conv).apply(inp),
  ) as tf.SymbolicTensor;
  const out = tf.layers.add().apply([inp, hdn, proj]) as tf.SymbolicTensor;
  const block = tf.model({ inputs: inp, outputs: out });
  // inference first (both still hold the initial running statistics), then batch statistics
  const a = layer.apply(x, { training: false }) as tf.Tensor,
    b = block.apply(x, { training: false }) as tf.Tensor;
  assert.ok(maxAbsDiff(a.dataSync(), b.dataSync()) < 1e-5);
  const c = layer.apply(x, { training: true }) as tf.Tensor,
    d = block.apply(x, { training: true }) as tf.Tensor;
  assert.ok(maxAbsDiff(c.dataSync(), d.dataSync()) < 1e-4);
  assert.ok(maxAbsDiff(a.dataSync(), c.dataSync()) > 1e-3); // the two modes do differ
  tf.dispose([a, b, c, d]);
  x.dispose();
});

Deno.test("GUNN ordering: changing unit j leaves earlier segments bit-identical; in SUNN only segment j changes", () => {
  for (const mode of ["gradual", "simultaneous"] as const) {
    const layer = makeLayer(mode, 3, 6);
    const x = input(11);
    const before = (layer.apply(x, { training: true }) as tf.Tensor).arraySync() as number[][][][];
    const j = 1;
    const v = layer.trainableWeights.find((w) => w.name.endsWith(`unit${j}/conv2`))!;
    v.write(tf.tidy(() => v.read().add(0.3)));
    const after = (layer.apply(x, { training: true }) as tf.Tensor).arraySync() as number[][][][];
    const changed = [0, 1, 2].map((s) => {
      let diff = false;
      before.forEach((b, n) =>
        b.forEach((r, i) =>
          r.forEach((p, k) => {
            for (let c = 2 * s; c < 2 * s + 2; c++) if (p[c] !== after[n][i][k][c]) diff = true;
          })
        )
      );
      return diff;
    });
    assert.deepStrictEqual(
      changed,
      mode === "gradual" ? [false, true, true] : [false, true, false],
      mode,
    );
    x.dispose();
  }
});

Deno.test("GUNN and SUNN are the identity when the last norms of every unit have γ = 0 (β = 0)", () => {
  for (const mode of ["gradual", "simultaneous"] as const) {
    const layer = makeLayer(mode, 3, 8);
    for (const w of layer.trainableWeights) {
      if (/(bn3|proj_bn)\/(gamma|beta)$/.test(w.name)) w.write(tf.zerosLike(w.read()));
    }
    const x = input(12);
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    assert.deepStrictEqual(Array.from(y.dataSync()), Array.from(x.dataSync()), mode);
    tf.dispose([x, y]);
  }
});

Deno.test("GUNN running statistics: a training pass moves them 10 % toward the batch's; inference uses them", () => {
  const layer = new GunnLayer({ segments: 3, seed: 3 });
  const x = input(13);
  const evalBefore = layer.apply(x, { training: false }) as tf.Tensor;
  layer.apply(x, { training: true });
  // unit 0's first norm sees conv1×1(x): its batch mean and unbiased variance, by hand
  const u = layer.unitWeights()[0];
  const h = tf.conv2d(x, u.conv1, 1, "same");
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  const m = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const expectMean = Array.from(mean.dataSync(), (v) => 0.1 * v);
  const expectVar = Array.from(variance.dataSync(), (v) => 0.9 + 0.1 * v * m / (m - 1));
  assert.ok(maxAbsDiff(u.bn1.movingMean.dataSync(), expectMean) < 1e-6);
  assert.ok(maxAbsDiff(u.bn1.movingVariance.dataSync(), expectVar) < 1e-5);
  const evalAfter = layer.apply(x, { training: false }) as tf.Tensor;
  assert.ok(maxAbsDiff(evalBefore.dataSync(), evalAfter.dataSync()) > 1e-3);
  tf.dispose([x, evalBefore, evalAfter, h, mean, variance]);
});

Deno.test("GUNN-15 has 1,585,746 parameters (CIFAR-10) and 1,618,236 (CIFAR-100); built models agree", () => {
  assert.strictEqual(gunnParamCount(GUNN15, 10), 1585746);
  assert.strictEqual(gunnParamCount(GUNN15, 100), 1618236);
  assert.strictEqual(gunnParamCount(SMALL_GUNN, 10), 34482);
  const full = gunnNetwork({
    arch: GUNN15,
    classes: 10,
    inputShape: [32, 32, 3],
    mode: "gradual",
    seed: 0,
  });
  assert.strictEqual(trainableCount(full), 1585746);
  full.dispose();
  for (
    const [arch, mode] of [[MINI_GUNN, "gradual"], [MINI_GUNN, "simultaneous"], [
      SMALL_GUNN,
      "gradual",
    ]] as const
  ) {
    const mini = gunnNetwork({
      arch,
      classes: 10,
      inputShape: [16, 16, 3],
      mode,
      seed: 0,
    });
    assert.strictEqual(trainableCount(mini), gunnParamCount(arch, 10));
    mini.dispose();
  }
});

const TINY = {
  stem: 4,
  stages: [{ width: 6, segments: 3 }, { width: 8, segments: 2 }, { width: 8, segments: 4 }],
  layersPerStage: 1,
};

Deno.test("GUNN network: stage shapes, save → load gives the same outputs, every variable gets a finite gradient", async () => {
  const model = gunnNetwork({
    arch: TINY,
    classes: 5,
    inputShape: [8, 8, 3],
    mode: "gradual",
    seed: 2,
  });
  const shapes = model.layers.filter((l) => l instanceof GunnLayer).map((l) => l.outputShape);
  assert.deepStrictEqual(shapes, [[null, 8, 8, 6], [null, 4, 4, 8], [null, 2, 2, 8]]);
  const x = tf.tensor4d(new Rng(1).normals(4 * 8 * 8 * 3), [4, 8, 8, 3]);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3], "int32"), 5);
  model.apply(x, { training: true }); // move running statistics off their initial values
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads } = tf.variableGrads(
    () =>
      tf.losses.softmaxCrossEntropy(
        labels,
        model.apply(x, { training: true }) as tf.Tensor,
      ) as tf.Scalar,
    vars,
  );
  for (const v of vars) {
    const g = grads[v.name].dataSync();
    assert.ok(g.every(Number.isFinite), `${v.name}: non-finite gradient`);
    assert.ok(g.some((e) => e !== 0), `${v.name}: zero gradient`);
  }
  const dir = await Deno.makeTempDir();
  await saveModel(model, join(dir, "gunn"));
  const loaded = await loadModel(join(dir, "gunn"));
  const a = model.predict(x) as tf.Tensor, b = loaded.predict(x) as tf.Tensor;
  assert.deepStrictEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  assert.strictEqual(
    (loaded.layers.find((l) => l instanceof GunnLayer) as GunnLayer).mode,
    "gradual",
  );
  await Deno.remove(dir, { recursive: true });
  tf.dispose([x, labels, a, b, ...Object.values(grads)]);
  model.dispose();
  loaded.dispose();
});

Deno.test("GUNN fused on a batch large enough for the threaded native paths equals the stock ops", async () => {
  // rows·C = 8,192·24 and the products pass the kernels' thresholds for threads
  const shape: [number, number, number, number] = [32, 16, 16, 24];
  const x = tf.tensor4d(new Rng(31).normals(shape.reduce((a, b) => a * b)), shape);
  const R = tf.tensor4d(new Rng(32).normals(shape.reduce((a, b) => a * b)), shape);
  const results: { y: Float32Array; grads: Float32Array[] }[] = [];
  for (const path of PATHS) {
    await onPath(path, () => {
      const layer = new GunnLayer({ segments: 4, seed: 5 });
      layer.apply(tf.zeros([1, 16, 16, 24]), { training: false });
      const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, R)) as tf.Scalar,
        vars,
      );
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      results.push({
        y: y.dataSync() as Float32Array,
        grads: vars.map((v) => grads[v.name].dataSync() as Float32Array),
      });
      tf.dispose([value, y, ...Object.values(grads)]);
      layer.dispose();
    });
  }
  const [fused, stock] = results;
  const rel = (a: Float32Array, b: Float32Array) =>
    maxAbsDiff(a, b) / Math.max(1, b.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
  assert.ok(rel(fused.y, stock.y) < 1e-5, `output: ${rel(fused.y, stock.y)}`);
  fused.grads.forEach((g, k) =>
    assert.ok(rel(g, stock.grads[k]) < 1e-4, `gradient ${k}: ${rel(g, stock.grads[k])}`)
  );
  tf.dispose([x, R]);
});
