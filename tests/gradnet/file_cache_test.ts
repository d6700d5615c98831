/**
 * The file-backed feature cache (lib/gradnet/file_cache.ts) against the in-memory one: the same
 * rows, bit for bit, the same normalisation statistics; rows whose index gaps do not fit 16 bits;
 * batches read on the native reader's thread and read one step ahead (prefetchedRows) equal to the
 * rows read one by one.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { join } from "node:path";
import { initBackend, loadedNativeLib } from "../../lib/backend/select.ts";
import { cnnCifar } from "../../lib/models/cnn_cifar.ts";
import { netFromModel } from "../../lib/gradients/network.ts";
import { syntheticSplit } from "../../lib/data/named.ts";
import { Featurizer } from "../../lib/gradnet/features.ts";
import { batchRows, FeatureCache, type RowBatch } from "../../lib/gradnet/cache.ts";
import { cachedRows, prefetchedRows } from "../../lib/gradnet/train.ts";
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
const featurizer = (base: tf.LayersModel, normalization: "scale_power" | "std" = "scale_power") =>
  new Featurizer(netFromModel(base), { sparsify: true, selectionPercent: 15, normalization });

const nativeReads = () => loadedNativeLib()!.calls.read_feature_rows ?? 0;

/** Asserts that `batch` holds the rows `want`, bit for bit. */
function assertBatch(batch: RowBatch, want: { index: ArrayLike<number>; value: Float32Array }[]) {
  const got = batchRows(batch);
  assert.strictEqual(got.length, want.length);
  got.forEach((r, q) => {
    assert.deepStrictEqual(Array.from(r.index), Array.from(want[q].index), `row ${q} indices`);
    assert.deepStrictEqual(r.value, want[q].value, `row ${q} values`);
  });
}

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

  // a batch (repeats, any order) read and normalised on the native reader's thread
  const picks = [[3, 1], [49, 3], [0, 0], [3, 1], [25, 2]];
  const before = nativeReads();
  const small: RowBatch = {
    idx: new Uint32Array(4),
    val: new Float32Array(4),
    rowStart: new Int32Array(2),
    rows: 0,
  };
  const batch = await file.readRows(Int32Array.from(picks, ([i, k]) => 4 * i + k), small);
  assert.strictEqual(nativeReads(), before + 1);
  assert.notStrictEqual(batch.idx, small.idx, "a batch too big for the arrays given gets new ones");
  assertBatch(batch, picks.map(([i, k]) => mem.row(i, k)));
  await assert.rejects(file.readRows(Int32Array.of(200), null), RangeError);

  // training batches read one step ahead equal the in-memory cache's, across two epochs and a
  // jump (a resume in the middle of an epoch)
  const ahead = prefetchedRows(file, data.train.labels);
  const direct = cachedRows({ cache: mem, labels: data.train.labels });
  const rng = new Rng(9);
  for (const [epoch, steps] of [[0, [0, 1, 2, 3, 4, 5, 6]], [1, [0, 1, 4, 5, 6]]] as const) {
    const order = Int32Array.from(rng.permutation(50));
    const labels = Int32Array.from({ length: 49 }, () => rng.int(4));
    for (const s of steps) {
      const got = await ahead.rows(epoch, order, labels, 7 * s, 7 * s + 7);
      const want = await direct.rows(epoch, order, labels, 7 * s, 7 * s + 7);
      assert.ok(!Array.isArray(got));
      assertBatch(got as RowBatch, want as { index: Uint32Array; value: Float32Array }[]);
    }
  }
  file.close();
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  base.dispose();
});

Deno.test("file cache batches under a normalisation the native reader does not do, and a cut file", async () => {
  const base = cnnCifar(3, { inputShape: [12, 12, 1], classes: 4, seed: 3 });
  const mem = await FeatureCache.build(
    featurizer(base, "std"),
    (idx) => testView(data.train, idx, view),
    20,
    4,
    {
      chunk: 20,
      label: "",
      quiet: true,
      statistics: true,
    },
  );
  const path = await Deno.makeTempFile();
  const file = await FileFeatureCache.build(
    featurizer(base, "std"),
    (idx) => testView(data.train, idx, view),
    20,
    4,
    { chunk: 20, label: "", quiet: true, path },
  );
  const picks = [[19, 3], [2, 0], [2, 0]];
  const before = nativeReads();
  assertBatch(
    await file.readRows(Int32Array.from(picks, ([i, k]) => 4 * i + k), null),
    picks.map(([i, k]) => mem.row(i, k)),
  );
  assert.strictEqual(nativeReads(), before, "std is read on the main thread");
  file.close();

  // a file cut short: the native reader's error, not a crash or a short batch
  const raw = FileFeatureCache.fromDense(
    Float32Array.from({ length: 40 }, (_, j) => j % 3),
    4,
    2,
    5,
    path,
  );
  await Deno.truncate(path, 20);
  await assert.rejects(raw.readRows(Int32Array.of(0, 7), null), /reading feature rows failed/);
  raw.close();
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
  // the same rows read back raw on the native reader's thread: wide, empty, and narrow
  const before = nativeReads();
  const picks = [1, 2, 0];
  assertBatch(await file.readRows(Int32Array.from(picks), null), picks.map((i) => file.row(i, 0)));
  assert.strictEqual(nativeReads(), before + 1);
  file.close();
});

Deno.test("a stop asked for during a feature build (file or memory) ends it at the next chunk; the part-built file is removed", async () => {
  const { InterruptedError, setInterruptRequested } = await import("../../lib/util/interrupt.ts");
  const base = cnnCifar(3, { inputShape: [12, 12, 1], classes: 4, seed: 5 });
  const dir = await Deno.makeTempDir();
  const path = join(dir, "features.bin");
  for (const where of ["file", "memory"] as const) {
    // the stop comes from an event (as a signal does) while the second chunk is computed
    let views = 0;
    const stoppingView = (idx: number[]) => {
      if (++views === 2) setTimeout(() => setInterruptRequested(true), 0);
      return testView(data.train, idx, view);
    };
    const o = { chunk: 10, label: "features", quiet: true };
    try {
      await assert.rejects(
        where === "file"
          ? FileFeatureCache.build(featurizer(base), stoppingView, 50, 4, { ...o, path })
          : FeatureCache.build(featurizer(base), stoppingView, 50, 4, { ...o, statistics: true }),
        (e: Error) => e instanceof InterruptedError && /while computing features/.test(e.message),
      );
    } finally {
      setInterruptRequested(false);
    }
    assert.strictEqual(views, 2, `${where}: chunks computed after the stop`);
  }
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  base.dispose();
});
