import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/backend/select.ts";
import {
  binaryLoss,
  classifierLogits,
  classifierSpec,
  Generator,
  specSize,
} from "../../lib/supernet/networks.ts";
import { pairTaskSet, taskLabel, versusLastTaskSet } from "../../lib/supernet/tasks.ts";
import { adaptArm, oneHotZ, type ZForm } from "../../lib/supernet/train.ts";
import { syntheticImages } from "../../lib/data/synthetic.ts";
import { subset } from "../../lib/data/dataset.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("native", { log: null });

// ---------------------------------------------------------------------------------------------
// A float64 reference of the classifier: naive loops, TF 'same' padding written out.

type Vol = { d: Float64Array; h: number; w: number; c: number };

/** TF 'same': out = ⌈in/s⌉, pad_total = max((out − 1)·s + k − in, 0), the extra pixel after. */
function convSame(x: Vol, k: ArrayLike<number>, b: ArrayLike<number>, co: number, s: number): Vol {
  const oh = Math.ceil(x.h / s), ow = Math.ceil(x.w / s);
  const pt = Math.floor(Math.max((oh - 1) * s + 5 - x.h, 0) / 2);
  const pl = Math.floor(Math.max((ow - 1) * s + 5 - x.w, 0) / 2);
  const d = new Float64Array(oh * ow * co);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let o = 0; o < co; o++) {
        let acc = b[o];
        for (let ky = 0; ky < 5; ky++) {
          for (let kx = 0; kx < 5; kx++) {
            const iy = oy * s - pt + ky, ix = ox * s - pl + kx;
            if (iy < 0 || ix < 0 || iy >= x.h || ix >= x.w) continue;
            for (let ci = 0; ci < x.c; ci++) {
              acc += x.d[(iy * x.w + ix) * x.c + ci] * k[((ky * 5 + kx) * x.c + ci) * co + o];
            }
          }
        }
        d[(oy * ow + ox) * co + o] = acc;
      }
    }
  }
  return { d, h: oh, w: ow, c: co };
}

function refLogit(img: Vol, w: ArrayLike<number>[], width: number): number {
  let v = img;
  for (let i = 0; i < 4; i++) {
    v = convSame(v, w[2 * i], w[2 * i + 1], width, 2);
    v.d = v.d.map((a) => (a > 0 ? a : 0.2 * a));
  }
  let h = Array.from(v.d);
  for (let j = 0; j < 3; j++) {
    const K = w[8 + 2 * j], bias = w[9 + 2 * j], n = bias.length;
    h = Array.from({ length: n }, (_, o) => h.reduce((s, a, i) => s + a * K[i * n + o], bias[o]));
  }
  return h[0];
}

function refGenerate(z: number[], K: Float64Array[], B: Float64Array[]): Float64Array[] {
  return K.map((k, t) => {
    const n = B[t].length;
    return Float64Array.from(
      { length: n },
      (_, j) => Math.tanh(z.reduce((s, zi, i) => s + zi * k[i * n + j], B[t][j])),
    );
  });
}

// ---------------------------------------------------------------------------------------------

Deno.test("counts: 14 tensors, 37,165 generated numbers, 3,753,665 generator parameters; |w| < 1", () => {
  const spec = classifierSpec([32, 32, 3]);
  assert.equal(spec.length, 14);
  assert.equal(specSize(spec), 37165);
  const G = new Generator(spec, 100, 1);
  assert.equal(G.paramCount(), 3753665);
  for (const z of [tf.tensor1d(new Rng(2).normals(100)), oneHotZ(7, 100)]) {
    const ws = G.generate(z);
    ws.forEach((w, i) => assert.deepEqual(w.shape, spec[i].shape));
    for (const w of ws) assert.ok(w.abs().max().dataSync()[0] < 1);
  }
  assert.equal(specSize(classifierSpec([28, 28, 1])), 37165 - 800);
  G.dispose();
});

Deno.test("TF 'same' stride-2 padding: tf.conv2d equals the naive loop (32 → 16: 1 before, 2 after; 7 → 4)", () => {
  for (const [hw, c, co] of [[32, 3, 4], [7, 2, 3], [8, 1, 2]]) {
    const r = new Rng(hw);
    const x = r.normals(hw * hw * c), k = r.normals(25 * c * co), b = r.normals(co);
    const ref = convSame({ d: Float64Array.from(x), h: hw, w: hw, c }, k, b, co, 2);
    const got = tf.add(
      tf.conv2d(tf.tensor4d(x, [1, hw, hw, c]), tf.tensor4d(k, [5, 5, c, co]), 2, "same"),
      tf.tensor1d(b),
    ).dataSync();
    assert.equal(got.length, ref.d.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - ref.d[i]) < 1e-4, `${hw}: ${v} vs ${ref.d[i]}`));
  }
});

Deno.test("with one-hot z = e_k, every generated tensor is tanh(row k of its kernel + bias), reshaped; only row k gets a gradient", async () => {
  const spec = classifierSpec([8, 8, 1], 4);
  const G = new Generator(spec, 6, 3);
  const z = oneHotZ(2, 6);
  const generated = G.generate(z);
  for (let i = 0; i < spec.length; i++) {
    // an independent reading of the weights: row 2 of the [zDim, size] kernel, plus the bias
    const K = (await G.kernels[i].array()) as number[][], b = await G.biases[i].data();
    const got = await generated[i].data();
    assert.deepEqual(generated[i].shape, spec[i].shape);
    for (let j = 0; j < got.length; j++) {
      assert.ok(Math.abs(got[j] - Math.tanh(K[2][j] + b[j])) < 1e-6, `tensor ${i}, entry ${j}`);
    }
  }
  tf.dispose(generated);
  const x = tf.tensor4d(new Rng(1).normals(5 * 64), [5, 8, 8, 1]);
  const y = tf.tensor1d([0, 1, 1, 0, 1]);
  const { grads } = tf.variableGrads(
    () => binaryLoss(classifierLogits(x, G.generate(z)), y),
    G.kernels,
  );
  for (const k of G.kernels) {
    const g = (await grads[k.name].array()) as number[][];
    g.forEach((row, i) => assert.equal(row.some((v) => v !== 0), i === 2, `${k.name} row ${i}`));
  }
  G.dispose();
});

Deno.test("dL/dz and dL/dK equal finite differences of a float64 reference (4 channels, 8×8)", () => {
  const width = 4, spec = classifierSpec([8, 8, 1], width), zDim = 3;
  const G = new Generator(spec, zDim, 4);
  const r = new Rng(6);
  const imgs = [r.normals(64), r.normals(64)], labels = [0, 1];
  const zv = [0.3, -0.2, 0.5];
  const K = G.kernels.map((k) => Float64Array.from(k.dataSync()));
  const B = G.biases.map((b) => Float64Array.from(b.dataSync()));
  const refLoss = () => {
    const w = refGenerate(zv, K, B);
    return imgs.reduce((s, im, i) => {
      const l = refLogit({ d: Float64Array.from(im), h: 8, w: 8, c: 1 }, w, width);
      return s + Math.max(l, 0) - l * labels[i] + Math.log1p(Math.exp(-Math.abs(l)));
    }, 0) / imgs.length;
  };
  const x = tf.tensor4d([...imgs[0], ...imgs[1]], [2, 8, 8, 1]), y = tf.tensor1d(labels);
  const zVar = tf.variable(tf.tensor1d(zv));
  const { grads } = tf.variableGrads(
    () => binaryLoss(classifierLogits(x, G.generate(zVar as unknown as tf.Tensor1D)), y),
    [zVar, ...G.kernels],
  );
  const h = 1e-6;
  const fd = (bump: (d: number) => void) => {
    bump(h);
    const up = refLoss();
    bump(-2 * h);
    const down = refLoss();
    bump(h);
    return (up - down) / (2 * h);
  };
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 2e-3 * Math.max(1e-2, Math.abs(b)), `${what}: ${a} vs ${b}`);
  const gz = grads[zVar.name].dataSync();
  for (let i = 0; i < zDim; i++) close(gz[i], fd((d) => (zv[i] += d)), `dL/dz[${i}]`);
  for (const t of [0, 1, 8, 12, 13]) {
    const g = grads[G.kernels[t].name].dataSync();
    for (const j of [0, 1, g.length - 1]) close(g[j], fd((d) => (K[t][j] += d)), `dL/dK${t}[${j}]`);
  }
  G.dispose();
});

Deno.test("task builder: twins share images with complementary labels; pairs are balanced", () => {
  const ds = syntheticImages({ n: 120, height: 4, width: 4, channels: 1, numClasses: 4, seed: 1 });
  const tasks = pairTaskSet(ds, ds);
  assert.equal(tasks.length, 12); // 6 pairs and their twins
  for (const t of tasks) {
    const twin = tasks[t.twin];
    assert.equal(twin.twin, t.index);
    assert.deepEqual(Array.from(twin.train), Array.from(t.train));
    for (const i of t.train) assert.equal(taskLabel(t, ds, i) + taskLabel(twin, ds, i), 1);
    const ones = Array.from(t.train).filter((i) => taskLabel(t, ds, i) === 1).length;
    assert.equal(ones * 2, t.train.length);
  }
  const vs = versusLastTaskSet(ds, ds);
  assert.deepEqual(vs.map((t) => [t.negative, t.positive]), [[0, 3], [1, 3], [2, 3]]);
});

Deno.test({
  name:
    "adaptation: z-only leaves G bit-identical and moves z; z+G changes G and restores it; the lr with the lowest validation loss is kept",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const all = syntheticImages({
      n: 200,
      height: 8,
      width: 8,
      channels: 1,
      numClasses: 2,
      seed: 3,
    });
    const data = {
      train: subset(all, Array.from({ length: 160 }, (_, i) => i)),
      test: subset(all, Array.from({ length: 40 }, (_, i) => 160 + i)),
      scaling: "unit" as const,
    };
    const [task] = pairTaskSet(data.train, data.test);
    const spec = classifierSpec([8, 8, 1], 4);
    const G = new Generator(spec, 5, 2);
    const start = await G.checksum();
    const o = {
      maxSteps: 6,
      evalEvery: 3,
      patience: 5,
      lrs: [1e-3, 1e-2],
      zForms: ["plain", "two-vector"] as ZForm[],
      valImages: 30,
      batch: 8,
      seed: 1,
      twinIndex: -1,
      quiet: true,
    };
    const t0 = tf.memory().numTensors;
    const zOnly = await adaptArm("z-only", G, spec, task, data, o);
    assert.equal(tf.memory().numTensors, t0, "z-only left tensors behind");
    assert.equal(zOnly.generatorBefore, start);
    assert.equal(zOnly.generatorAfter, start);
    const pts = zOnly.valCurves[0].points;
    assert.notEqual(pts[0].val_loss, pts.at(-1)!.val_loss, "z did not move");
    // one validation curve per z form and learning rate; the chosen one has the lowest
    // validation loss
    assert.deepEqual(
      zOnly.valCurves.map((c) => `${c.zForm} ${c.lr}`),
      ["plain 0.001", "plain 0.01", "two-vector 0.001", "two-vector 0.01"],
    );
    // both forms start from the same z (b = 0), and the two-vector form moves differently
    // (w and b get the same gradient: twice the RMSProp step on z)
    const [plain, , twoVector] = zOnly.valCurves;
    assert.equal(twoVector.points[0].val_loss, plain.points[0].val_loss);
    assert.notEqual(twoVector.points.at(-1)!.val_loss, plain.points.at(-1)!.val_loss);
    const bestOf = (c: { points: { val_loss: number }[] }) =>
      Math.min(...c.points.map((p) => p.val_loss));
    const chosen = zOnly.valCurves.find((c) => c.lr === zOnly.lr && c.zForm === zOnly.zForm)!;
    assert.ok(zOnly.valCurves.every((c) => bestOf(c) >= bestOf(chosen)));
    assert.equal(
      chosen.points.find((p) => p.val_loss === bestOf(chosen))!.step,
      zOnly.step,
      "the kept step is the one with the lowest validation loss",
    );
    const tensors = tf.memory().numTensors;
    const both = await adaptArm("z+G", G, spec, task, data, o);
    // restoring G after z+G once leaked one tensor per weight
    assert.equal(tf.memory().numTensors, tensors, "z+G left tensors behind");
    assert.notEqual(both.generatorAfter, start, "z+G did not train G");
    assert.equal(await G.checksum(), start, "G not restored after z+G");
    const scratch = await adaptArm("scratch", G, spec, task, data, o);
    assert.equal(scratch.valCurves.length, 2);
    assert.equal(scratch.valCurves[0].points.length, 3); // steps 0, 3, 6
    assert.equal(await G.checksum(), start);
    G.dispose();
  },
});

Deno.test({
  name: "supernet --preset=smoke writes its report; same seed, same numbers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { main, DEFAULTS, SUPERNET_SPEC } = await import("../../scripts/supernet.ts");
    const cfg = { ...DEFAULTS, ...SUPERNET_SPEC.presets.smoke, steps: 30, adaptMaxSteps: 10 };
    const a = await main({ ...cfg, out: await Deno.makeTempDir() }, { quiet: true });
    assert.equal(a.rows.length, 9); // 5 arms on the flipped twin, 4 on the unseen pair
    for (const f of ["summary.md", "summary.html", "generator-seed0-metrics.csv", "completed"]) {
      assert.ok((await Deno.stat(join(a.run.path, f))).size > 0, `${f} missing`);
    }
    const b = await main({ ...cfg, arms: ["z-only"], out: await Deno.makeTempDir() }, {
      quiet: true,
    });
    assert.deepEqual(
      b.rows.map((r) => r.mean),
      a.rows.filter((r) => r.arm === "z-only").map((r) => r.mean),
    );
  },
});

Deno.test("many classes: consecutive pairs (2j, 2j + 1) and twins; held-out twin points at its trained twin", async () => {
  const { tasksOf, splitTasks } = await import("../../scripts/supernet.ts");
  const ds = syntheticImages({ n: 240, height: 4, width: 4, channels: 1, numClasses: 12, seed: 2 });
  const all = tasksOf({ train: ds, test: ds }, "pairs");
  assert.equal(all.length, 12);
  for (const t of all) {
    assert.equal(Math.abs(t.positive - t.negative), 1);
    assert.equal(Math.min(t.positive, t.negative) % 2, 0);
    assert.equal(all[t.twin].twin, t.index);
    assert.equal(all[t.twin].positive, t.negative);
  }
  const { trained, heldOut } = splitTasks(all, "pairs");
  assert.equal(trained.length, 9);
  const [flipped, unseen] = heldOut;
  assert.equal(trained[flipped.twinIndex].index, flipped.task.twin);
  assert.ok(!trained.some((t) => t.index === unseen.task.index || t.index === unseen.task.twin));
  assert.ok(!trained.some((t) => t.index === flipped.task.index));
});
