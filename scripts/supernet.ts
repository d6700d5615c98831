/**
 * SuperNet — a generator maps a task vector z to every weight of a binary classifier; a new task
 * is then solved by optimising z alone (spec: shared/papers/supernet.md; code:
 * victorygod/SuperNet, which had no test split, no baseline and probably no frozen generator).
 *
 *   deno task supernet                                   # MNIST class pairs (no download)
 *   deno task supernet --dataset=cifar100 --data-dir=DIR # the original's data
 *   deno task supernet --preset=smoke                    # seconds
 *
 * Tasks are ordered class pairs with their label-flipped twins. G trains on all but two held-out
 * tasks: the flipped twin of a trained pair (the original's hold-out) and a pair never seen in
 * either orientation (real generalisation). On each, five arms get the same step budget — z only
 * (G frozen), z and G, the classifier trained from scratch, random z, the twin's z — and are
 * scored on the task's test images.
 *
 * @module
 */

import { COMMON_KEYS, runCli } from "../lib/config/cli.ts";
import { declareConfig, key } from "../lib/config/declare.ts";
import { RunDir } from "../lib/run/run_dir.ts";
import { namedOrSynthetic } from "../lib/data/named.ts";
import { startRun } from "../lib/run/start.ts";
import type { DatasetSplit } from "../lib/data/dataset.ts";
import { classifierSpec, Generator, specSize } from "../lib/supernet/networks.ts";
import { splitTasks, tasksOf } from "../lib/supernet/tasks.ts";
import { armReport, type ArmRow, reportMarkdown } from "../lib/supernet/report.ts";
import {
  adaptArm,
  type Arm,
  type ArmOutcome,
  ARMS,
  type Scaling,
  type SuperNetData,
  trainGenerator,
  Z_FORMS,
  type ZForm,
} from "../lib/supernet/train.ts";
import type { Figure } from "../lib/plot/figures.ts";
import { writeFiguresHtml } from "../lib/plot/html.ts";
import { UserError } from "../lib/util/errors.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const DATASETS = ["mnist", "fashion", "cifar10", "cifar100", "synthetic"] as const;

const CONFIG = declareConfig({
  ...COMMON_KEYS,
  out: key("results", "folder under which results/supernet/<run>/ is written"),
  dataset: key(
    "mnist",
    "mnist | fashion | cifar10 | cifar100 (--data-dir or download) | synthetic",
    { choices: DATASETS },
  ),
  tasks: key(
    "pairs",
    "pairs (class pairs and flipped twins; consecutive pairs for >10 classes, as the original) | versus-last (class i vs the last)",
    { choices: ["pairs", "versus-last"] as const },
  ),
  scaling: key("unit", "unit (pixels / 255; a documented deviation) | raw (0–255, the original)", {
    choices: ["unit", "raw"] as const,
  }),
  zDim: key(100, "length of the task vector z (≥ number of training tasks)", { int: true, min: 1 }),
  steps: key(10000, "generator training steps (the original: 50,000)", { int: true, min: 1 }),
  evalEvery: key(1000, "evaluate the generator on the training tasks every this many steps", {
    int: true,
    min: 1,
  }),
  evalImages: key(200, "test images per task in that evaluation (0: all)", { int: true, min: 1 }),
  batch: key(20, "images per step, drawn with replacement from one task (the original: 20)", {
    int: true,
    min: 1,
    max: 4096,
  }),
  lr: key(1e-4, "RMSProp learning rate of every phase (the original: 1e-4)", {
    min: 0,
    minOpen: true,
  }),
  adaptMaxSteps: key(
    4000,
    "step budget of each adaptation run (the original: 1,000 steps in all)",
    { int: true, min: 0 },
  ),
  adaptEvalEvery: key(100, "validate an adaptation run every this many steps", {
    int: true,
    min: 1,
  }),
  adaptPatience: key(5, "stop an adaptation run after this many validations without a lower loss", {
    int: true,
    min: 1,
  }),
  adaptLrs: key(
    [1e-4, 1e-3, 1e-2, 1e-1],
    "RMSProp learning rates tried for each arm that trains; the validation loss picks one (the original: 1e-4 for all)",
    { min: 0, minOpen: true },
  ),
  zForms: key(
    [...Z_FORMS] as string[],
    "forms of z tried for z-only, each with every learning rate: plain | two-vector (the original's z = w + b)",
    { choices: Z_FORMS },
  ),
  valImages: key(
    500,
    "validation images carved from the held-out task's training images (at most a fifth); the test images score each arm once",
    { int: true, min: 1 },
  ),
  seeds: key(3, "seeds --seed, --seed+1, …; each trains its own generator", { int: true, min: 1 }),
  arms: key([...ARMS] as string[], "adaptation arms: z-only, z+G, scratch, random-z, twin-z", {
    choices: ARMS,
  }),
  checkpointEvery: key(500, "checkpoint the generator every this many steps", {
    int: true,
    min: 1,
  }),
});

export const DEFAULTS = CONFIG.defaults;

export type SuperNetConfig = typeof DEFAULTS;

const SPEC = {
  description: "supernet — can a frozen weight generator solve a new task by optimising z alone?",
  usage: "deno task supernet [--dataset=mnist] [--preset=smoke|default|paper] [--key=value ...]",
  ...CONFIG,
  presets: {
    smoke: {
      dataset: "synthetic",
      steps: 60,
      evalEvery: 30,
      evalImages: 20,
      adaptMaxSteps: 20,
      adaptEvalEvery: 10,
      adaptPatience: 2,
      adaptLrs: [1e-3, 1e-2],
      valImages: 20,
      seeds: 1,
      checkpointEvery: 30,
    },
    default: {},
    paper: {
      dataset: "cifar100",
      scaling: "raw",
      steps: 50000,
      evalEvery: 2500,
      seeds: 1,
    },
  } as Record<string, Partial<SuperNetConfig>>,
  presetDocs: {
    smoke: "seconds: synthetic 16×16 images, 4 classes",
    default: "MNIST class pairs, 10,000 generator steps, 3 seeds, arms tuned over 4 learning rates",
    paper: "CIFAR-100 consecutive pairs, raw pixels, 50,000 steps (the original's schedule)",
  },
};

// ---------------------------------------------------------------------------------------------
// Data and tasks

/** The run's dataset (see namedOrSynthetic). */
export function loadData(cfg: SuperNetConfig): Promise<DatasetSplit> {
  return namedOrSynthetic(cfg, {
    n: 480,
    train: 400,
    height: 16,
    width: 16,
    channels: 3,
    numClasses: 4,
    seed: 5,
    noise: 30,
  });
}

export interface SuperNetResult {
  run: RunDir;
  title: string;
  rows: ArmRow[];
  figures: Figure[];
  markdown: string;
}

// ---------------------------------------------------------------------------------------------
// Main

export async function main(
  cfgIn: SuperNetConfig,
  o: { quiet?: boolean } = {},
): Promise<SuperNetResult> {
  const { run, cfg } = await startRun("supernet", cfgIn, DEFAULTS as SuperNetConfig);
  if (cfg.seeds < 1) throw new UserError(`--seeds ${cfg.seeds}: need at least one seed`);

  // data and tasks
  const split = await loadData(cfg);
  const data: SuperNetData = { ...split, scaling: cfg.scaling as Scaling };
  const { trained, heldOut } = splitTasks(tasksOf(split, cfg.tasks), cfg.tasks);
  if (trained.length > cfg.zDim) {
    throw new UserError(`${trained.length} training tasks need --z-dim ≥ ${trained.length}`);
  }
  const spec = classifierSpec([split.train.height, split.train.width, split.train.channels]);
  const title = `SuperNet on ${cfg.dataset} (${trained.length} training tasks, ${cfg.steps} ` +
    `generator steps, adaptation ≤ ${cfg.adaptMaxSteps} steps per learning rate)`;
  console.error(
    `${title}: classifier of ${spec.length} tensors, ${specSize(spec)} generated numbers; ` +
      `generator ${(cfg.zDim + 1) * specSize(spec)} parameters`,
  );

  const seeds = Array.from({ length: cfg.seeds }, (_, i) => cfg.seed + i);
  const outcomes = new Map<string, ArmOutcome>();
  const genCurves: { seed: number; step: number[]; acc: number[] }[] = [];
  for (const seed of seeds) {
    // generator: trained once per seed (resumable), then every arm on every held-out task
    const G = new Generator(spec, cfg.zDim, seed);
    const history = await trainGenerator(run, G, trained, data, {
      tag: `generator-seed${seed}`,
      steps: cfg.steps,
      evalEvery: Math.min(cfg.evalEvery, cfg.steps),
      batch: cfg.batch,
      lr: cfg.lr,
      seed,
      checkpointEvery: cfg.checkpointEvery,
      evalImages: cfg.evalImages,
      quiet: o.quiet,
    });
    genCurves.push({
      seed,
      step: history.map((h) => h.step),
      acc: history.map((h) => Number(h.test_acc)),
    });
    for (const h of heldOut) {
      for (const arm of cfg.arms as Arm[]) {
        if (arm === "twin-z" && h.twinIndex < 0) continue;
        const key = `${h.task.id}-${arm}-seed${seed}`;
        const r = await run.cachedJson(`arm-${key}.json`, async () => {
          const r = await adaptArm(arm, G, spec, h.task, data, {
            maxSteps: cfg.adaptMaxSteps,
            evalEvery: cfg.adaptEvalEvery,
            patience: cfg.adaptPatience,
            lrs: cfg.adaptLrs,
            zForms: cfg.zForms as ZForm[],
            valImages: cfg.valImages,
            batch: cfg.batch,
            seed,
            twinIndex: h.twinIndex,
            quiet: o.quiet,
          });
          if (arm === "z-only" && r.generatorBefore !== r.generatorAfter) {
            throw new Error(
              `z-only changed the generator (${r.generatorBefore} → ${r.generatorAfter})`,
            );
          }
          if (!o.quiet) {
            console.error(
              `  seed ${seed}, ${h.task.name}, ${arm}: lr ${r.lr ?? "—"}, step ${r.step}, ` +
                `test accuracy ${r.testAcc.toFixed(4)}`,
            );
          }
          return r;
        });
        outcomes.set(key, r);
      }
    }
    G.dispose();
  }

  const { rows, figures } = armReport(heldOut, cfg.arms as Arm[], seeds, outcomes, genCurves);
  const seconds = run.elapsed();
  const ceiling = genCurves.map((g) => g.acc.at(-1) ?? NaN);
  const markdown = reportMarkdown(title, rows, seeds, seconds, ceiling);
  await writeFiguresHtml(run.file("summary.html"), figures, "SuperNet");
  await run.writeText("summary.md", markdown);
  await run.complete({ title, rows, seconds, generatorCeiling: ceiling });
  if (!o.quiet) console.log(markdown + `— ${run.path}`);
  return { run, title, rows, figures, markdown };
}

if (import.meta.main) await runCli(SPEC, (cfg) => main(cfg));
export { SPEC as SUPERNET_SPEC, splitTasks, tasksOf };
