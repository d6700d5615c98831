/**
 * `W3stream`: per-example gradients of N examples of GradNet's base network streamed to a
 * gradient file in batches (`gradientStream` + `GradientWriter`). Reports rows/s and the peak
 * resident memory, which must not grow with N.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { cnnCifar } from "../../lib/models/cnn_cifar.ts";
import { gradientStream } from "../../lib/gradients/per_example.ts";
import { GradientWriter } from "../../lib/gradients/store.ts";
import { Rng } from "../../lib/util/rng.ts";
import { type BenchContext, type BenchLine, dateUtc } from "./result.ts";
import { peakRssMiB, resetPeakRss, rssMiB } from "./memory.ts";

/** Streams N examples' gradients (one label each) of cnn_cifar(h) to a temporary file. */
export async function benchStream(
  ctx: BenchContext,
  h: number,
  n: number,
  batch = 256,
): Promise<BenchLine> {
  const model = cnnCifar(h);
  const rng = new Rng(0);
  const dir = await Deno.makeTempDir({ prefix: "gradlab-stream-" });
  const path = join(dir, "g.bin");
  let writer: GradientWriter | null = null;
  async function* batches() {
    for (let s = 0; s < n; s += batch) {
      const b = Math.min(batch, n - s);
      const x = tf.tensor4d(rng.normals(b * 24 * 24 * 3), [b, 24, 24, 3]);
      yield { x, labels: Array.from({ length: b }, () => rng.int(10)) };
      x.dispose();
    }
  }
  const rss0 = rssMiB();
  resetPeakRss();
  const t0 = performance.now();
  for await (const chunk of gradientStream(model, batches(), { labels: "given" })) {
    writer ??= await GradientWriter.create(path, {
      rowLength: chunk.layout.size,
      layout: chunk.layout,
    });
    await writer.append(chunk.gradients);
  }
  await writer!.close();
  const seconds = (performance.now() - t0) / 1000;
  const bytes = (await Deno.stat(path)).size;
  await Deno.remove(dir, { recursive: true });
  model.dispose();
  return {
    workload: "W3stream",
    model: `gradnet_base_h${h}`,
    backend: ctx.backend,
    threads: ctx.threads,
    batch,
    items_per_s: n / seconds,
    variant: `n${n}`,
    date_utc: dateUtc(),
    examples: n,
    file_mib: bytes / 2 ** 20,
    rss_before_mib: rss0,
    peak_rss_mib: peakRssMiB(),
  };
}
