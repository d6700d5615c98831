import assert from "node:assert";
import * as tf from "@tensorflow/tfjs";
import { initBackend, loadedNativeLib } from "../../lib/backend/select.ts";
import { Rng } from "../../lib/util/rng.ts";
import { ALL_CASES } from "./op_cases.ts";
import { compareWithCpu } from "./against_cpu.ts";

Deno.test({
  name: "native backend: every op the papers need matches the cpu backend (forward and gradients)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await compareWithCpu(t, "native", ALL_CASES);
    // The comparison means something only if the native code did the work.
    const calls = loadedNativeLib()!.calls;
    for (
      const k of [
        "conv2d",
        "conv2dBackpropInput",
        "conv2dBackpropFilter",
        "matmul",
        "maxPoolGrad",
        "avgPoolGrad",
        "sumRows",
        "sumCols",
        "copyBlock",
        "slice",
      ]
    ) {
      assert((calls[k] ?? 0) > 0, `native ${k} never ran`);
    }
  },
});

/** Naive float64 k×k convolution (stride 1, padding pt/pl) and its two gradients for dy. */
function referenceConv(
  x: Float32Array,
  [n, h, w, ci]: number[],
  f: Float32Array,
  co: number,
  [oh, ow, pt, pl]: number[],
  dy: Float32Array,
  k = 3,
): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const y = new Float64Array(n * oh * ow * co);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(f.length);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const iy = oy + ky - pt, ix = ox + kx - pl;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            for (let i = 0; i < ci; i++) {
              const xi = ((b * h + iy) * w + ix) * ci + i;
              for (let o = 0; o < co; o++) {
                const yo = ((b * oh + oy) * ow + ox) * co + o,
                  fo = ((ky * k + kx) * ci + i) * co + o;
                y[yo] += x[xi] * f[fo];
                dx[xi] += dy[yo] * f[fo];
                dw[fo] += dy[yo] * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw };
}

type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];

/**
 * For each case (input shape, output channels, padding) of a k×k stride-1 convolution: the forward
 * pass and both gradients run `winograd` passes by Winograd, and the results named in `checked`
 * ("y", "dx", "dw") lie within `bound` (of the largest value) of a float64 reference and of the
 * direct kernels.
 */
function checkWinograd(
  k: number,
  cases: [number[], number, Pad][],
  winograd: number,
  checked: ("y" | "dx" | "dw")[],
  bound: number,
  rng: Rng,
) {
  const lib = loadedNativeLib()!;
  for (const [shape, co, pad] of cases) {
    const x = tf.tensor4d(rng.normals(shape[0] * shape[1] * shape[2] * shape[3]), shape as never);
    const f = tf.tensor4d(rng.normals(k * k * shape[3] * co), [k, k, shape[3], co]);
    const passes = (): Float32Array[] =>
      tf.tidy(() => {
        const y = tf.conv2d(x, f, 1, pad);
        const dy = tf.tensor(new Rng(5).normals(y.size), y.shape);
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), dy))
        )([x, f]);
        return [y, dx, dw, dy].map((t) => t.dataSync() as Float32Array);
      });
    const before = lib.winogradCalls();
    const wino = passes();
    assert.strictEqual(lib.winogradCalls() - before, winograd, `${shape}: passes run by Winograd`);
    const was = lib.setWinograd(false);
    const direct = passes();
    lib.setWinograd(was);
    const [, oh, ow] = tf.conv2d(x, f, 1, pad).shape;
    const half = (k - 1) / 2;
    const pt = pad === "same" ? half : pad === "valid" ? 0 : pad[1][0];
    const pl = pad === "same" ? half : pad === "valid" ? 0 : pad[2][0];
    const ref = referenceConv(
      x.dataSync() as Float32Array,
      shape,
      f.dataSync() as Float32Array,
      co,
      [oh, ow, pt, pl],
      wino[3],
      k,
    );
    (["y", "dx", "dw"] as const).forEach((what, i) => {
      if (!checked.includes(what)) return;
      const truth = [ref.y, ref.dx, ref.dw][i];
      const scale = truth.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      let worstRef = 0, worstDirect = 0;
      for (let j = 0; j < truth.length; j++) {
        worstRef = Math.max(worstRef, Math.abs(wino[i][j] - truth[j]) / scale);
        worstDirect = Math.max(worstDirect, Math.abs(wino[i][j] - direct[i][j]) / scale);
      }
      assert(worstRef < bound, `${shape} ${what}: ${worstRef} from the float64 reference`);
      assert(worstDirect < bound, `${shape} ${what}: ${worstDirect} from the direct kernels`);
    });
    tf.dispose([x, f]);
  }
}

type Shape4 = [number, number, number, number];

/** Runs `convs` (input shape, filter shape, stride) and asserts that Winograd ran none of them. */
function assertNoWinograd(convs: [Shape4, Shape4, number][]) {
  const lib = loadedNativeLib()!;
  const before = lib.winogradCalls();
  tf.tidy(() => {
    for (const [xs, fs, stride] of convs) {
      tf.conv2d(tf.ones(xs) as tf.Tensor4D, tf.ones(fs) as tf.Tensor4D, stride, "same").dataSync();
    }
  });
  assert.strictEqual(lib.winogradCalls(), before);
}

Deno.test({
  name:
    "native: 3×3 stride-1 convolutions of ≥ 16 channels run by Winograd and equal a float64 reference and the direct kernels",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await initBackend("native", { log: null });
    // partial tiles (odd output sizes), columns not a multiple of the vector, asymmetric
    // padding, and the W4 shape (many chunks; the filter gradient's fixed parts); two forward
    // passes (tf.grads runs its own), the input and the filter gradient
    checkWinograd(
      3,
      [
        [[2, 8, 7, 16], 24, "valid"],
        [[3, 9, 5, 20], 17, "same"],
        [[2, 6, 7, 16], 16, [[0, 0], [2, 1], [0, 2], [0, 0]]],
        [[64, 16, 16, 64], 16, "same"],
      ],
      4,
      ["y", "dx", "dw"],
      2e-6,
      new Rng(11),
    );
    // not for Winograd: stride 2, and fewer than 16 channels
    assertNoWinograd([[[1, 8, 8, 16], [3, 3, 16, 16], 2], [[1, 8, 8, 12], [3, 3, 12, 16], 1]]);
  },
});

Deno.test({
  name:
    "native: 5×5 stride-1 convolutions of ≥ 48 channels run by Winograd F(2×2, 5×5) and equal a float64 reference and the direct kernels",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await initBackend("native", { log: null });
    // GradNet's c1 at h = 64 ('same' on 11×11: partial tiles), channels not a multiple of the
    // vector, asymmetric padding; two forward passes and the input gradient (the filter gradient
    // stays direct). The transforms' constants (up to 16 and 1/24) cost more rounding than
    // F(2×2, 3×3)'s: measured ≤ 5e-6 of the largest value at 64 channels.
    checkWinograd(
      5,
      [
        [[4, 11, 11, 64], 64, "same"],
        [[2, 9, 8, 50], 49, "valid"],
        [[2, 7, 9, 48], 56, [[0, 0], [1, 3], [4, 0], [0, 0]]],
      ],
      3,
      ["y", "dx"],
      1e-5,
      new Rng(13),
    );
    // not for Winograd: 32 channels
    assertNoWinograd([[[1, 8, 8, 32], [5, 5, 32, 32], 1]]);
  },
});

Deno.test({
  name:
    "native: the max-pool gradient of D directions equals the single-direction kernel on repeated rows (ties included)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await initBackend("native", { log: null });
    const lib = loadedNativeLib()!;
    const rng = new Rng(9);
    // 16 and 20 channels: whole vectors and the scalar tail; 'same' (ceil) and overlapping windows
    const cases: [number[], number, number, "same" | "valid"][] = [
      [[3, 11, 11, 16], 2, 2, "same"],
      [[2, 7, 6, 20], 3, 1, "same"],
    ];
    for (const [shape, pool, stride, pad] of cases) {
      const D = 3, [n, ...rest] = shape;
      tf.tidy(() => {
        // values rounded to halves, so that windows hold ties
        const input = tf.round(
          tf.mul(tf.tensor(rng.normals(n * rest.reduce((a, b) => a * b)), shape), 2),
        );
        const output = tf.maxPool(input as tf.Tensor4D, pool, stride, pad);
        const dy = tf.tensor(rng.normals(D * output.size), [n * D, ...output.shape.slice(1)]);
        const attrs = { filterSize: pool, strides: stride, pad } as unknown as tf.NamedAttrMap;
        const before = lib.calls.maxPoolGradDirs ?? 0;
        const ours = tf.engine().runKernel("GradlabMaxPoolGradDirs", { dy, input }, {
          ...attrs,
          D,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        assert.strictEqual(lib.calls.maxPoolGradDirs, before + 1);
        const rep = (t: tf.Tensor) =>
          tf.tile(t.reshape([n, 1, -1]), [1, D, 1]).reshape([n * D, ...t.shape.slice(1)]);
        const ref = tf.engine().runKernel(
          "MaxPoolGrad",
          { dy, input: rep(input), output: rep(output) },
          attrs,
        ) as tf.Tensor;
        assert.deepStrictEqual(ours.shape, ref.shape);
        assert.deepStrictEqual(Array.from(ours.dataSync()), Array.from(ref.dataSync()), `${shape}`);
        // `positive`: the reference times step(input), the ReLU derivative it stands for when
        // the input is a ReLU's output (+ 0 turns the reference's −0 into 0)
        const folded = tf.engine().runKernel("GradlabMaxPoolGradDirs", { dy, input }, {
          ...attrs,
          D,
          positive: true,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const masked = tf.mul(ref, tf.step(rep(input)));
        assert.deepStrictEqual(
          Array.from(folded.dataSync()),
          Array.from(masked.dataSync(), (v) => v + 0),
          `${shape}, positive`,
        );
        assert.ok(masked.abs().sum().arraySync() < ref.abs().sum().arraySync(), "no window ≤ 0");
      });
    }
  },
});
