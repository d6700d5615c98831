import assert from "node:assert/strict";
import { firstN, loadNamedDataset, syntheticSplit } from "../../lib/data/named.ts";

Deno.test("syntheticSplit() cuts train/test where asked; firstN() keeps the first examples", () => {
  const s = syntheticSplit({
    n: 50,
    train: 40,
    height: 4,
    width: 4,
    channels: 1,
    numClasses: 5,
    seed: 1,
    noise: 10,
  });
  assert.deepEqual([s.train.n, s.test.n], [40, 10]);
  assert.deepEqual(Array.from(s.test.labels.slice(0, 5)), [0, 1, 2, 3, 4]); // i % classes from 40
  const f = firstN(s.train, 7);
  assert.equal(f.n, 7);
  assert.deepEqual(f.images, s.train.images.slice(0, 7 * 16));
  assert.equal(firstN(s.train, 0), s.train);
  assert.equal(firstN(s.train, 99), s.train);
});

Deno.test("loadNamedDataset('mnist') loads the packaged MNIST (60,000 / 10,000)", async () => {
  const { train, test } = await loadNamedDataset("mnist");
  assert.deepEqual([train.n, test.n, train.height, train.channels], [60000, 10000, 28, 1]);
});
