/** IDX and CIFAR binary parsing against hand-made records, and the bad inputs of each format. */

import assert from "node:assert";
import { encodeIdx, parseIdx } from "../../lib/data/idx.ts";
import { idxDataset } from "../../lib/data/mnist.ts";
import { parseCifarRecords } from "../../lib/data/cifar.ts";
import { DataError } from "../../lib/data/dataset.ts";

Deno.test("parseIdx() reads a hand-made 2×2×3 image file", () => {
  const bytes = new Uint8Array([
    0,
    0,
    8,
    3,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    3,
    ...Array.from({ length: 12 }, (_, i) => i * 10),
  ]);
  const a = parseIdx(bytes, 3, "x");
  assert.deepStrictEqual(a.dims, [2, 2, 3]);
  assert.deepStrictEqual(Array.from(a.data), Array.from({ length: 12 }, (_, i) => i * 10));
});

Deno.test("idxDataset() pairs images with labels", () => {
  const img = encodeIdx([3, 2, 2], new Uint8Array(12).map((_, i) => i));
  const lab = encodeIdx([3], new Uint8Array([2, 0, 1]));
  const ds = idxDataset("t", img, lab, ["a", "b", "c"], { images: "i", labels: "l" });
  assert.strictEqual(ds.n, 3);
  assert.deepStrictEqual(Array.from(ds.labels), [2, 0, 1]);
  assert.deepStrictEqual(Array.from(ds.images.subarray(4, 8)), [4, 5, 6, 7]);
});

function throwsData(f: () => unknown, re: RegExp) {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof DataError, `not a DataError: ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

Deno.test("parseIdx() rejects a wrong magic number", () => {
  const b = encodeIdx([2, 2, 2], new Uint8Array(8));
  b[3] = 1;
  throwsData(
    () => parseIdx(b, 3, "imgs"),
    /imgs: wrong magic number 0x00000801 \(expected 0x00000803/,
  );
});

Deno.test("parseIdx() rejects a truncated file", () => {
  const b = encodeIdx([2, 2, 2], new Uint8Array(8)).subarray(0, 20);
  throwsData(
    () => parseIdx(b, 3, "imgs"),
    /imgs: 4 data bytes, but the header's dimensions 2×2×2 need 8/,
  );
});

Deno.test("parseIdx() rejects a non-byte type code", () => {
  const b = encodeIdx([2], new Uint8Array(2));
  b[2] = 0x0d; // float
  throwsData(() => parseIdx(b, 1, "labels"), /wrong magic number/);
});

Deno.test("idxDataset() rejects a label out of range and a count mismatch", () => {
  const img = encodeIdx([2, 1, 1], new Uint8Array(2));
  throwsData(
    () =>
      idxDataset("t", img, encodeIdx([2], new Uint8Array([0, 10])), ["0", "1"], {
        images: "i",
        labels: "lab",
      }),
    /lab: label 10 at record 1 outside 0..1/,
  );
  throwsData(
    () =>
      idxDataset("t", img, encodeIdx([3], new Uint8Array(3)), ["0"], {
        images: "i",
        labels: "lab",
      }),
    /lab: 3 labels for 2 images/,
  );
});

/** One CIFAR-10 record with R = i, G = 100 + i, B = 200 − i at pixel i (mod 256 avoided). */
function cifarRecord(label: number, labelBytes: number[] = [label]): Uint8Array {
  const r = new Uint8Array(labelBytes.length + 3072);
  r.set(labelBytes, 0);
  for (let p = 0; p < 1024; p++) {
    r[labelBytes.length + p] = p % 50;
    r[labelBytes.length + 1024 + p] = 100 + (p % 50);
    r[labelBytes.length + 2048 + p] = 200 - (p % 50);
  }
  return r;
}

Deno.test("parseCifarRecords() turns channel-planar records into HWC images", () => {
  const bytes = new Uint8Array([...cifarRecord(7), ...cifarRecord(2)]);
  const { images, labels } = parseCifarRecords(bytes, 1, 0, 10, "batch");
  assert.deepStrictEqual(Array.from(labels), [7, 2]);
  // pixel 33 = row 1, column 1 of image 1
  const o = 3072 + 33 * 3;
  assert.deepStrictEqual(Array.from(images.subarray(o, o + 3)), [33, 133, 167]);
});

Deno.test("parseCifarRecords() keeps CIFAR-100's fine or coarse label", () => {
  const bytes = cifarRecord(0, [3, 57]);
  assert.strictEqual(parseCifarRecords(bytes, 2, 1, 100, "x").labels[0], 57);
  assert.strictEqual(parseCifarRecords(bytes, 2, 0, 20, "x").labels[0], 3);
});

Deno.test("parseCifarRecords() rejects a truncated file and a label out of range", () => {
  throwsData(
    () => parseCifarRecords(cifarRecord(1).subarray(0, 3000), 1, 0, 10, "b1"),
    /b1: 3000 bytes is not a whole number of 3073-byte records/,
  );
  throwsData(
    () => parseCifarRecords(cifarRecord(12), 1, 0, 10, "b1"),
    /b1: label 12 at record 0 outside 0\.\.9/,
  );
});

Deno.test("parseCifarRecords() refuses a file with whole records but the wrong count, naming both", () => {
  const rec = 1 + 32 * 32 * 3;
  const three = new Uint8Array(3 * rec);
  assert.throws(
    () => parseCifarRecords(three, 1, 0, 10, "data_batch_1.bin", 2),
    /data_batch_1\.bin: 3 records, expected 2/,
  );
  assert.strictEqual(parseCifarRecords(three, 1, 0, 10, "x", 3).labels.length, 3);
});
