/** Optimizers against scalar reference implementations of their update rules. */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { Adam, RmsProp, Sgd } from "../../lib/train/optimizers.ts";
import { lrAt } from "../../lib/train/schedule.ts";
import { initBackend, loadedNativeLib } from "../../lib/backend/select.ts";

await initBackend("cpu", { log: null });

const W0 = [0.5, -1.2, 2.0];
const GRADS = [[0.1, -0.3, 0.2], [0.05, 0.4, -0.1], [-0.2, 0.1, 0.3]];

function run(
  make: (v: tf.Variable) => { apply(g: tf.Tensor[], lr: number): void },
  lr: number,
): number[] {
  const v = tf.variable(tf.tensor(W0));
  const opt = make(v);
  for (const g of GRADS) opt.apply([tf.tensor(g)], lr);
  return Array.from(v.dataSync());
}

function close(a: number[], b: number[]) {
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-6, `${a} vs ${b}`));
}

// cpu composes the update from TF.js ops; native runs it as one fused kernel
for (const backend of ["cpu", "native"] as const) {
  Deno.test(`Sgd (${backend}) with momentum, Nesterov and weight decay follows v ← μv + g + wd·w; w ← w − lr(g' + μv)`, async () => {
    await initBackend(backend, { log: null });
    const mu = 0.9, wd = 1e-2, lr = 0.1;
    const w = [...W0], v = [0, 0, 0];
    for (const g of GRADS) {
      for (let i = 0; i < 3; i++) {
        const d = g[i] + wd * w[i];
        v[i] = mu * v[i] + d;
        w[i] -= lr * (d + mu * v[i]);
      }
    }
    close(run((p) => new Sgd([p], { momentum: mu, nesterov: true, weightDecay: wd }), lr), w);
    if (backend === "native") assert.ok((loadedNativeLib()!.calls.sgdUpdate ?? 0) > 0);
  });

  Deno.test(`Sgd (${backend}) without momentum is w ← w − lr·g`, async () => {
    await initBackend(backend, { log: null });
    const w = W0.map((x, i) => x - 0.5 * GRADS.reduce((s, g) => s + g[i], 0));
    close(run((p) => new Sgd([p]), 0.5), w);
  });
}

Deno.test("Sgd on native updates every parameter in one kernel, each as the scalar rule", async () => {
  await initBackend("native", { log: null });
  const mu = 0.9, wd = 1e-2, lr = 0.1;
  const starts = [[0.5, -1.2, 2.0], [1.5, 0.25], [-0.75]];
  const vars = starts.map((w) => tf.variable(tf.tensor(w)));
  const opt = new Sgd(vars, { momentum: mu, nesterov: true, weightDecay: wd });
  const want = starts.map((w) => [...w]), vel = starts.map((w) => w.map(() => 0));
  const kernels: string[] = [];
  for (const [step, g] of GRADS.entries()) {
    const grads = starts.map((w, k) => w.map((_, i) => g[(i + k) % 3] * (k + 1)));
    want.forEach((w, k) =>
      w.forEach((_, i) => {
        const d = grads[k][i] + wd * w[i];
        vel[k][i] = mu * vel[k][i] + d;
        w[i] -= lr * (d + mu * vel[k][i]);
      })
    );
    const gt = grads.map((gk) => tf.tensor(gk));
    const profile = await tf.profile(() => opt.apply(gt, lr));
    if (step === 0) kernels.push(...profile.kernels.map((k) => k.name));
    tf.dispose(gt);
  }
  vars.forEach((v, k) => close(Array.from(v.dataSync()), want[k]));
  assert.deepEqual(kernels.filter((k) => k.startsWith("GradlabSgd")), ["GradlabSgdUpdateMany"]);
  opt.dispose();
  tf.dispose(vars);
});

for (const backend of ["cpu", "native"] as const) {
  Deno.test(`RmsProp (${backend}) follows s ← ρs + (1−ρ)g²; w ← w − lr·g/√(s+ε)`, async () => {
    await initBackend(backend, { log: null });
    const rho = 0.9, eps = 1e-10, lr = 0.01;
    const w = [...W0], s = [1, 1, 1];
    for (const g of GRADS) {
      for (let i = 0; i < 3; i++) {
        s[i] = rho * s[i] + (1 - rho) * g[i] * g[i];
        w[i] -= (lr * g[i]) / Math.sqrt(s[i] + eps);
      }
    }
    close(run((p) => new RmsProp([p], { initialMeanSquare: 1 }), lr), w);
    if (backend === "native") assert.ok((loadedNativeLib()!.calls.rmspropUpdate ?? 0) > 0);
  });
}

Deno.test("Adam follows the bias-corrected moment update", () => {
  const b1 = 0.9, b2 = 0.999, eps = 1e-7, lr = 0.01;
  const w = [...W0], m = [0, 0, 0], v = [0, 0, 0];
  GRADS.forEach((g, t) => {
    for (let i = 0; i < 3; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mh = m[i] / (1 - b1 ** (t + 1)), vh = v[i] / (1 - b2 ** (t + 1));
      w[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
    }
  });
  close(run((p) => new Adam([p]), lr), w);
});

Deno.test("optimizer state round-trips: a restored optimizer continues identically", async () => {
  const a = tf.variable(tf.tensor(W0)), b = tf.variable(tf.tensor(W0));
  const oa = new Sgd([a], { momentum: 0.9 }), ob = new Sgd([b], { momentum: 0.9 });
  oa.apply([tf.tensor(GRADS[0])], 0.1);
  ob.apply([tf.tensor(GRADS[0])], 0.1);
  const fresh = new Sgd([b], { momentum: 0.9 });
  fresh.setState(await ob.getState());
  oa.apply([tf.tensor(GRADS[1])], 0.1);
  fresh.apply([tf.tensor(GRADS[1])], 0.1);
  assert.deepStrictEqual(a.dataSync(), b.dataSync());
});

Deno.test("lrAt(): step and multi-step schedules", () => {
  const step = { kind: "step" as const, everyEpochs: 25, gamma: 0.5 };
  assert.deepStrictEqual([0, 24.9, 25, 50, 99].map((e) => lrAt(step, 0.05, e, 100)), [
    0.05,
    0.05,
    0.025,
    0.0125,
    0.05 / 8,
  ]);
  const ms = { kind: "multistep" as const, atFractions: [0.5, 0.75], gamma: 0.1 };
  const got = [0, 4.99, 5, 7.5, 9.9].map((e) => lrAt(ms, 0.1, e, 10));
  close(got, [0.1, 0.1, 0.01, 0.001, 0.001]);
  // Torch's loop (GUNN): 1-based epoch e ≥ 0.5·N, i.e. 0-based epoch 4 of 10 already decayed
  const torch = { ...ms, torchEpochs: true };
  const byEpoch = [0, 3, 3.9, 4, 4.5, 6, 7, 9].map((e) => lrAt(torch, 0.1, e, 10));
  close(byEpoch, [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]);
  // N = 300: the drops are at (1-based) epochs 150 and 225, as in the authors' train.lua
  assert.strictEqual(lrAt(torch, 0.1, 148, 300), 0.1);
  assert.ok(Math.abs(lrAt(torch, 0.1, 149, 300) - 0.01) < 1e-12);
  assert.ok(Math.abs(lrAt(torch, 0.1, 224, 300) - 0.001) < 1e-12);
});
