/**
 * The file-backed feature cache (lib/gradnet/file_cache.ts) against the in-memory one: the same
 * rows, bit for bit, the same normalisation statistics; rows whose index gaps do not fit 16 bits.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { join } from "node:path";
import { initBackend } from "../../lib/backend/select.ts";
import { cnnCifar } from "../../lib/models/cnn_cifar.ts";
import { netFromModel } from "../../lib/gradients/network.ts";
import { syntheticSplit } from "../../lib/data/named.ts";
import { Featurizer } from "../../lib/gradnet/features.ts";
import { FeatureCache } from "../../lib/gradnet/cache.ts";
import { FileFeatureCache } from "../../lib/gradnet/file_cache.ts";
import { testView } from "../../lib/gradnet/preprocess.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend("native", { log: null });

const data = syntheticSplit({
  n: 60,
  train: 50,
  height: 12,
  width: 12,
  channels: 1,
  numClasses: 4,
  seed: 4,
  noise: 30,
});
const view = { policy: "none" as const, crop: 12 };
const featurizer = (base: tf.LayersModel) =>
  new Featurizer(netFromModel(base), {
    sparsify: true,
    selectionPercent: 15,
    normalization: "scale_power",
  });

Deno.test("the file cache gives the in-memory cache's rows and statistics, bit for bit", async () => {
  const base = cnnCifar(3, { inputShape: [12, 12, 1], classes: 4, seed: 2 });
  const dir = await Deno.makeTempDir();
  const inMemory = featurizer(base), onDisk = featurizer(base);
  const mem = await FeatureCache.build(inMemory, (idx) => testView(data.train, idx, view), 50, 4, {
    chunk: 16,
    label: "",
    quiet: true,
    statistics: true,
  });
  const path = join(dir, "features.bin");
  const file = await FileFeatureCache.build(
    onDisk,
    (idx) => testView(data.train, idx, view),
    50,
    4,
    { chunk: 12, label: "", quiet: true, path }, // other chunk boundaries
  );
  assert.deepStrictEqual(onDisk.stats, inMemory.stats);
  assert.strictEqual(file.entries, mem.entries);
  // 6 bytes an entry (uint16 gaps), each row padded to 4 bytes
  assert.ok(file.bytes <= 6 * mem.entries + 2 * 200 && file.bytes >= 6 * mem.entries);
  assert.strictEqual((await Deno.stat(path)).size, file.bytes);
  for (const [i, k] of [[0, 0], [49, 3], [17, 2], [12, 1], [11, 0]]) {
    const a = file.row(i, k), b = mem.row(i, k);
    assert.deepStrictEqual(Array.from(a.index), Array.from(b.index), `row (${i}, ${k}) indices`);
    assert.deepStrictEqual(a.value, b.value, `row (${i}, ${k}) values`);
    assert.ok(a.value.some((v) => v !== 0));
  }
  assert.throws(() => file.row(50, 0), RangeError);
  file.close();
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  base.dispose();
});

Deno.test("file cache rows with index gaps past 16 bits keep their indices (and empty rows)", async () => {
  const P = 200_000, rng = new Rng(5);
  const dense = new Float32Array(3 * P);
  // row 0: a gap of 150,000; row 1: every index past 65,535 (the first gap is too wide); row 2 empty
  for (const j of [3, 10, 150_010, 199_999]) dense[j] = rng.normal();
  for (const j of [70_000, 70_001, 140_000]) dense[P + j] = rng.normal();
  const path = await Deno.makeTempFile();
  const file = FileFeatureCache.fromDense(dense, 3, 1, P, path);
  assert.deepStrictEqual(Array.from(file.row(0, 0).index), [3, 10, 150_010, 199_999]);
  assert.deepStrictEqual(Array.from(file.row(1, 0).index), [70_000, 70_001, 140_000]);
  assert.deepStrictEqual(
    file.row(1, 0).value,
    Float32Array.from([70_000, 70_001, 140_000], (j) => dense[P + j]),
  );
  assert.strictEqual(file.row(2, 0).index.length, 0);
  assert.strictEqual(file.bytes, 8 * 4 + 8 * 3);
  file.close();
});
