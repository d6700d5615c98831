/**
 * W4 of `shared/bench/peer/README.md`: a gradually updated block, forward + backward per batch.
 *
 * x0 [64, 16, 16, 64] (NHWC), K = 16 channels per segment → 4 sequential updates; update j is
 * ReLU(BN_j(conv3×3_j(x))) (64 → 16, 'same', no bias; BN in training mode, ε = 1e-3) and
 * replaces segment j of x, so later updates see it; out = x + x0; loss = mean(out²); gradients of
 * the 4 kernels, the BN γ/β and x0. The reference `sunn_reference` does the same FLOPs at once:
 * ReLU(BN(conv3×3 64 → 64 (x0))) + x0. Kernels are Glorot-uniform, as the peer's.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import {
  replaceBlock,
  type ReplaceBlockParams,
  replaceBlockStock,
} from "../../lib/layers/gunn_block.ts";
import { Rng } from "../../lib/util/rng.ts";
import { timeWindows } from "./timing.ts";
import { gunnNetwork, MINI_GUNN } from "../../lib/models/gunn.ts";
import { Sgd } from "../../lib/train/optimizers.ts";
import { softmaxClassification } from "../../lib/train/fit.ts";
import {
  allowFusedGunnUnits,
  fusedGunnBlockActive,
  fusedGunnUnitsActive,
} from "../../lib/layers/gunn_fused.ts";
import { type BenchContext, type BenchLine, dateUtc, windows } from "./result.ts";

/** The block's parameters: one kernel, γ and β per update. */
export interface W4Params {
  kernels: tf.Variable[];
  gammas: tf.Variable[];
  betas: tf.Variable[];
}

function glorotKernel(rng: Rng, ci: number, co: number): tf.Variable {
  const fanIn = 9 * ci, fanOut = 9 * co, lim = Math.sqrt(6 / (fanIn + fanOut));
  const v = Float32Array.from({ length: 9 * ci * co }, () => rng.uniform(-lim, lim));
  return tf.variable(tf.tensor4d(v, [3, 3, ci, co]));
}

/** Parameters of the GUNN block (C channels, K per segment) or, with K = C, of the reference. */
export function w4Params(C: number, K: number, seed = 0): W4Params {
  const rng = new Rng(seed);
  const S = C / K;
  return {
    kernels: Array.from({ length: S }, () => glorotKernel(rng, C, K)),
    gammas: Array.from({ length: S }, () => tf.variable(tf.ones([K]))),
    betas: Array.from({ length: S }, () => tf.variable(tf.zeros([K]))),
  };
}

/**
 * The block's output: {@link replaceBlock} (fused on the native backend; `stock` forces the stock
 * ops). Segment j is replaced (not added to) by update j, as in the peer; the residual is added
 * once at the end.
 */
export function w4Block(x0: tf.Tensor4D, p: W4Params, stock = false): tf.Tensor4D {
  const params = p as unknown as ReplaceBlockParams;
  return stock ? replaceBlockStock(x0, params, 1e-3) : replaceBlock(x0, params, 1e-3);
}

/**
 * W4: images/s of forward + backward (and forward alone) for the block and its reference, through
 * {@link replaceBlock} (variant "": fused on the native backend, the line compared with PyTorch)
 * and, where that is fused, also through the stock ops (variant `stock_ops`).
 */
export async function benchGunnBlock(ctx: BenchContext): Promise<BenchLine[]> {
  const N = 64, H = 16, C = 64, K = 16;
  const x0 = tf.tensor4d(new Rng(1).normals(N * H * H * C), [N, H, H, C]);
  const lines: BenchLine[] = [];
  const paths = fusedGunnBlockActive() ? [false, true] : [false];
  for (const [model, k] of [["gunn_block", K], ["sunn_reference", C]] as const) {
    for (const stock of paths) {
      const p = w4Params(C, k);
      const vars = [...p.kernels, ...p.gammas, ...p.betas];
      const S = p.kernels.length;
      // x0 and every parameter as inputs of one gradient call, as the peer's autograd.grad
      const fwdBwd = () =>
        tf.tidy(() =>
          tf.grads((x: tf.Tensor, ...w: tf.Tensor[]) =>
            tf.mean(tf.square(w4Block(
              x as tf.Tensor4D,
              {
                kernels: w.slice(0, S) as tf.Variable[],
                gammas: w.slice(S, 2 * S) as tf.Variable[],
                betas: w.slice(2 * S) as tf.Variable[],
              },
              stock,
            )))
          )([x0, ...vars])
        );
      const fwd = () => tf.tidy(() => w4Block(x0, p, stock));
      for (let i = 0; i < (ctx.quick ? 1 : 3); i++) tf.dispose(fwdBwd());
      const timing = await timeWindows(fwdBwd, N, {
        ...windows(ctx, { minS: 1, repeats: 3 }),
        sync: "call",
      });
      const forward = await timeWindows(fwd, N, {
        ...windows(ctx, { minS: 0.5, repeats: 3 }),
        sync: "call",
      });
      lines.push({
        workload: "W4",
        model,
        backend: ctx.backend,
        threads: ctx.threads,
        batch: N,
        variant: stock ? "stock_ops" : "",
        date_utc: dateUtc(),
        ...timing,
        fwd_only_items_per_s: forward.items_per_s,
        params: vars.reduce((s, v) => s + v.size, 0),
      });
      tf.dispose(vars);
    }
  }
  x0.dispose();
  return lines;
}

/**
 * W4step: one training step of the GUNN script's default mini-GUNN (and its SUNN twin) — forward
 * in training mode, softmax cross-entropy, gradients of every trainable weight, the Nesterov SGD
 * update with weight decay — on a batch of 64 images of 16×16×3: milliseconds per step and the
 * TF.js kernels one step launches (each costs tens of µs of overhead whatever its size). Variant
 * `fused`: the GUNN units as one native kernel each way (lib/layers/gunn_fused.ts, native backend
 * only); `stock_ops`: the same units composed from TF.js ops.
 */
export async function benchGunnStep(ctx: BenchContext): Promise<BenchLine[]> {
  const N = 64, S = 16;
  const x = tf.tensor4d(new Rng(2).normals(N * S * S * 3), [N, S, S, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => i % 10), "int32"), 10);
  const lines: BenchLine[] = [];
  const paths = fusedGunnUnitsActive() ? [true, false] : [false];
  for (const fused of paths) {
    for (const mode of ["gradual", "simultaneous"] as const) {
      const was = allowFusedGunnUnits(fused);
      const model = gunnNetwork({
        arch: MINI_GUNN,
        classes: 10,
        inputShape: [S, S, 3],
        mode,
        seed: 0,
      });
      const params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const opt = new Sgd(params, { momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
      const step = () => {
        const { value, grads } = tf.variableGrads(
          () => softmaxClassification(model.apply(x, { training: true }) as tf.Tensor, y).loss,
          params,
        );
        opt.apply(params.map((p) => grads[p.name]), 0.01);
        tf.dispose(Object.values(grads));
        return value;
      };
      for (let i = 0; i < 2; i++) tf.dispose(step());
      const profile = await tf.profile(() => step());
      const kernels = profile.kernels.length;
      const timing = await timeWindows(step, N, {
        ...windows(ctx, { minS: 1, repeats: 3 }),
        sync: "call",
      });
      lines.push({
        workload: "W4step",
        model: mode === "gradual" ? "mini_gunn" : "mini_sunn",
        backend: ctx.backend,
        threads: ctx.threads,
        batch: N,
        variant: fused ? "fused" : "stock_ops",
        date_utc: dateUtc(),
        ...timing,
        ms_per_step: timing.sec_per_call_median * 1000,
        kernels_per_step: kernels,
        params: params.reduce((s, p) => s + p.size, 0),
      });
      opt.dispose();
      model.dispose();
      allowFusedGunnUnits(was);
    }
  }
  tf.dispose([x, y]);
  return lines;
}
