/**
 * CIFAR-10 and CIFAR-100 in their official binary formats. A CIFAR-10 record is 1 label byte and
 * 3,072 pixel bytes, channel-planar (1,024 R, 1,024 G, 1,024 B, each 32×32 row-major); a CIFAR-100
 * record has a coarse and a fine label byte before the pixels. Images are returned NHWC.
 *
 * @module
 */

import { checkLabels, DataError, type DatasetSplit, type ImageDataset } from "./dataset.ts";
import { findDatasetDir, type LocateOptions } from "./locate.ts";
import { ensureDownloaded } from "./download.ts";

const PIXELS = 32 * 32;
const IMAGE = 3 * PIXELS;

/** CIFAR-10 class names, by label. */
export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/**
 * Parses concatenated CIFAR records.
 *
 * @param labelBytes 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
 * @param useLabel which label byte to keep (0 = first)
 * @param expected the number of records the file must hold (the published sizes), if known
 */
export function parseCifarRecords(
  bytes: Uint8Array,
  labelBytes: 1 | 2,
  useLabel: 0 | 1,
  numClasses: number,
  source: string,
  expected?: number,
): { images: Uint8Array; labels: Int32Array } {
  const rec = labelBytes + IMAGE;
  if (bytes.length === 0 || bytes.length % rec !== 0) {
    throw new DataError(
      `${source}: ${bytes.length} bytes is not a whole number of ${rec}-byte records (truncated or not CIFAR)`,
    );
  }
  const n = bytes.length / rec;
  if (expected !== undefined && n !== expected) {
    throw new DataError(
      `${source}: ${n} records, expected ${expected} (a truncated or extended copy; fetch it again)`,
    );
  }
  const images = new Uint8Array(n * IMAGE);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * rec;
    labels[i] = bytes[r + useLabel];
    const px = r + labelBytes;
    const o = i * IMAGE;
    // channel-planar → interleaved (HWC)
    for (let p = 0; p < PIXELS; p++) {
      images[o + 3 * p] = bytes[px + p];
      images[o + 3 * p + 1] = bytes[px + PIXELS + p];
      images[o + 3 * p + 2] = bytes[px + 2 * PIXELS + p];
    }
  }
  checkLabels(labels, numClasses, source);
  return { images, labels };
}

function dataset(
  name: string,
  parts: { images: Uint8Array; labels: Int32Array }[],
  classes: string[],
): ImageDataset {
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const images = new Uint8Array(n * IMAGE);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * IMAGE);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return {
    name,
    images,
    labels,
    n,
    height: 32,
    width: 32,
    channels: 3,
    numClasses: classes.length,
    classNames: classes,
  };
}

/** Files of the CIFAR-10 binary distribution. */
export const CIFAR10_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`).concat(
  "test_batch.bin",
);

/** The official archives, their checksums, and the folder they extract to. */
export const CIFAR_SOURCES = {
  cifar10: {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    member: "cifar-10-batches-bin/",
    files: [...CIFAR10_FILES, "batches.meta.txt"],
    required: CIFAR10_FILES,
  },
  cifar100: {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    member: "cifar-100-binary/",
    files: ["train.bin", "test.bin", "coarse_label_names.txt", "fine_label_names.txt"],
    required: ["train.bin", "test.bin"],
  },
} as const;

async function locateOrDownload(kind: "cifar10" | "cifar100", o: LocateOptions): Promise<string> {
  const src = CIFAR_SOURCES[kind];
  const aliases = kind === "cifar10"
    ? ["cifar10", "cifar-10-batches-bin"]
    : ["cifar100", "cifar-100-binary"];
  const found = await findDatasetDir(aliases, src.required, o);
  if (found.dir) return found.dir;
  return await ensureDownloaded({
    name: kind === "cifar10" ? "CIFAR-10" : "CIFAR-100",
    folder: kind,
    url: src.url,
    md5: src.md5,
    archiveMember: src.member,
    files: [...src.files],
    required: [...src.required],
    searched: found.searched,
    offline: o.offline,
  });
}

/** A data file's bytes; an unreadable file (permissions, a folder in its place) is a DataError. */
async function readData(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
}

async function readNames(path: string, fallback: string[]): Promise<string[]> {
  try {
    const names = (await Deno.readTextFile(path)).split("\n").map((s) => s.trim()).filter(Boolean);
    return names.length === fallback.length ? names : fallback;
  } catch {
    return fallback;
  }
}

/** Loads CIFAR-10 (50,000 train, 10,000 test) from the first place it is found, else downloads it. */
export async function loadCifar10(o: LocateOptions = {}): Promise<DatasetSplit> {
  const dir = await locateOrDownload("cifar10", o);
  const classes = await readNames(`${dir}/batches.meta.txt`, CIFAR10_CLASSES);
  const read = async (f: string) =>
    parseCifarRecords(
      await readData(`${dir}/${f}`),
      1,
      0,
      10,
      `${dir}/${f}`,
      o.checkCounts === false ? undefined : 10000,
    );
  const train = [];
  for (let i = 1; i <= 5; i++) train.push(await read(`data_batch_${i}.bin`));
  return {
    train: dataset("cifar10", train, classes),
    test: dataset("cifar10", [await read("test_batch.bin")], classes),
  };
}

/** Loads CIFAR-100 with its fine (100) or coarse (20) labels. */
export async function loadCifar100(
  o: LocateOptions & { labels?: "fine" | "coarse" } = {},
): Promise<DatasetSplit> {
  const dir = await locateOrDownload("cifar100", o);
  const fine = (o.labels ?? "fine") === "fine";
  const k = fine ? 100 : 20;
  const defaults = Array.from({ length: k }, (_, i) => `class ${i}`);
  const classes = await readNames(`${dir}/${fine ? "fine" : "coarse"}_label_names.txt`, defaults);
  const read = async (f: string, n: number) =>
    parseCifarRecords(
      await readData(`${dir}/${f}`),
      2,
      fine ? 1 : 0,
      k,
      `${dir}/${f}`,
      o.checkCounts === false ? undefined : n,
    );
  return {
    train: dataset("cifar100", [await read("train.bin", 50000)], classes),
    test: dataset("cifar100", [await read("test.bin", 10000)], classes),
  };
}
