/**
 * TensorFlow.js types under this project's own names. The public API (mod.ts) uses these in its
 * signatures so that its documentation is complete: `deno doc` cannot document, or link to, types
 * that live only inside the npm package.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs";

/** A TF.js tensor of any rank. */
export type Tensor = tf.Tensor;
/** A rank-0 TF.js tensor. */
export type Scalar = tf.Scalar;
/** A rank-1 TF.js tensor. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 TF.js tensor. */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 TF.js tensor. */
export type Tensor3D = tf.Tensor3D;
/** A rank-4 TF.js tensor (NHWC images or conv kernels). */
export type Tensor4D = tf.Tensor4D;
/** A mutable TF.js tensor (trainable weights, optimizer slots). */
export type Variable = tf.Variable;
/** A TF.js Keras-style model. */
export type LayersModel = tf.LayersModel;
/** A TF.js sequential model. */
export type Sequential = tf.Sequential;
/** A TF.js layer. */
export type Layer = tf.layers.Layer;
/** A tensor shape (null for an unknown batch size). */
export type Shape = tf.Shape;
/** A weight of a TF.js layer. */
export type LayerVariable = tf.LayerVariable;
