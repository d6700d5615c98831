/**
 * The experiments of "last layer = SVM" (spec: shared/papers/lastlayer_svm.md): each one's data,
 * network with a 2-D feature layer, and training settings, as the original code has them (sizes
 * scaled for a CPU where the README says so).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { band, gaussianBlobs, moons, type PointSet, quarterAnnuli } from "../data/synthetic.ts";
import { loadMnist } from "../data/mnist.ts";
import { loadCifar10 } from "../data/cifar.ts";
import { classSubset } from "../data/splits.ts";
import { imageBatch, type ImageDataset } from "../data/dataset.ts";
import { UserError } from "../util/errors.ts";
import { cnnNet, mlpNet, type TwoDNet } from "./networks.ts";
import type { ExperimentData } from "./experiment.ts";

function pointData(p: PointSet, classes: number): ExperimentData {
  return {
    x: tf.tensor2d(p.x, [p.n, p.d]),
    y: p.y,
    classes,
    classNames: Array.from({ length: classes }, (_, k) => `class ${k}`),
  };
}

function imageData(train: ImageDataset, test: ImageDataset, limit: number): ExperimentData {
  const n = limit > 0 ? Math.min(limit, train.n) : train.n;
  const idx = Array.from({ length: n }, (_, i) => i);
  return {
    x: imageBatch(train, idx),
    y: train.labels.slice(0, n),
    xTest: imageBatch(test, Array.from({ length: test.n }, (_, i) => i)),
    yTest: test.labels.slice(),
    classes: train.numClasses,
    classNames: train.classNames,
  };
}

/** One experiment ready to run: its data, network and training settings. */
export interface Setup {
  title: string;
  data: ExperimentData;
  net: TwoDNet;
  steps: number;
  lr: number;
  batch: number;
  momentum: number;
  clip: number;
}

/** The settings {@link setup} reads (the script's configuration has them all). */
export interface SetupConfig {
  seed: number;
  dataDir: string;
  hidden: number;
  simSteps: number;
  simLr: number;
  simClip: number;
  blobSteps: number;
  blobPoints: number;
  blobLr: number;
  blobMomentum: number;
  imageSteps: number;
  imageLr: number;
  imageBatch: number;
  momentum: number;
  imageTrain: number;
}

/**
 * Data, network and training settings of experiment `id` (A-blobs, A-band, A-annuli, A-moons:
 * 2-D data and an x² network; B: three blobs and a ReLU network; C, D: MNIST 0/1 and 0/1/2 with a
 * CNN; E: CIFAR-10 airplane vs bird).
 */
export async function setup(id: string, cfg: SetupConfig): Promise<Setup> {
  const sim = (title: string, p: PointSet): Setup => ({
    title,
    data: pointData(p, 2),
    net: mlpNet({
      hidden: cfg.hidden,
      classes: 2,
      activation: "square",
      initStd: 0.01,
      biasInit: 0.1,
      seed: cfg.seed,
    }),
    steps: cfg.simSteps,
    lr: cfg.simLr,
    batch: 0,
    momentum: 0,
    clip: cfg.simClip,
  });
  switch (id) {
    case "A-blobs":
      return sim(
        "A: two blobs (x² network)",
        gaussianBlobs({
          centers: [[0.2, 0.2], [0.8, 0.8]],
          sigma: 0.1,
          counts: 1000,
          seed: cfg.seed,
        }),
      );
    case "A-band":
      return sim("A: square minus a band (x² network)", band({ n: 2000, seed: cfg.seed }));
    case "A-annuli": {
      // The original's radii [0.1, 200] and [300, 400], scaled by 1/400 (x² activations on raw radii overflow).
      const q = quarterAnnuli({ seed: cfg.seed });
      return sim("A: quarter annuli (x² network)", { ...q, x: q.x.map((v) => v / 400) });
    }
    case "A-moons":
      return sim("A: moons (x² network)", moons({ n: 2000, noise: 0.1, seed: cfg.seed }));
    case "B": {
      const k = Math.floor(cfg.blobPoints / 3);
      const b = gaussianBlobs({
        centers: [[10, 10], [45, 75], [80, 10]],
        sigma: 5,
        counts: [k, k, cfg.blobPoints - 2 * k],
        seed: cfg.seed,
      });
      return {
        title: "B: three blobs (ReLU network)",
        data: pointData(b, 3),
        net: mlpNet({
          hidden: cfg.hidden,
          classes: 3,
          activation: "relu",
          initStd: 0.05,
          biasInit: 0.01,
          seed: cfg.seed,
        }),
        steps: cfg.blobSteps,
        lr: cfg.blobLr,
        batch: 0,
        momentum: cfg.blobMomentum,
        clip: 0,
      };
    }
    case "C":
    case "D": {
      const { train, test } = await loadMnist();
      const classes = id === "C" ? [0, 1] : [0, 1, 2];
      const data = imageData(
        classSubset(train, classes),
        classSubset(test, classes),
        cfg.imageTrain,
      );
      return {
        title: id === "C" ? "C: MNIST 0 vs 1 (CNN)" : "D: MNIST 0/1/2 (CNN)",
        data,
        net: cnnNet({ inputShape: [28, 28, 1], classes: classes.length, seed: cfg.seed }),
        steps: cfg.imageSteps,
        lr: cfg.imageLr,
        batch: cfg.imageBatch,
        momentum: cfg.momentum,
        clip: 0,
      };
    }
    case "E": {
      const { train, test } = await loadCifar10({ dataDir: cfg.dataDir || undefined });
      const data = imageData(classSubset(train, [0, 2]), classSubset(test, [0, 2]), cfg.imageTrain);
      return {
        title: "E: CIFAR-10 airplane vs bird (CNN)",
        data,
        net: cnnNet({ inputShape: [32, 32, 3], classes: 2, seed: cfg.seed }),
        steps: cfg.imageSteps,
        lr: cfg.imageLr,
        batch: cfg.imageBatch,
        momentum: cfg.momentum,
        clip: 0,
      };
    }
  }
  throw new UserError(`unknown experiment ${id}`);
}
