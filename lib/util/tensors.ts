/**
 * Tensor-ownership helpers.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor, Variable } from "./tf_types.ts";

/**
 * A variable initialised from `init`, which is disposed: `tf.variable` shares the tensor's data
 * and leaves the tensor itself alive, one leaked tensor per variable otherwise.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert";
 * import { variableFrom } from "./tensors.ts";
 * await tf.setBackend("cpu");
 * const before = tf.memory().numTensors;
 * const v = variableFrom(tf.ones([3]));
 * assert.strictEqual(tf.memory().numTensors, before + 1);
 * assert.deepStrictEqual(Array.from(await v.data()), [1, 1, 1]);
 * v.dispose();
 * ```
 */
export function variableFrom(init: Tensor, trainable = true, name?: string): Variable {
  const v = tf.variable(init, trainable, name);
  init.dispose();
  return v;
}
