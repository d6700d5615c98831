/**
 * The networks of "On the Decision Boundary of Deep Neural Networks" (spec:
 * shared/papers/lastlayer_svm.md), all with a 2-D feature layer φ right before the last weight
 * layer, so that the last layer's boundary can be compared with an SVM in the plane:
 *
 * - simulated data (A): Linear 2→H, x², Linear H→2, x² (= φ), Linear 2→2 — truncated-normal
 *   weights σ 0.01, biases 0.1;
 * - three blobs (B): Linear 2→H, ReLU, Linear H→2, ReLU (= φ), Linear 2→3 — σ 0.05, biases 0.01;
 * - images (C–E, CPU-sized): conv 16 → pool → conv 32 → pool → dense 64 → dense 2 + ReLU (= φ),
 *   then the last layer 2→K.
 *
 * The last layer (W: [2, K], b: [K]) is kept apart so that it can be read, re-initialised, and
 * applied to any φ (the "shortcut" input of the original code).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { variableFrom } from "../util/tensors.ts";
import { Rng, tfSeed } from "../util/rng.ts";

/** A network with a 2-D feature layer and a separate last layer. */
export interface TwoDNet {
  classes: number;
  /** φ(x): [n, 2] */
  phi(x: tf.Tensor, training?: boolean): tf.Tensor2D;
  lastW: tf.Variable;
  lastB: tf.Variable;
  /** the feature extractor's trainable variables */
  phiParams: tf.Variable[];
  /** every variable (for checkpoints) */
  variables(): tf.Variable[];
  /** sets the last layer to fresh initial values drawn from `seed` */
  reinitLast(seed: number): void;
}

/** logits = φ(x)·W + b. */
export function logits(net: TwoDNet, x: tf.Tensor, training = false): tf.Tensor2D {
  return tf.tidy(() => lastLayer(net, net.phi(x, training)));
}

/** The last layer applied to given features (the shortcut path). */
export function lastLayer(net: TwoDNet, phi: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => phi.matMul(net.lastW).add(net.lastB) as tf.Tensor2D);
}

/** Truncated normal (|z| ≤ 2σ, redrawn), as TF's truncated_normal. */
function truncatedNormal(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do z = rng.normal(); while (Math.abs(z) > 2);
    out[i] = z * std;
  }
  return out;
}

/** The MLPs of experiments A (x² activations) and B (ReLU). */
export function mlpNet(o: {
  hidden: number;
  classes: number;
  activation: "square" | "relu";
  initStd: number;
  biasInit: number;
  seed: number;
}): TwoDNet {
  const rng = new Rng(o.seed);
  const uid = crypto.randomUUID().slice(0, 6);
  const v = (shape: number[], std: number, name: string) =>
    variableFrom(
      tf.tensor(truncatedNormal(rng, shape.reduce((a, b) => a * b, 1), std), shape),
      true,
      `${name}_${uid}`,
    );
  const c = (n: number, value: number, name: string) =>
    variableFrom(tf.fill([n], value), true, `${name}_${uid}`);
  const W1 = v([2, o.hidden], o.initStd, "W1"), b1 = c(o.hidden, o.biasInit, "b1");
  const W2 = v([o.hidden, 2], o.initStd, "W2"), b2 = c(2, o.biasInit, "b2");
  const lastW = v([2, o.classes], o.initStd, "W3"), lastB = c(o.classes, o.biasInit, "b3");
  const act = (t: tf.Tensor) => (o.activation === "square" ? t.square() : t.relu());
  return {
    classes: o.classes,
    phi: (x) => tf.tidy(() => act(act(x.matMul(W1).add(b1)).matMul(W2).add(b2)) as tf.Tensor2D),
    lastW,
    lastB,
    phiParams: [W1, b1, W2, b2],
    variables: () => [W1, b1, W2, b2, lastW, lastB],
    reinitLast(seed) {
      const r = new Rng(seed);
      lastW.assign(tf.tensor(truncatedNormal(r, 2 * o.classes, o.initStd), [2, o.classes]));
      lastB.assign(tf.fill([o.classes], o.biasInit));
    },
  };
}

/** The CPU-sized CNN of experiments C–E. */
export function cnnNet(
  o: { inputShape: [number, number, number]; classes: number; seed: number },
): TwoDNet {
  let s = o.seed;
  const init = () => tf.initializers.glorotUniform({ seed: tfSeed(s++) });
  const m = tf.sequential();
  m.add(
    tf.layers.conv2d({
      inputShape: o.inputShape,
      filters: 16,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
    }),
  );
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(
    tf.layers.conv2d({
      filters: 32,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
    }),
  );
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 64, activation: "relu", kernelInitializer: init() }));
  m.add(
    tf.layers.dense({
      units: 2,
      activation: "relu",
      kernelInitializer: init(),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
    }),
  );
  const uid = crypto.randomUUID().slice(0, 6);
  const lastW = variableFrom(
    tf.tidy(() =>
      tf.initializers.glorotUniform({ seed: tfSeed(s++) }).apply([2, o.classes]) as tf.Tensor
    ),
    true,
    `last_W_${uid}`,
  );
  const lastB = variableFrom(tf.zeros([o.classes]), true, `last_b_${uid}`);
  const phiParams = m.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  return {
    classes: o.classes,
    phi: (x, training = false) => tf.tidy(() => m.apply(x, { training }) as tf.Tensor2D),
    lastW,
    lastB,
    phiParams,
    variables: () => [...phiParams, lastW, lastB],
    reinitLast(seed) {
      lastW.assign(
        tf.tidy(() =>
          tf.initializers.glorotUniform({ seed: tfSeed(seed) }).apply([2, o.classes]) as tf.Tensor
        ),
      );
      lastB.assign(tf.zeros([o.classes]));
    },
  };
}
