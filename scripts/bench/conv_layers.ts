/**
 * Per-layer convolution kernels of the W1 networks at batch 64: forward, input gradient and filter
 * gradient each timed on its own (workload `W1conv`), so that each gradient's cost can be stated
 * as a multiple of its layer's forward time.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { Rng } from "../../lib/util/rng.ts";
import { timeWindows } from "./timing.ts";
import { type BenchContext, type BenchLine, dateUtc, windows } from "./result.ts";

interface ConvLayer {
  name: string;
  input: [number, number, number]; // H, W, C
  filters: number;
  pad: "same" | "valid";
}

/** The conv layers of the benchmark models (3×3, stride 1). */
export const BENCH_CONV_LAYERS: Record<string, ConvLayer[]> = {
  cifar_cnn: [
    { name: "conv1", input: [32, 32, 3], filters: 32, pad: "same" },
    { name: "conv2", input: [32, 32, 32], filters: 32, pad: "valid" },
    { name: "conv3", input: [15, 15, 32], filters: 64, pad: "same" },
    { name: "conv4", input: [15, 15, 64], filters: 64, pad: "valid" },
  ],
  mnist_cnn: [
    { name: "conv1", input: [28, 28, 1], filters: 32, pad: "valid" },
    { name: "conv2", input: [26, 26, 32], filters: 64, pad: "valid" },
  ],
};

/** Times forward, input gradient and filter gradient of each conv layer of `model`. */
export async function benchConvLayers(ctx: BenchContext, model: string): Promise<BenchLine[]> {
  const rng = new Rng(0);
  const lines: BenchLine[] = [];
  const batch = 64;
  for (const layer of BENCH_CONV_LAYERS[model]) {
    const [h, w, c] = layer.input;
    const x = tf.tensor4d(rng.normals(batch * h * w * c), [batch, h, w, c]);
    const f = tf.tensor4d(rng.normals(9 * c * layer.filters, 0.1), [3, 3, c, layer.filters]);
    const y = tf.conv2d(x, f, 1, layer.pad);
    const dy = tf.tensor4d(rng.normals(y.size), y.shape);
    const attrs = {
      strides: [1, 1],
      pad: layer.pad,
      dataFormat: "NHWC",
    };
    const kernels: Record<string, () => tf.Tensor> = {
      forward: () => tf.conv2d(x, f, 1, layer.pad),
      input_grad: () =>
        tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
          ...attrs,
          inputShape: x.shape,
        }) as tf.Tensor,
      filter_grad: () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          ...attrs,
          filterShape: f.shape,
        }) as tf.Tensor,
    };
    const ms: Record<string, number> = {};
    for (const [kind, fn] of Object.entries(kernels)) {
      fn().dispose();
      const t = await timeWindows(fn, batch, {
        ...windows(ctx, { minS: 0.3, repeats: 3 }),
        sync: "call",
      });
      ms[kind] = t.sec_per_call_median * 1000;
    }
    const flops = 2 * batch * y.shape[1]! * y.shape[2]! * layer.filters * 9 * c;
    for (const kind of Object.keys(kernels)) {
      lines.push({
        workload: "W1conv",
        model,
        backend: ctx.backend,
        threads: ctx.threads,
        batch,
        variant: `${layer.name}:${kind}`,
        date_utc: dateUtc(),
        ms_per_call: ms[kind],
        gflop_per_s: flops / (ms[kind] / 1000) / 1e9,
        x_forward: ms[kind] / ms.forward,
      });
    }
    tf.dispose([x, f, y, dy]);
  }
  return lines;
}
