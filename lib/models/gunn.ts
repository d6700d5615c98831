/**
 * GUNN networks for CIFAR-style inputs (spec: shared/papers/gunn.md, the authors' `gunn-15.lua`):
 *
 *   conv3×3 → BN → ReLU → conv1×1 → BN → ReLU
 *   → GunnLayer(w₁, S₁) → conv1×1 → BN → ReLU → avgpool 2
 *   → GunnLayer(w₂, S₂) → conv1×1 → BN → ReLU → avgpool 2
 *   → GunnLayer(w₃, S₃) → conv1×1 → BN → ReLU → global average pool → linear
 *
 * Each GunnLayer is three convolutions deep (rows 3–5, 7–9, 11–13 of the spec's table), hence
 * the 15 of GUNN-15.
 *
 * GUNN-15 has stem 64 and stages 240/20, 300/25, 360/30 (12 channels per segment): 1,585,746
 * parameters for 10 classes. mini-GUNN (the spec's CPU size) has stem 16 and stages 48/8, 60/10,
 * 72/12 (6 per segment). With `mode: "simultaneous"` the same builder gives the SUNN arm: the same
 * parameters, every unit reading the old input. On 32×32 input the global pool is the original's
 * avgpool 8.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LayersModel, Sequential } from "../util/tf_types.ts";
import { tfSeed } from "../util/rng.ts";
import { GunnLayer, gunnLayerParamCount, type UpdateMode } from "../layers/gunn.ts";
import { BatchNorm } from "../layers/batch_norm.ts";

/** Widths of a GUNN network. */
export interface GunnArchitecture {
  /** channels of the stem convolution */
  stem: number;
  /** channels and segments of the three stages */
  stages: { width: number; segments: number }[];
  /** GUNN layers per stage (1 in GUNN-15) */
  layersPerStage: number;
}

/** GUNN-15 of the paper (CIFAR). */
export const GUNN15: GunnArchitecture = {
  stem: 64,
  stages: [{ width: 240, segments: 20 }, { width: 300, segments: 25 }, {
    width: 360,
    segments: 30,
  }],
  layersPerStage: 1,
};

/** mini-GUNN, the size that trains on two CPU cores. */
export const MINI_GUNN: GunnArchitecture = {
  stem: 16,
  stages: [{ width: 48, segments: 8 }, { width: 60, segments: 10 }, { width: 72, segments: 12 }],
  layersPerStage: 1,
};

/**
 * small-GUNN: mini-GUNN at half the widths (24/30/36, 6 channels per segment; 34,482 parameters
 * for 10 classes), the size whose converged 3-seed comparison on all of CIFAR-10 at 16×16 fits
 * a session on two cores.
 */
export const SMALL_GUNN: GunnArchitecture = {
  stem: 16,
  stages: [{ width: 24, segments: 4 }, { width: 30, segments: 5 }, { width: 36, segments: 6 }],
  layersPerStage: 1,
};

/** How {@link gunnNetwork} builds. */
export interface GunnNetworkOptions {
  /** widths and segments */
  arch: GunnArchitecture;
  /** number of classes */
  classes: number;
  /** input [height, width, channels] */
  inputShape: [number, number, number];
  /** gradual (GUNN) or simultaneous (SUNN) */
  mode: UpdateMode;
  /** seed of the initial weights */
  seed: number;
}

/** Parameters (conv kernels, BN γ/β, linear W/b) of a GUNN network, without building it. */
export function gunnParamCount(arch: GunnArchitecture, classes: number, inChannels = 3): number {
  const conv = (k: number, cin: number, cout: number) => k * k * cin * cout + 2 * cout; // + BN
  let n = conv(3, inChannels, arch.stem) + conv(1, arch.stem, arch.stages[0].width);
  arch.stages.forEach((s, i) => {
    n += arch.layersPerStage * gunnLayerParamCount(s.width, s.segments);
    const next = i + 1 < arch.stages.length ? arch.stages[i + 1].width : s.width;
    n += conv(1, s.width, next);
  });
  const last = arch.stages.at(-1)!.width;
  return n + last * classes + classes;
}

/** Builds a GUNN (or, with mode "simultaneous", SUNN) network. */
export function gunnNetwork(o: GunnNetworkOptions): Sequential {
  let seed = o.seed * 1000;
  const m = tf.sequential({ name: `gunn_${o.mode}` });
  // Convolutions start N(0, 2/(k·k·C_out)) as in the authors' code.
  const convBnRelu = (
    k: number,
    filters: number,
    name: string,
    inputShape?: [number, number, number],
  ) => {
    m.add(tf.layers.conv2d({
      ...(inputShape ? { inputShape } : {}),
      filters,
      kernelSize: k,
      padding: "same",
      useBias: false,
      kernelInitializer: tf.initializers.randomNormal({
        mean: 0,
        stddev: Math.sqrt(2 / (k * k * filters)),
        seed: tfSeed(seed++),
      }),
      name,
    }));
    m.add(new BatchNorm({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }));
    m.add(tf.layers.reLU({ name: `${name}_relu` }));
  };
  convBnRelu(3, o.arch.stem, "stem", o.inputShape);
  convBnRelu(1, o.arch.stages[0].width, "expand");
  o.arch.stages.forEach((s, i) => {
    for (let l = 0; l < o.arch.layersPerStage; l++) {
      m.add(
        new GunnLayer({
          segments: s.segments,
          mode: o.mode,
          seed: seed,
          name: `gunn${i + 1}_${l + 1}`,
        }),
      );
      seed += 4 * s.segments;
    }
    const last = i + 1 === o.arch.stages.length;
    convBnRelu(1, last ? s.width : o.arch.stages[i + 1].width, `transition${i + 1}`);
    if (!last) m.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2, name: `pool${i + 1}` }));
  });
  m.add(tf.layers.globalAveragePooling2d({ name: "global_pool" }));
  const fanIn = o.arch.stages.at(-1)!.width, bound = 1 / Math.sqrt(fanIn);
  m.add(tf.layers.dense({
    units: o.classes,
    kernelInitializer: tf.initializers.randomUniform({
      minval: -bound,
      maxval: bound,
      seed: tfSeed(seed++),
    }),
    biasInitializer: "zeros",
    name: "classifier",
  }));
  return m;
}

/** Trainable parameter count of a built model. */
export function trainableCount(m: LayersModel): number {
  return m.trainableWeights.reduce(
    (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
    0,
  );
}
