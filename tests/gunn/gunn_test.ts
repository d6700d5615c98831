import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import { channelStats, downsample, gunnTestBatch, gunnTrainBatch } from "../../lib/gunn/data.ts";
import { gunnNetwork, MINI_GUNN } from "../../lib/models/gunn.ts";
import { syntheticImages } from "../../lib/data/synthetic.ts";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("native", { log: null });

function tiny(): ImageDataset {
  return syntheticImages({ n: 6, height: 4, width: 4, channels: 2, numClasses: 3, seed: 2 });
}

Deno.test("downsample() averages 2×2 blocks (hand-computed) and refuses odd sides", () => {
  const ds = tiny();
  const small = downsample(ds, 2);
  assert.deepEqual([small.height, small.width, small.channels], [2, 2, 2]);
  const px = (d: ImageDataset, i: number, y: number, x: number, k: number) =>
    d.images[i * d.height * d.width * d.channels + (y * d.width + x) * d.channels + k];
  for (const [i, y, x, k] of [[0, 0, 0, 0], [3, 1, 0, 1], [5, 1, 1, 0]]) {
    const s = px(ds, i, 2 * y, 2 * x, k) + px(ds, i, 2 * y, 2 * x + 1, k) +
      px(ds, i, 2 * y + 1, 2 * x, k) + px(ds, i, 2 * y + 1, 2 * x + 1, k);
    assert.equal(px(small, i, y, x, k), Math.round(s / 4));
  }
  assert.throws(() => downsample(ds, 3), RangeError);
});

Deno.test("channelStats() equals a two-pass mean and standard deviation per channel", () => {
  const ds = tiny();
  const { mean, std } = channelStats(ds);
  for (let k = 0; k < 2; k++) {
    const v = Array.from(ds.images).filter((_, j) => j % 2 === k);
    const m = v.reduce((s, a) => s + a, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, a) => s + (a - m) ** 2, 0) / v.length);
    assert.ok(Math.abs(mean[k] - m) < 1e-9 && Math.abs(std[k] - sd) < 1e-9);
  }
});

Deno.test("GUNN batches: the test view is (x − mean)/std; Jigsaw and flips only move pixels", () => {
  const ds = tiny(), idx = [0, 1, 2, 3, 4, 5];
  const view = { mean: [100, 120], std: [50, 60], flip: false, pad: 0, jigsaw: false };
  const t = gunnTestBatch(ds, idx, view).dataSync();
  t.forEach((v, j) =>
    assert.ok(Math.abs(v - (ds.images[j] - view.mean[j % 2]) / view.std[j % 2]) < 1e-5)
  );
  const plain = gunnTrainBatch(ds, idx, new Rng(1), view).dataSync();
  assert.deepEqual(Array.from(plain), Array.from(t));
  // flips and cyclic shifts permute each image's pixels: its sorted values are unchanged
  const moved = gunnTrainBatch(ds, idx, new Rng(1), { ...view, flip: true, jigsaw: true })
    .dataSync();
  const size = 4 * 4 * 2;
  let changed = 0;
  for (let i = 0; i < idx.length; i++) {
    const a = Array.from(t.slice(i * size, (i + 1) * size));
    const b = Array.from(moved.slice(i * size, (i + 1) * size));
    if (a.some((v, j) => v !== b[j])) changed++;
    assert.deepEqual([...a].sort((p, q) => p - q), [...b].sort((p, q) => p - q));
  }
  assert.ok(changed > 0, "no image was flipped or shifted");
  // the pad-crop brings in zeros, i.e. the mean colour after normalisation
  const cropped = gunnTrainBatch(ds, idx, new Rng(3), { ...view, pad: 1 }).dataSync();
  assert.ok(Array.from(cropped).some((v) => v === 0));
});

Deno.test("GUNN and SUNN of one seed start from identical weights (same init stream)", () => {
  const build = (mode: "gradual" | "simultaneous", seed: number) =>
    gunnNetwork({ arch: MINI_GUNN, mode, inputShape: [8, 8, 3], classes: 4, seed });
  const g = build("gradual", 5), s = build("simultaneous", 5), other = build("gradual", 6);
  const w = (m: tf.LayersModel) => m.weights.map((v) => Array.from(v.read().dataSync()));
  assert.deepEqual(w(g), w(s));
  assert.notDeepEqual(w(g), w(other));
  // …and compute different functions
  const x = tf.tensor4d(new Rng(1).normals(2 * 8 * 8 * 3), [2, 8, 8, 3]);
  const yg = (g.apply(x, { training: true }) as tf.Tensor).dataSync();
  const ys = (s.apply(x, { training: true }) as tf.Tensor).dataSync();
  assert.ok(yg.some((v, i) => Math.abs(v - ys[i]) > 1e-4));
  for (const m of [g, s, other]) m.dispose();
});

Deno.test({
  name:
    "gunn --preset=smoke: both arms over two seeds, artifacts written, same seed → same numbers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, GUNN_SPEC, meanSd } = await import("../../scripts/gunn.ts");
    const cfg = { ...DEFAULTS, ...GUNN_SPEC.presets.smoke, backend: "native" as const };
    const a = await main({ ...cfg, out: await Deno.makeTempDir() }, { quiet: true });
    assert.deepEqual(a.arms.map((r) => r.arm), ["GUNN", "SUNN"]);
    for (const r of a.arms) {
      assert.equal(r.testAcc.length, 2);
      assert.ok(r.testAcc.every((v) => v >= 0 && v <= 1));
      assert.ok(r.imagesPerSecond > 0 && r.params === a.arms[0].params);
      const { mean, sd } = meanSd(r.testAcc);
      assert.ok(
        Math.abs(r.mean - mean) < 1e-12 && (Number.isNaN(sd) || Math.abs(r.sd - sd) < 1e-12),
      );
    }
    for (
      const f of [
        "summary.md",
        "summary.html",
        "GUNN-seed0-metrics.csv",
        "SUNN-seed1.json",
        "completed",
      ]
    ) {
      assert.ok((await Deno.stat(join(a.run.path, f))).size > 0, `${f} missing`);
    }
    // the static curves: one line per arm and seed
    for (const f of ["test-accuracy.svg", "train-loss.svg"]) {
      const svg = await Deno.readTextFile(join(a.run.path, f));
      assert.equal(svg.match(/<polyline /g)?.length, 4, f);
    }
    const b = await main({ ...cfg, seeds: 1, out: await Deno.makeTempDir() }, { quiet: true });
    assert.deepEqual(b.arms.map((r) => r.testAcc[0]), a.arms.map((r) => r.testAcc[0]));
    assert.deepEqual(meanSd([1, 2, 3, 4]), { mean: 2.5, sd: Math.sqrt(5 / 3) });
  },
});
