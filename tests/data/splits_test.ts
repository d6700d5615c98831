import assert from "node:assert";
import {
  classSubset,
  halves,
  holdOut,
  pairTaskDataset,
  pairTasks,
  stratifiedSample,
  twinOf,
} from "../../lib/data/splits.ts";
import { classCounts } from "../../lib/data/dataset.ts";
import { syntheticImages } from "../../lib/data/synthetic.ts";

const ds = syntheticImages({ n: 200, height: 4, width: 4, channels: 1, numClasses: 5, seed: 1 });

Deno.test("halves() splits in stored order", () => {
  const { first, second } = halves(ds);
  assert.strictEqual(first.n + second.n, 200);
  assert.deepStrictEqual(
    Array.from(second.images.subarray(0, 16)),
    Array.from(ds.images.subarray(100 * 16, 101 * 16)),
  );
});

Deno.test("classSubset() keeps only the classes and relabels them in the order given", () => {
  const s = classSubset(ds, [3, 1]);
  assert.strictEqual(s.n, 80);
  assert.deepStrictEqual(classCounts(s), [40, 40]);
  const firstThree = Array.from(ds.labels).map((l, i) => [l, i]).filter(([l]) => l === 3 || l === 1)
    .slice(0, 3);
  firstThree.forEach(([l], j) => assert.strictEqual(s.labels[j], l === 3 ? 0 : 1));
});

Deno.test("pairTasks() gives 45 pairs and their flipped twins for 10 classes", () => {
  const t = pairTasks(10);
  assert.strictEqual(t.length, 90);
  assert.strictEqual(new Set(t.map((x) => x.id)).size, 90);
  assert.deepStrictEqual(twinOf(t[0]), t[1]);
});

Deno.test("a task and its twin hold the same images with complementary labels", () => {
  const [a, b] = pairTasks(5).slice(0, 2);
  const da = pairTaskDataset(ds, a), db = pairTaskDataset(ds, b);
  assert.deepStrictEqual(da.images, db.images);
  da.labels.forEach((l, i) => assert.strictEqual(l + db.labels[i], 1));
  assert.deepStrictEqual(classCounts(da), [40, 40]);
});

Deno.test("stratifiedSample() keeps class shares and is deterministic", () => {
  const idx = stratifiedSample(ds, 50, 3);
  assert.deepStrictEqual(idx, stratifiedSample(ds, 50, 3));
  assert.notDeepStrictEqual(idx, stratifiedSample(ds, 50, 4));
  const counts = [0, 0, 0, 0, 0];
  idx.forEach((i) => counts[ds.labels[i]]++);
  assert.deepStrictEqual(counts, [10, 10, 10, 10, 10]);
  assert.strictEqual(new Set(idx).size, 50);
});

Deno.test("holdOut() partitions the data", () => {
  const { train, val } = holdOut(ds, 0.2, 1);
  assert.strictEqual(train.n, 160);
  assert.strictEqual(val.n, 40);
  assert.deepStrictEqual(classCounts(val), [8, 8, 8, 8, 8]);
});
