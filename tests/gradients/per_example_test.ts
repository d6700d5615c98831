/**
 * Per-example gradients against a batch-1 `tf.grads` loop (the definition), and two identities of
 * raw gradients: Σ_k p_k(x)·g(x,k) = 0, and the last dense layer's gradient is (softmax(z) − e_y)·hᵀ.
 */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { initBackend } from "../../lib/backend/select.ts";
import {
  allLabelGradients,
  type GradientLayout,
  gradientLayout,
  perExampleGradients,
} from "../../lib/gradients/per_example.ts";
import { cnnCifar, countParams } from "../../lib/models/cnn_cifar.ts";
import { Rng } from "../../lib/util/rng.ts";

const BACKEND = (Deno.env.get("GRADLAB_TEST_BACKEND") ?? "native") as "native" | "wasm";
await initBackend(BACKEND, { log: null });

/** The same matrix by a loop of batch-1 tf.grads calls (rows: each weight tensor flattened). */
function loopReference(
  model: tf.LayersModel,
  x: tf.Tensor,
  labels: number[],
  layout: GradientLayout,
): Float32Array {
  const n = x.shape[0];
  const out = new Float32Array(n * layout.size);
  const vars = layout.blocks.map((b) => {
    const layer = model.getLayer(b.layer);
    return (layer.weights[b.part === "kernel" ? 0 : 1] as unknown as { val: tf.Variable }).val;
  });
  for (let i = 0; i < n; i++) {
    tf.tidy(() => {
      const xi = x.slice([i], [1]);
      const y = tf.oneHot(tf.tensor1d([labels[i]], "int32"), 10);
      const { grads } = tf.variableGrads(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            model.apply(xi) as tf.Tensor,
            undefined,
            0,
            tf.Reduction.SUM,
          ) as tf.Scalar,
        vars,
      );
      layout.blocks.forEach((b, j) => {
        out.set(grads[vars[j].name].dataSync(), i * layout.size + b.offset);
      });
    });
  }
  return out;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

function mlp() {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      inputShape: [7],
      units: 12,
      activation: "tanh",
      kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
    }),
  );
  m.add(
    tf.layers.dense({
      units: 9,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
    }),
  );
  m.add(
    tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
  );
  return m;
}

function stridedCnn() {
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: [9, 9, 2],
      filters: 5,
      kernelSize: 5,
      strides: 2,
      padding: "same",
      activation: "relu",
      kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }),
      biasInitializer: tf.initializers.constant({ value: 0.05 }),
    }),
  );
  m.add(
    tf.layers.conv2d({
      filters: 4,
      kernelSize: 3,
      strides: 2,
      padding: "same",
      kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }),
    }),
  );
  m.add(tf.layers.leakyReLU({ alpha: 0.2 }));
  m.add(tf.layers.averagePooling2d({ poolSize: 2, padding: "same" }));
  m.add(tf.layers.flatten());
  m.add(
    tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }),
  );
  return m;
}

const MODELS: [string, () => tf.LayersModel, number[]][] = [
  ["an MLP", mlp, [7]],
  [
    "GradNet's base CNN cnn_cifar(4) (padding 1 and 2, ceil-mode pooling)",
    () => cnnCifar(4, { seed: 9 }),
    [24, 24, 3],
  ],
  ["a strided CNN with 'same' padding", stridedCnn, [9, 9, 2]],
];

for (const [name, build, shape] of MODELS) {
  for (const includeBias of [false, true]) {
    Deno.test(`perExampleGradients() equals a batch-1 tf.grads loop: ${name}${includeBias ? ", with biases" : ""}`, () => {
      const model = build();
      const rng = new Rng(11);
      const n = 6;
      const x = tf.tensor(rng.normals(n * shape.reduce((a, b) => a * b, 1)), [n, ...shape]);
      const labels = Array.from({ length: n }, () => rng.int(10));
      const { gradients, layout } = perExampleGradients(model, x, labels, { includeBias });
      assert.strictEqual(layout.size, includeBias ? countParams(model) : layout.size);
      const got = gradients.dataSync() as Float32Array;
      const want = loopReference(model, x, labels, layout);
      const e = relErr(got, want);
      assert.ok(e < 1e-5, `relative error ${e}`);
      tf.dispose([x, gradients]);
    });
  }
}

Deno.test("allLabelGradients(): row k is the gradient for label k, and Σ_k p_k·g(x,k) = 0", () => {
  const model = cnnCifar(4, { seed: 3 });
  const rng = new Rng(5);
  const x = tf.tensor(rng.normals(3 * 24 * 24 * 3), [3, 24, 24, 3]);
  const { gradients, probabilities, layout } = allLabelGradients(model, x, { labelChunk: 4 });
  assert.deepStrictEqual(gradients.shape, [3, 10, layout.size]);
  const g = gradients.arraySync() as number[][][];
  const p = probabilities.arraySync() as number[][];
  for (let i = 0; i < 3; i++) {
    for (const k of [0, 7]) {
      const single = perExampleGradients(model, x.slice([i], [1]), [k]).gradients
        .dataSync() as Float32Array;
      assert.ok(relErr(Float32Array.from(g[i][k]), single) < 1e-5);
    }
    const scale = Math.max(...g[i].flat().map(Math.abs));
    for (let c = 0; c < layout.size; c++) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += p[i][k] * g[i][k][c];
      assert.ok(Math.abs(s) < 1e-5 * scale, `Σ p·g = ${s} at ${c}`);
    }
  }
});

Deno.test("the last dense layer's per-example gradient is exactly (softmax(z) − e_y)·hᵀ", () => {
  const model = cnnCifar(4, { seed: 8 });
  const rng = new Rng(6);
  const x = tf.tensor(rng.normals(4 * 24 * 24 * 3), [4, 24, 24, 3]);
  const labels = [3, 0, 9, 3];
  const { gradients, layout } = perExampleGradients(model, x, labels);
  const head = layout.blocks.find((b) => b.layer === "l1")!;
  const flatten = tf.model({
    inputs: model.inputs,
    outputs: model.getLayer("flatten").output as tf.SymbolicTensor,
  });
  const h = (flatten.predict(x) as tf.Tensor).arraySync() as number[][];
  const p = tf.softmax(model.predict(x) as tf.Tensor).arraySync() as number[][];
  const g = gradients.arraySync() as number[][];
  for (let i = 0; i < 4; i++) {
    for (let o = 0; o < 10; o++) {
      const d = p[i][o] - (o === labels[i] ? 1 : 0);
      for (let j = 0; j < h[i].length; j++) {
        const want = Math.fround(d * h[i][j]);
        const got = g[i][head.offset + j * 10 + o];
        assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${got} vs ${want}`);
      }
    }
  }
});

Deno.test("cnn_cifar(64) has 130,378 parameters on 24×24×3 and gradients of 130,240 numbers", () => {
  const m = cnnCifar(64);
  assert.strictEqual(countParams(m), 130378);
  const { layout } = perExampleGradients(m, tf.zeros([1, 24, 24, 3]), [0]);
  assert.strictEqual(layout.size, 130240);
  assert.deepStrictEqual(layout.blocks.map((b) => [b.layer, b.offset, b.size]), [["c0", 0, 4800], [
    "c1",
    4800,
    102400,
  ], ["l1", 107200, 23040]]);
});

Deno.test({
  name: "on the native backend the fused per-example kernel did the work",
  ignore: BACKEND !== "native",
  fn: async () => {
    const { loadedNativeLib } = await import("../../lib/backend/select.ts");
    const calls = loadedNativeLib()!.calls;
    assert.ok(
      (calls.perExampleConv ?? 0) > 0 && (calls.perExampleDense ?? 0) > 0,
      JSON.stringify(calls),
    );
  },
});

/** conv 5×5 (20) → max-pool 2 → conv 3×3 (12) → max-pool 3/2 → dense: deltas below pools. */
function pooledCnn() {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [10, 10, 3],
        filters: 20,
        kernelSize: 5,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(21),
        biasInitializer: tf.initializers.constant({ value: 0.02 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({
        filters: 12,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(22),
      }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, kernelInitializer: init(23) }),
    ],
  });
}

/** A stride-2 conv below a max-pool: taps of single pixels (the kernel rows are not contiguous). */
function stridedPooledCnn() {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 2],
        filters: 16,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        activation: "relu",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 24 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2, padding: "same" }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 25 }) }),
    ],
  });
}

/**
 * A linear conv below an overlapping, padded max-pool (3×3, stride 2, "same"): windows share
 * pixels (a pixel may win two), the last ones are cut by the border, and no ReLU filters them.
 */
function overlappingPoolCnn() {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [9, 9, 2],
        filters: 20,
        kernelSize: 3,
        kernelInitializer: tf.initializers.glorotNormal({ seed: 26 }),
        biasInitializer: tf.initializers.constant({ value: -0.05 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 27 }) }),
    ],
  });
}

Deno.test({
  name:
    "gradients through max-pools (the native sparse-delta kernels) equal the tf.grads loop for every label, in label blocks of 10, 3 and 1",
  fn: async () => {
    const lib = BACKEND === "native"
      ? (await import("../../lib/backend/select.ts")).loadedNativeLib()
      : null;
    const sparseCalls = () => [
      lib?.calls.perExampleConvSparse ?? 0,
      lib?.calls.conv2dBackpropInputSparse ?? 0,
      lib?.calls.perExampleConvPooled ?? 0,
    ];
    const cases: [string, () => tf.LayersModel, number[]][] = [
      ["pooled CNN (20 and 12 channels)", pooledCnn, [10, 10, 3]],
      ["cnn_cifar(16)", () => cnnCifar(16, { seed: 4 }), [24, 24, 3]],
      ["stride-2 conv", stridedPooledCnn, [12, 12, 2]],
      ["linear conv, overlapping padded pool", overlappingPoolCnn, [9, 9, 2]],
    ];
    for (const [name, build, shape] of cases) {
      const model = build();
      const rng = new Rng(31);
      const n = 5;
      const x = tf.tensor(rng.normals(n * shape.reduce((a, b) => a * b, 1)), [n, ...shape]);
      const layout = gradientLayout(model, { includeBias: true });
      const want = Array.from(
        { length: 10 },
        (_, k) => loopReference(model, x, new Array(n).fill(k), layout),
      );
      const check = (got: Float32Array, i: number, k: number, what: string) => {
        for (const b of layout.blocks) {
          const ref = want[k].subarray(
            i * layout.size + b.offset,
            i * layout.size + b.offset + b.size,
          );
          const e = relErr(got.subarray(b.offset, b.offset + b.size), ref);
          assert.ok(
            e < 2e-6,
            `${name}, ${what}: example ${i}, label ${k}, ${b.layer} ${b.part}: ${e}`,
          );
        }
      };
      const before = sparseCalls();
      for (const labelChunk of [10, 3]) {
        const { gradients } = allLabelGradients(model, x, { includeBias: true, labelChunk });
        const g = gradients.dataSync() as Float32Array;
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < 10; k++) {
            const at = (i * 10 + k) * layout.size;
            check(g.subarray(at, at + layout.size), i, k, `label blocks of ${labelChunk}`);
          }
        }
        gradients.dispose();
      }
      const labels = Array.from({ length: n }, (_, i) => (3 * i + 1) % 10);
      const one = perExampleGradients(model, x, labels, { includeBias: true }).gradients;
      const g1 = one.dataSync() as Float32Array;
      for (let i = 0; i < n; i++) {
        check(g1.subarray(i * layout.size, (i + 1) * layout.size), i, labels[i], "one label");
      }
      const after = sparseCalls();
      if (lib) {
        // the first conv's lists came from its pool's winners in every case; the second conv's
        // filter and input gradients ran sparse where there is a second conv
        assert.ok(after[2] > before[2], `${name}: ${JSON.stringify(lib.calls)}`);
        const twoConvs = name.startsWith("pooled CNN") || name.startsWith("cnn_cifar");
        assert.equal(after[0] > before[0], twoConvs, `${name}: sparse filter gradient`);
        assert.equal(after[1] > before[1], twoConvs, `${name}: sparse input gradient`);
      }
      tf.dispose([x, one]);
    }
  },
});
