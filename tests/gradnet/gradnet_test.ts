/** GradNet: parameter counts, block isolation, the test rule, and a smoke run of the pipeline. */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { join } from "node:path";
import { initBackend } from "../../lib/backend/select.ts";
import { cnnCifar, countParams } from "../../lib/models/cnn_cifar.ts";
import { GradNet, gradNetParamCount, parseStructure } from "../../lib/models/gradnet.ts";
import { sumRule } from "../../lib/gradnet/train.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("native", { log: null });

const CIFAR64 = [4800, 102400, 23040];
const CIFAR16 = [1200, 6400, 5760];

Deno.test("parameter counts: base 130,378; GradNet 10,841,440 / 2,814,850 / 224,050", () => {
  assert.strictEqual(countParams(cnnCifar(64)), 130378);
  const count = (blocks: number[], s: string) =>
    gradNetParamCount({
      blockSizes: blocks,
      hidden: parseStructure(s),
      classes: 10,
      batchNorm: false,
    });
  assert.strictEqual(count(CIFAR64, "5+100+25"), 10841440);
  assert.strictEqual(count(CIFAR64, "5+25+10"), 2814850);
  assert.strictEqual(count(CIFAR16, "5+25+10"), 224050);
  const built = new GradNet({
    blockSizes: CIFAR16,
    hidden: [5, 25, 10],
    classes: 10,
    dropout: 0,
    batchNorm: false,
    seed: 1,
  });
  assert.strictEqual(built.paramCount(), 224050);
  built.dispose();
});

Deno.test("the h = 16 gradient blocks of cnn_cifar are 1,200 / 6,400 / 5,760 (13,360 numbers)", async () => {
  const { gradientLayout } = await import("../../lib/gradients/per_example.ts");
  assert.deepStrictEqual(gradientLayout(cnnCifar(16)).blocks.map((b) => b.size), CIFAR16);
});

Deno.test("parseStructure() reads 5+25+10 and rejects nonsense", () => {
  assert.deepStrictEqual(parseStructure("5+25+10"), [5, 25, 10]);
  assert.throws(() => parseStructure("5+x"), /not like 5\+25\+10/);
  assert.throws(() => parseStructure("5+0+1"), /not like/);
});

Deno.test("block isolation: changing block 1's inputs changes only block 1's hidden units", () => {
  const net = new GradNet({
    blockSizes: [6, 9, 4],
    hidden: [3, 5, 2],
    classes: 10,
    dropout: 0,
    batchNorm: false,
    seed: 2,
  });
  const rng = new Rng(3);
  const x = rng.normals(4 * 19);
  const y = x.slice();
  for (let r = 0; r < 4; r++) for (let j = 0; j < 6; j++) y[r * 19 + j] += rng.normal();
  const hx = net.hiddenLayer(tf.tensor2d(x, [4, 19])).arraySync();
  const hy = net.hiddenLayer(tf.tensor2d(y, [4, 19])).arraySync();
  for (let r = 0; r < 4; r++) {
    assert.deepStrictEqual(hx[r].slice(3), hy[r].slice(3), "units of blocks 2 and 3 changed");
  }
  assert.ok(
    hx.some((row, r) => row.slice(0, 3).some((v, j) => v !== hy[r][j])),
    "block 1 did not react",
  );
  net.dispose();
});

Deno.test("sumRule(): the prediction is the argmax of the logits summed over the label gradients", async () => {
  // Two images, K = 3 label gradients each, C = 3 classes. Image 0: no single row's argmax is 2,
  // but the sum's is. Image 1: rows disagree; the sum picks class 0.
  const logits = tf.tensor2d([
    [3, 0, 2.5],
    [0, 3, 2.5],
    [0, 0, 2],
    [5, 0, 0],
    [0, 2, 0],
    [0, 2, 0],
  ]);
  assert.deepStrictEqual(Array.from(await sumRule(logits, 2, 3)), [2, 0]);
});

Deno.test({
  name:
    "gradnet --preset=smoke: GradNet beats its weak base networks by ≥ 0.05 and is far above chance",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, GRADNET_SPEC } = await import("../../scripts/gradnet.ts");
    const out = await Deno.makeTempDir();
    const { run, table } = await main({
      ...DEFAULTS,
      ...GRADNET_SPEC.presets.smoke,
      out,
      backend: "native" as const,
    }, { quiet: true });
    for (
      const f of [
        "config.json",
        "base-metrics.csv",
        "table.json",
        "table.md",
        "table.html",
        "gradnet-curves.html",
        "summary.json",
        "completed",
      ]
    ) {
      assert.ok((await Deno.stat(join(run.path, f))).size > 0, `${f} missing`);
    }
    // The synthetic task leaves class signal in a weak base network's gradients (seed 0; measured
    // 0.438 → 0.964 and 0.808 → 0.894): the method must find it. A broken test rule, features or
    // training lands near chance (0.1).
    assert.strictEqual(table.length, 2, "both rungs (0.3, 0.6) reached");
    for (const r of table) {
      assert.ok(
        r.gradnet_acc - r.base_acc >= 0.05,
        `rung ${r.rung}: ${r.base_acc} → ${r.gradnet_acc}`,
      );
      assert.ok(r.gradnet_acc >= 0.5, `rung ${r.rung}: GradNet ${r.gradnet_acc}`);
      assert.ok(Math.abs(r.gain - (r.gradnet_acc / r.base_acc - 1)) < 1e-12);
    }
    const md = await Deno.readTextFile(join(run.path, "table.md"));
    assert.match(md, /\| rung \| target \(validation\) \| base val \| base test \| GradNet test/);
  },
});

Deno.test({
  name: "gradnet: rungs and curves never read the test set; each final model is scored on it once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, GRADNET_SPEC } = await import("../../scripts/gradnet.ts");
    const { gradNetData } = await import("../../lib/gradnet/ladder.ts");
    // the smoke preset's synthetic data, as the script loads it
    const split = await gradNetData({ dataset: "synthetic", dataDir: "" });
    /** The test split behind a getter that counts image reads (one per image featurised). */
    const counted = (labels: Int32Array) => {
      const t = { ...split.test, labels, reads: 0 };
      const images = split.test.images;
      Object.defineProperty(t, "images", { get: () => (t.reads++, images) });
      return t;
    };
    const cfg = {
      ...DEFAULTS,
      ...GRADNET_SPEC.presets.smoke,
      backend: "native" as const,
      epochs: 4,
    };
    const a = counted(split.test.labels);
    const shuffled = Int32Array.from(split.test.labels, (y) => (y + 3) % 10);
    const b = counted(shuffled);
    const ra = await main({ ...cfg, out: await Deno.makeTempDir() }, {
      quiet: true,
      data: { train: split.train, test: a },
    });
    const rb = await main({ ...cfg, out: await Deno.makeTempDir() }, {
      quiet: true,
      data: { train: split.train, test: b },
    });
    // Every choice is the same whatever the test labels are: rungs, snapshots, validation curves.
    const choices = (r: typeof ra) =>
      r.table.map((row) => [row.target, row.base_step, row.base_val_acc]);
    assert.deepStrictEqual(choices(rb), choices(ra));
    assert.deepStrictEqual(rb.curves.map((c) => c.y), ra.curves.map((c) => c.y));
    // …while the test scores do see the labels (the shifted labels are all wrong).
    assert.ok(rb.table.every((row) => row.gradnet_acc < 0.2 && row.base_acc < 0.2));
    // Per rung: the base snapshot and the final GradNet each read every test image once.
    assert.strictEqual(a.reads, ra.table.length * 2 * split.test.n);
  },
});

Deno.test({
  name: "gradnet --cache=file: the numbers of the in-memory cache, and no feature file left behind",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, GRADNET_SPEC } = await import("../../scripts/gradnet.ts");
    const cfg = {
      ...DEFAULTS,
      ...GRADNET_SPEC.presets.smoke,
      backend: "native" as const,
      epochs: 6,
    };
    const mem = await main({ ...cfg, out: await Deno.makeTempDir() }, { quiet: true });
    const file = await main(
      { ...cfg, cache: "file" as const, out: await Deno.makeTempDir() },
      { quiet: true },
    );
    const numbers = (r: typeof mem) => r.table.map((row) => [row.base_acc, row.gradnet_acc]);
    assert.deepStrictEqual(numbers(file), numbers(mem));
    assert.deepStrictEqual(file.table.map((r) => r.features), ["cached-file", "cached-file"]);
    assert.deepStrictEqual(mem.table.map((r) => r.features), ["cached", "cached"]);
    assert.deepStrictEqual(file.curves.map((c) => c.y), mem.curves.map((c) => c.y));
    for await (const e of Deno.readDir(file.run.path)) {
      assert.ok(!e.name.endsWith("-features.bin"), `${e.name} left in the run folder`);
    }
  },
});
