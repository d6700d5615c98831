/**
 * The feature cache and the sparse GradNet against their references: cached rows equal the
 * on-the-fly features bit for bit; a sparse SGD step equals a TF.js autodiff step on the dense
 * rows; the sparse sum rule equals the TF.js sum rule and ignores the order of the label rows.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { initBackend } from "../../lib/backend/select.ts";
import { cnnCifar } from "../../lib/models/cnn_cifar.ts";
import { GradNet } from "../../lib/models/gradnet.ts";
import { netFromModel } from "../../lib/gradients/network.ts";
import { syntheticSplit } from "../../lib/data/named.ts";
import { Featurizer } from "../../lib/gradnet/features.ts";
import { FeatureCache, type SparseRow } from "../../lib/gradnet/cache.ts";
import { SparseGradNet } from "../../lib/gradnet/sparse.ts";
import { sumRule } from "../../lib/gradnet/train.ts";
import { testView } from "../../lib/gradnet/preprocess.ts";
import { softmaxClassification } from "../../lib/train/fit.ts";
import { Rng } from "../../lib/util/rng.ts";
import { RunningStats } from "../../lib/gradients/normalize.ts";

await initBackend("native", { log: null });

const data = syntheticSplit({
  n: 80,
  train: 60,
  height: 12,
  width: 12,
  channels: 1,
  numClasses: 4,
  seed: 3,
  noise: 30,
});
const view = { policy: "none" as const, crop: 12 };

function featurizer(base: tf.LayersModel): Featurizer {
  return new Featurizer(netFromModel(base), {
    sparsify: true,
    selectionPercent: 15,
    normalization: "scale_power",
  });
}

Deno.test("cached features equal on-the-fly features bit for bit (statistics included)", async () => {
  const base = cnnCifar(3, { inputShape: [12, 12, 1], classes: 4, seed: 5 });
  const f = featurizer(base);
  const cache = await FeatureCache.build(f, (idx) => testView(data.train, idx, view), 60, 4, {
    chunk: 16, // chunks of unequal size: 16, 16, 16, 12
    label: "cache",
    quiet: true,
    statistics: true,
  });
  assert.ok(f.stats, "statistics were not set");
  const g = featurizer(base);
  const idx = Array.from({ length: 60 }, (_, i) => i);
  const x = testView(data.train, idx, view);
  // The statistics: those of every raw (sparsified) row, all labels, zeros included.
  const dense = new RunningStats(f.layout.size);
  dense.update((await g.allLabelRows(x, 4, { normalize: false })).rows);
  assert.deepStrictEqual(f.stats, dense.result());
  // The rows: the featurizer's on-the-fly rows with the same statistics.
  g.stats = f.stats;
  const { rows } = await g.allLabelRows(x, 4);
  x.dispose();
  // scale_power with the training rows' own min/max: every training feature lies in [0, 1]
  assert.ok(rows.every((v) => v >= 0 && v <= 1), "a training feature outside [0, 1]");
  const P = f.layout.size;
  let entries = 0;
  for (let i = 0; i < 60; i++) {
    for (let k = 0; k < 4; k++) {
      const want = rows.subarray((i * 4 + k) * P, (i * 4 + k + 1) * P);
      assert.deepStrictEqual(cache.dense(i, k), want, `example ${i}, label ${k}`);
      entries += cache.row(i, k).index.length;
    }
  }
  assert.strictEqual(entries, cache.entries);
  // top-15 % per layer: about 15 % of the entries are stored
  const share = cache.entries / (60 * 4 * P);
  assert.ok(share > 0.1 && share <= 0.16, `stored share ${share}`);
  base.dispose();
});

/** A small GradNet and random sparse rows in its layout. */
function setup(seed: number) {
  const blockSizes = [7, 30, 11], hidden = [2, 4, 3], classes = 5;
  const net = new GradNet({ blockSizes, hidden, classes, dropout: 0, batchNorm: false, seed });
  const P = 48, rng = new Rng(seed + 1);
  const dense = (n: number) => {
    const d = new Float32Array(n * P);
    for (let i = 0; i < d.length; i++) if (rng.uniform(0, 1) < 0.3) d[i] = rng.uniform(0, 1);
    return d;
  };
  const sparse = (d: Float32Array, r: number): SparseRow => {
    const idx: number[] = [], val: number[] = [];
    for (let j = 0; j < P; j++) {
      if (d[r * P + j] !== 0) {
        idx.push(j);
        val.push(d[r * P + j]);
      }
    }
    return { index: Uint16Array.from(idx), value: Float32Array.from(val) };
  };
  return { net, P, classes, dense, sparse, rng };
}

for (const native of [true, false]) {
  const impl = native ? "native C" : "TypeScript";
  Deno.test(`a sparse SGD step (${impl}) equals a TF.js autodiff SGD step on the dense rows`, async () => {
    const { net, P, classes, dense, sparse, rng } = setup(1);
    // Make the hidden layer active: biases up, so ReLUs pass and every path gets a gradient.
    net.params.forEach((v, i) => {
      if (i % 2 === 1 && i < 6) v.assign(tf.fill(v.shape, 0.01));
    });
    const sn = await SparseGradNet.fromGradNet(net, { native });
    const B = 6, lr = 0.3;
    const d = dense(B);
    const targets = Int32Array.from({ length: B }, () => rng.int(classes));
    const r = sn.step(Array.from({ length: B }, (_, e) => sparse(d, e)), targets, lr);
    // reference: mean CE through TF.js autodiff, w ← w − lr·g
    const x = tf.tensor2d(d, [B, P]);
    const y = tf.oneHot(tf.tensor1d(targets, "int32"), classes);
    const { value, grads } = tf.variableGrads(
      () => softmaxClassification(net.apply(x as tf.Tensor2D, { training: true }), y).loss,
      net.params,
    );
    assert.ok(Math.abs(r.loss / B - (await value.data())[0]) < 1e-5, "loss differs");
    for (const [i, p] of net.params.entries()) {
      const want = tf.tidy(() => p.sub(grads[p.name].mul(lr)));
      const got = sn.arrays()[i];
      const w = await want.data();
      let worst = 0;
      for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(got[j] - w[j]));
      assert.ok(worst < 1e-6, `parameter ${i}: max difference ${worst}`);
      // the step moved something in every parameter (no path silently dropped)
      const before = await p.data();
      assert.ok(got.some((v, j) => v !== before[j]), `parameter ${i} did not move`);
      want.dispose();
    }
    tf.dispose([x, y, value, ...Object.values(grads)]);
    net.dispose();
  });

  Deno.test(`the sparse sum rule (${impl}) equals the TF.js sum rule, whatever the order of label rows`, async () => {
    const { net, P, classes, dense, sparse, rng } = setup(4);
    const sn = await SparseGradNet.fromGradNet(net, { native });
    const n = 12, K = 4;
    const d = dense(n * K);
    const logits = tf.tidy(() => net.apply(tf.tensor2d(d, [n * K, P]), { training: false }));
    const want = await sumRule(logits, n, K);
    logits.dispose();
    for (let i = 0; i < n; i++) {
      const rows = Array.from({ length: K }, (_, k) => sparse(d, i * K + k));
      assert.strictEqual(sn.predictSum(rows), want[i], `image ${i}`);
      const shuffled = Array.from(rng.permutation(K), (k) => rows[k]);
      assert.strictEqual(sn.predictSum(shuffled), want[i], `image ${i}, permuted rows`);
    }
    assert.ok(new Set(want).size > 1 || classes < 2, "degenerate case: one class predicted");
    net.dispose();
  });
}

Deno.test("sparse GradNet training: interrupted and resumed, it ends with the uninterrupted weights", async () => {
  const { RunDir } = await import("../../lib/run/run_dir.ts");
  const { trainGradNetSparse, cachedRows } = await import("../../lib/gradnet/train.ts");
  const { setInterruptRequested } = await import("../../lib/util/interrupt.ts");
  const { InterruptedError } = await import("../../lib/util/interrupt.ts");
  const { net: template, P, classes, dense, rng } = setup(6);
  template.dispose();
  const n = 40, K = classes;
  const cache = FeatureCache.fromDense(dense(n * K), n, K, P);
  const labels = Int32Array.from({ length: n }, () => rng.int(classes));
  const opts = { seed: 3, epochs: 3, batch: 5, lr: 0.2, name: "gn", quiet: true };
  const fresh = () =>
    new GradNet({
      blockSizes: [7, 30, 11],
      hidden: [2, 4, 3],
      classes,
      dropout: 0,
      batchNorm: false,
      seed: 6,
    });
  const weights = async (net: GradNet) => (await net.toArrays()).map((a) => Array.from(a.values));
  // uninterrupted
  const a = fresh();
  const runA = await RunDir.create({ out: await Deno.makeTempDir(), paper: "t", config: {} });
  await trainGradNetSparse(runA, a, cachedRows({ cache, labels }), null, opts);
  // interrupted at the first step, then resumed in the same folder with a new network
  const b = fresh();
  const runB = await RunDir.create({ out: await Deno.makeTempDir(), paper: "t", config: {} });
  setInterruptRequested(true);
  await assert.rejects(
    trainGradNetSparse(runB, b, cachedRows({ cache, labels }), null, opts),
    InterruptedError,
  );
  setInterruptRequested(false);
  const c = fresh();
  const { history } = await trainGradNetSparse(runB, c, cachedRows({ cache, labels }), null, opts);
  assert.strictEqual(history.length, 3);
  assert.deepStrictEqual(await weights(c), await weights(a));
  const untrained = fresh();
  assert.notDeepStrictEqual(await weights(c), await weights(untrained), "training changed nothing");
  [a, b, c, untrained].forEach((net) => net.dispose());
});

Deno.test("sparse GradNet training on rows in memory lets a signal in: a stop asked for by a timer ends it early", async () => {
  const { RunDir } = await import("../../lib/run/run_dir.ts");
  const { trainGradNetSparse, cachedRows } = await import("../../lib/gradnet/train.ts");
  const { setInterruptRequested, InterruptedError } = await import("../../lib/util/interrupt.ts");
  const { net, P, classes, dense, rng } = setup(7);
  const n = 40;
  const cache = FeatureCache.fromDense(dense(n * classes), n, classes, P);
  const labels = Int32Array.from({ length: n }, () => rng.int(classes));
  const run = await RunDir.create({ out: await Deno.makeTempDir(), paper: "t", config: {} });
  // a signal handler runs as an event, like this timer: rows from memory resolve at once, so
  // without a yield the loop would train every epoch before the timer could fire
  const epochs = 20_000;
  const timer = setTimeout(() => setInterruptRequested(true), 20);
  try {
    const opts = {
      seed: 3,
      epochs,
      batch: 5,
      lr: 0.1,
      name: "gn",
      quiet: true,
      checkpointSeconds: 1e9,
    };
    await assert.rejects(
      trainGradNetSparse(run, net, cachedRows({ cache, labels }), null, opts),
      (e: Error) =>
        e instanceof InterruptedError && Number(/epoch (\d+)/.exec(e.message)?.[1]) < epochs,
    );
  } finally {
    clearTimeout(timer);
    setInterruptRequested(false);
    net.dispose();
  }
});

Deno.test("the native sparse step walks the weights in tiles: same as the TypeScript step, and the same bits at 1 and 2 threads", async () => {
  const { loadedNativeLib, currentBackend } = await import("../../lib/backend/select.ts");
  const lib = loadedNativeLib()!;
  const threadsBefore = currentBackend()!.threads;
  // blocks big enough for many tiles of ~40 KB (5,000 rows × 40 units: 20), a row split between
  // threads inside the big block, and 40 rows (more than one group of 32 in the forward pass)
  const blockSizes = [900, 5000, 300], hidden = [3, 40, 7], classes = 6, P = 6200, B = 40;
  const rng = new Rng(9);
  const rows: SparseRow[] = Array.from({ length: B }, () => {
    const idx: number[] = [];
    for (let j = 0; j < P; j++) if (rng.uniform(0, 1) < 0.15) idx.push(j);
    return { index: Uint16Array.from(idx), value: Float32Array.from(idx, () => rng.uniform(0, 1)) };
  });
  const targets = Int32Array.from({ length: B }, () => rng.int(classes));
  const values = () => {
    const r = new Rng(3);
    const out: Float32Array[] = [];
    blockSizes.forEach((d, i) => {
      out.push(Float32Array.from({ length: d * hidden[i] }, () => r.normal() * 0.05));
      out.push(new Float32Array(hidden[i]).fill(0.01));
    });
    const H = hidden.reduce((a, b) => a + b);
    out.push(
      Float32Array.from({ length: H * classes }, () => r.normal() * 0.05),
      new Float32Array(classes),
    );
    return out;
  };
  const train = (native: boolean, threads: number) => {
    lib.setThreads(threads);
    const net = new SparseGradNet(blockSizes, hidden, classes, values(), { native });
    const losses = [0, 1, 2].map(() => net.step(rows, targets, 0.5).loss);
    return { losses, theta: net.theta.slice() };
  };
  try {
    const ts = train(false, 1), one = train(true, 1), two = train(true, 2);
    // a count, not deepStrictEqual: on a failure, the diff of two 240,000-number arrays took
    // 20 GB (the OOM killer ended it)
    const differing = (a: Float32Array, b: Float32Array) =>
      a.filter((v, j) => !Object.is(v, b[j])).length;
    assert.strictEqual(differing(two.theta, one.theta), 0, "2 threads changed the bits");
    assert.deepStrictEqual(two.losses, one.losses);
    let worst = 0;
    for (let j = 0; j < ts.theta.length; j++) {
      worst = Math.max(worst, Math.abs(one.theta[j] - ts.theta[j]));
    }
    assert.ok(worst < 2e-6, `native vs TypeScript: max difference ${worst}`);
    one.losses.forEach((l, s) => assert.ok(Math.abs(l - ts.losses[s]) < 1e-4 * B, `loss ${s}`));
    const moved = values().flatMap((v) => Array.from(v)).filter((v, j) => v !== one.theta[j]);
    assert.ok(moved.length > 0.1 * ts.theta.length, "the steps moved few weights");
  } finally {
    lib.setThreads(threadsBefore);
  }
});

Deno.test("the native step's register kernels at every block width (1 … 8 vectors, masked tails, and past 8) match the TypeScript step", () => {
  // hidden units per block: 1, one vector, one vector + 1, the paper's 100 and 25, 8 full
  // vectors, and 129 (past the register kernels: the plain loop)
  const hidden = [1, 16, 17, 100, 25, 128, 129], blockSizes = hidden.map((_, b) => 40 + 13 * b);
  const classes = 4, B = 12, P = blockSizes.reduce((a, b) => a + b);
  const rng = new Rng(21);
  const batches = [0, 1, 2].map(() =>
    Array.from({ length: B }, () => {
      const idx: number[] = [];
      for (let j = 0; j < P; j++) if (rng.uniform(0, 1) < 0.3) idx.push(j);
      return {
        index: Uint16Array.from(idx),
        value: Float32Array.from(idx, () => rng.uniform(-1, 1)),
      };
    })
  );
  const targets = Int32Array.from({ length: B }, () => rng.int(classes));
  const values = () => {
    const r = new Rng(5);
    const out: Float32Array[] = [];
    blockSizes.forEach((d, i) => {
      out.push(Float32Array.from({ length: d * hidden[i] }, () => r.normal() * 0.1));
      out.push(Float32Array.from({ length: hidden[i] }, () => r.normal() * 0.1));
    });
    const H = hidden.reduce((a, b) => a + b);
    out.push(
      Float32Array.from({ length: H * classes }, () => r.normal() * 0.1),
      new Float32Array(classes),
    );
    return out;
  };
  const [native, ts] = [true, false].map((n) =>
    new SparseGradNet(blockSizes, hidden, classes, values(), { native: n })
  );
  for (const rows of batches) {
    const a = native.step(rows, targets, 0.3), b = ts.step(rows, targets, 0.3);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-4 * B, `loss ${a.loss} vs ${b.loss}`);
    assert.strictEqual(native.predictSum(rows.slice(0, 3)), ts.predictSum(rows.slice(0, 3)));
  }
  let worst = 0, moved = 0;
  const start = values().flatMap((v) => Array.from(v));
  for (let j = 0; j < ts.theta.length; j++) {
    worst = Math.max(worst, Math.abs(native.theta[j] - ts.theta[j]));
    if (native.theta[j] !== start[j]) moved++;
  }
  assert.ok(worst < 2e-6, `native vs TypeScript: max difference ${worst}`);
  assert.ok(moved > 0.2 * start.length, `the steps moved ${moved} of ${start.length} weights`);
});

Deno.test("native row compression keeps every nonzero in order (uint16 and uint32 indices, ragged tails)", async () => {
  const { loadedNativeLib } = await import("../../lib/backend/select.ts");
  const lib = loadedNativeLib()!;
  const rng = new Rng(4);
  for (const P of [37, 1000, 65536 + 21]) {
    const rows = 5;
    const dense = Float32Array.from(
      { length: rows * P },
      () => (rng.uniform(0, 1) < 0.2 ? rng.normal() : rng.uniform(0, 1) < 0.1 ? -0 : 0),
    );
    dense[3] = 1; // a row that starts with an entry
    const got = lib.compressRows(dense, P);
    assert.strictEqual(got.index instanceof Uint32Array, P > 65536);
    let e = 0;
    for (let r = 0; r < rows; r++) {
      assert.strictEqual(got.rowStart[r], e, `P ${P}, row ${r} start`);
      for (let j = 0; j < P; j++) {
        const v = dense[r * P + j];
        if (v === 0) continue; // −0 too
        assert.strictEqual(got.index[e], j, `P ${P}, row ${r}, entry ${e}`);
        assert.strictEqual(got.value[e], v);
        e++;
      }
    }
    assert.strictEqual(got.rowStart[rows], e);
    assert.strictEqual(got.value.length, e);
  }
});
