/**
 * W3: per-example gradients — the B × P matrix of full flattened per-example gradients (weights
 * and biases) for B = 64, with 1 label per example and with all 10 labels (640 rows, produced in
 * label blocks of 64 rows that are not kept), plus the plain batched forward+backward baseline.
 * W3g is the same on GradNet's base network cnn_cifar(h) (3×24×24 input). See
 * shared/bench/peer/README.md.
 *
 * Variants: `labels1/batched`, `labels10/batched` (this library's engine); `labels1/loop` (a batch-1
 * tf.variableGrads loop, the naive method, for scale); `baseline`. The timed call ends when the
 * matrix exists as a tensor; `labels1/batched_copy` also copies it into a fresh host Float32Array.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { buildBenchModel } from "./models.ts";
import { cnnCifar, countParams } from "../../lib/models/cnn_cifar.ts";
import { labelGradientBlocks, perExampleGradients } from "../../lib/gradients/per_example.ts";
import { netFromModel } from "../../lib/gradients/network.ts";
import { fixedBatch } from "./w1_w2.ts";
import { timeWindows } from "./timing.ts";
import { type BenchContext, type BenchLine, dateUtc, windows } from "./result.ts";
import { peakRssMiB, resetPeakRss } from "./memory.ts";

/** W3 models and their workload id. */
export const W3_MODELS: Record<string, { workload: "W3" | "W3g"; build: () => tf.LayersModel }> = {
  cifar_cnn: { workload: "W3", build: () => buildBenchModel("cifar_cnn") },
  mnist_cnn: { workload: "W3", build: () => buildBenchModel("mnist_cnn") },
  gradnet_base_h16: { workload: "W3g", build: () => cnnCifar(16) },
  gradnet_base_h64: { workload: "W3g", build: () => cnnCifar(64) },
};

/** Label blocks sized so one block stays under `budgetBytes`. */
function labelChunk(b: number, p: number, budgetBytes = 400 * 2 ** 20): number {
  return Math.max(1, Math.min(10, Math.floor(budgetBytes / (b * p * 4))));
}

/** Runs the W3 variants for one model. */
export async function benchPerExample(
  ctx: BenchContext,
  name: string,
  variants: string[] = [
    "baseline",
    "labels1/batched",
    "labels1/batched_copy",
    "labels10/batched",
    "labels1/loop",
  ],
): Promise<BenchLine[]> {
  const spec = W3_MODELS[name];
  const model = spec.build();
  const ops = netFromModel(model);
  const B = 64;
  const shape = model.inputs[0].shape.slice(1) as number[];
  const { x, y } = fixedBatch(shape, B);
  const labelT = tf.tidy(() => y.argMax(-1));
  const labels = Array.from(await labelT.data());
  labelT.dispose();
  const params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const P = countParams(model);
  const chunk = labelChunk(B, P);
  const lines: BenchLine[] = [];
  const calls: Record<
    string,
    { fn: () => tf.Tensor | tf.Tensor[] | void | Promise<tf.Tensor>; items: number }
  > = {
    baseline: {
      fn: () => {
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar,
          params,
        );
        return [...Object.values(grads), value];
      },
      items: B,
    },
    "labels1/batched": {
      fn: () => {
        const g = perExampleGradients(ops, x, labels, { includeBias: true }).gradients;
        const last = g.slice([B - 1, P - 1], [1, 1]); // the value the timer syncs on
        g.dispose();
        return last;
      },
      items: B,
    },
    "labels1/batched_copy": {
      fn: async () => {
        const g = perExampleGradients(ops, x, labels, { includeBias: true }).gradients;
        const host = (await g.data()) as Float32Array; // a fresh host copy of the whole matrix
        g.dispose();
        return tf.scalar(host[host.length - 1]);
      },
      items: B,
    },
    "labels10/batched": {
      fn: () => {
        // One forward pass, then label blocks of `chunk` labels; blocks are not kept.
        let last: tf.Tensor | null = null;
        for (const b of labelGradientBlocks(ops, x, { includeBias: true, labelChunk: chunk })) {
          last?.dispose();
          last = b.gradients.slice([B - 1, 0, P - 1], [1, 1, 1]);
          b.gradients.dispose();
        }
        return last!;
      },
      items: B,
    },
    "labels1/loop": {
      fn: () => {
        const out: tf.Tensor[] = [];
        for (let i = 0; i < B; i++) {
          out.push(tf.tidy(() => {
            const { grads } = tf.variableGrads(
              () =>
                tf.losses.softmaxCrossEntropy(
                  y.slice([i], [1]),
                  model.apply(x.slice([i], [1])) as tf.Tensor,
                  undefined,
                  0,
                  tf.Reduction.SUM,
                ) as tf.Scalar,
              params,
            );
            return tf.concat(params.map((p) => grads[p.name].reshape([-1])));
          }));
        }
        const m = tf.stack(out);
        tf.dispose(out);
        return m;
      },
      items: B,
    },
  };
  for (const v of variants) {
    const c = calls[v];
    if (!c) throw new Error(`unknown W3 variant ${v}`);
    const t0 = performance.now();
    const warm = await c.fn();
    if (warm) tf.dispose(warm);
    const warmS = (performance.now() - t0) / 1000;
    const reset = resetPeakRss();
    const timing = await timeWindows(c.fn, c.items, {
      ...windows(ctx, { minS: 0.25, repeats: warmS > 3.5 ? 1 : warmS > 1.5 ? 2 : 3 }),
      sync: "call",
    });
    lines.push({
      workload: spec.workload,
      model: name,
      backend: ctx.backend,
      threads: ctx.threads,
      batch: B,
      variant: v,
      date_utc: dateUtc(),
      ...timing,
      params: P,
      rows_per_call: v.startsWith("labels10") ? 10 * B : v === "baseline" ? 0 : B,
      label_block: v.startsWith("labels10") ? chunk : undefined,
      peak_rss_mib: reset ? peakRssMiB() : null,
    });
  }
  tf.dispose([x, y]);
  model.dispose();
  return lines;
}
