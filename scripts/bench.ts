/**
 * Benchmarks: the workloads of `shared/bench/README.md` on each backend, one JSON line per
 * (workload, model, backend, variant) on stdout and in `--out`.
 *
 *   deno task bench                          # W1, W1conv, W2 (and the rest) on native + wasm
 *   deno task bench --quick                  # brief smoke run (CI)
 *   deno task bench --workload=W1 --backends=native --threads=1,2 --peer
 *
 * With `--peer`, the PyTorch peer scripts (Debian python3-torch) run interleaved with ours
 * (A/B/A/B over `--rounds`), and a summary line per comparison gives the ratio ours / PyTorch.
 *
 * @module
 */

import { benchGunnBlock, benchGunnStep } from "./bench/w4_gunn.ts";
import { benchGradNetStep } from "./bench/wgn_gradnet.ts";
import { join } from "node:path";
import { COMMON_CHOICES, runCli } from "../lib/config/cli.ts";
import { declareConfig, key } from "../lib/config/declare.ts";
import { initBackend } from "../lib/backend/select.ts";
import { benchInfer, benchTrain } from "./bench/w1_w2.ts";
import { benchConvLayers } from "./bench/conv_layers.ts";
import { benchPerExample, W3_MODELS } from "./bench/w3_pergrad.ts";
import { benchStream } from "./bench/w3_stream.ts";
import { type GemmCall, recordGemmCalls, timeGemmCalls } from "./bench/gemm.ts";
import { openSystemBlas } from "../lib/backend/native/blas.ts";
import { benchSvm, drawSvmData, peerSvmLine, readSvmDump, type SvmData } from "./bench/w5_svm.ts";
import {
  PEER_FULL_MATRIX_METHODS,
  peerModelLines,
  type PeerSetup,
  peerUnavailable,
  peerW3Lines,
  runPeerScript,
} from "./bench/peer.ts";
import { type BenchContext, type BenchLine, dateUtc } from "./bench/result.ts";
import { median } from "./bench/timing.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { UserError } from "../lib/util/errors.ts";
import type { BenchModelName } from "./bench/models.ts";

const WORKLOADS = [
  "W1",
  "W1conv",
  "W2",
  "W3",
  "W3g",
  "W3stream",
  "W4",
  "W4step",
  "W5",
  "Wgemm",
  "Wgn",
] as const;
const DEFAULT_WORKLOADS = ["W1", "W1conv", "W2", "W3", "W3g", "W4", "W5", "Wgn"];

const W3_VARIANTS = [
  "baseline",
  "labels1/batched",
  "labels1/batched_copy",
  "labels10/batched",
  "labels1/loop",
] as const;

const spec = {
  description: "bench — throughput of the shared benchmark workloads on each backend (JSON lines)",
  usage: "deno task bench [--quick] [--workload=W1,W2] [--backends=native,wasm] [--peer]",
  ...declareConfig({
    workload: key(DEFAULT_WORKLOADS, "workloads to run", { choices: WORKLOADS }),
    backends: key(["native", "wasm"] as string[], "backends to measure (cpu is very slow)", {
      choices: COMMON_CHOICES.backend.filter((b) => b !== "auto"),
    }),
    threads: key([1, 2], "thread counts for the native backend (wasm, cpu, webgpu run one)", {
      int: true,
      min: 1,
    }),
    model: key(["cifar_cnn", "mnist_cnn"] as string[], "models for W1/W1conv/W2/W3", {
      choices: ["cifar_cnn", "mnist_cnn"] as const,
    }),
    w3Variants: key([...W3_VARIANTS] as string[], "W3/W3g variants", { choices: W3_VARIANTS }),
    w3gModel: key(
      ["gradnet_base_h16", "gradnet_base_h64"] as string[],
      "GradNet base networks for W3g",
      { choices: ["gradnet_base_h16", "gradnet_base_h64"] as const },
    ),
    blas: key(
      ["openblas", "blis"] as string[],
      "Wgemm: system BLAS libraries to time the native kernels against",
      { choices: ["openblas", "blis"] as const },
    ),
    streamN: key(
      [10000, 50000],
      "W3stream: examples streamed to a gradient file, per measurement",
      {
        int: true,
        min: 1,
      },
    ),
    streamH: key(16, "W3stream: width h of the GradNet base network", { int: true, min: 1 }),
    quick: key(false, "one brief window per workload (a smoke check)"),
    peer: key(false, "also run the PyTorch peer scripts, interleaved, and print ratios"),
    rounds: key(2, "interleaved rounds (ours, peer, ours, peer, ...) with --peer", {
      int: true,
      min: 1,
    }),
    peerDir: key(
      "../shared/bench/peer",
      "folder of the peer scripts (relative to the project root)",
    ),
    python: key("/usr/bin/python3", "interpreter with torch for the peer"),
    out: key("", "JSONL file to append results to (empty: results/bench/<time>.jsonl)"),
  }),
};

type Config = typeof spec.defaults;

async function ourLines(ctx: BenchContext, cfg: Config): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const models = cfg.model as BenchModelName[];
  for (const w of cfg.workload) {
    for (const m of models) {
      if (w === "W1") lines.push(await benchTrain(ctx, m));
      if (w === "W2") lines.push(await benchInfer(ctx, m));
      if (w === "W1conv") lines.push(...(await benchConvLayers(ctx, m)));
      if (w === "W3") lines.push(...(await benchPerExample(ctx, m, cfg.w3Variants)));
    }
    if (w === "W4") lines.push(...(await benchGunnBlock(ctx)));
    if (w === "W4step") lines.push(...(await benchGunnStep(ctx)));
    if (w === "Wgn") lines.push(...(await benchGradNetStep(ctx)));
    if (w === "Wgemm" && ctx.backend === "native") lines.push(...(await gemmLines(ctx, cfg)));
    if (w === "W3stream") {
      for (const n of cfg.streamN) {
        lines.push(await benchStream(ctx, cfg.streamH, ctx.quick ? Math.min(n, 512) : n));
      }
    }
    if (w === "W3g") {
      for (const m of cfg.w3gModel) {
        if (!(m in W3_MODELS)) continue;
        lines.push(...(await benchPerExample(ctx, m, cfg.w3Variants)));
      }
    }
  }
  return lines;
}

let gemmCalls: GemmCall[] | null = null;

/**
 * Wgemm: the products W1, W3, W3g and W4 make (recorded once, from one quick pass of each), timed
 * with the own kernels and with each system BLAS, then one summary line per BLAS and workload:
 * the workload pass's total product time both ways.
 */
async function gemmLines(ctx: BenchContext, cfg: Config): Promise<BenchLine[]> {
  const quick: BenchContext = { ...ctx, quick: true };
  const models = ["cifar_cnn", "mnist_cnn"] as BenchModelName[];
  gemmCalls ??= await recordGemmCalls([
    ...models.map((m) => ({ workload: `W1/${m}`, run: () => benchTrain(quick, m) })),
    ...[...models, "gradnet_base_h16", "gradnet_base_h64"].map((m) => ({
      workload: `W3/${m}`,
      run: () => benchPerExample(quick, m, ["labels1/batched", "labels10/batched"]),
    })),
    { workload: "W4", run: () => benchGunnBlock(quick) },
  ]);
  const lines: BenchLine[] = [];
  for (const name of cfg.blas) {
    const found = openSystemBlas(name);
    if (!found.blas) {
      console.error(`Wgemm: ${name}: ${found.reason}; the own kernels run without a comparison`);
      continue;
    }
    const per = timeGemmCalls(gemmCalls, found.blas, ctx.threads, {
      minS: ctx.quick ? 0.01 : 0.05,
      repeats: ctx.quick ? 1 : 3,
    });
    found.blas.close();
    lines.push(...per);
    // a pass's product time, own or BLAS: each product's time × how often the pass makes it
    const time = (ls: BenchLine[], k: "own_s" | "blas_s") =>
      ls.reduce((s, l) => s + (l[k] as number) * (l.calls_per_workload_pass as number), 0);
    for (const wl of new Set(per.map((l) => l.model))) {
      const mine = per.filter((l) => l.model === wl);
      for (const kind of ["matmul", "conv", "convFilter", "convInput", "all"]) {
        const sel = kind === "all" ? mine : mine.filter((l) => l.variant === kind);
        if (!sel.length) continue;
        const own = time(sel, "own_s"), lib = time(sel, "blas_s");
        lines.push({
          workload: "Wgemm",
          model: wl,
          backend: "native",
          threads: ctx.threads,
          batch: 0,
          variant: `total/${kind}`,
          date_utc: dateUtc(),
          blas: name,
          own_s: own,
          blas_s: lib,
          blas_over_own: lib / own,
          share_of_pass: own / time(mine, "own_s"),
        });
      }
    }
  }
  return lines;
}

const PEER_SCRIPTS: Record<string, { script: string; workload: string }> = {
  W1: { script: "w1_train.py", workload: "W1" },
  W2: { script: "w2_infer.py", workload: "W2" },
};

/** Lines for the peer's W4 object (forward + backward images/s of both blocks). */
function peerW4Lines(obj: Record<string, unknown>, threads: number): BenchLine[] {
  const blocks = obj.blocks as Record<string, Record<string, number>>;
  const names: Record<string, string> = { gunn: "gunn_block", sunn_reference: "sunn_reference" };
  return Object.entries(blocks).map(([name, r]) => ({
    workload: "W4",
    model: names[name] ?? name,
    backend: "pytorch",
    threads,
    batch: Number(obj.batch),
    items_per_s: r.fwd_bwd_images_per_s,
    variant: "",
    date_utc: String(obj.date_utc),
    fwd_only_items_per_s: r.fwd_only_images_per_s,
  }));
}

async function peerLines(p: PeerSetup, threads: number, cfg: Config): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  for (const w of cfg.workload) {
    const s = PEER_SCRIPTS[w];
    if (s) {
      const obj = await runPeerScript(p, s.script, threads);
      lines.push(
        ...peerModelLines(obj, s.workload, threads).filter((l) =>
          (cfg.model as string[]).includes(l.model)
        ),
      );
    }
    if (w === "W4") {
      lines.push(...peerW4Lines(await runPeerScript(p, "w4_gunn.py", threads), threads));
    }
    if (w === "W3" || w === "W3g") {
      const models = w === "W3" ? cfg.model : cfg.w3gModel;
      const obj = await runPeerScript(p, "w3_pergrad.py", threads, [
        "--models",
        models.join(","),
        "--methods",
        PEER_FULL_MATRIX_METHODS.join(","),
        "--reuse-methods",
        "",
      ]);
      lines.push(...peerW3Lines(obj, threads));
    }
  }
  return lines;
}

/**
 * The comparison key of a line: W1/W2 compare like with like; W3 compares our batched engine
 * with PyTorch's best full-matrix method (loop, vmap or trick_all) at the same label count.
 */
function comparisonKey(l: BenchLine): string | null {
  if (l.items_per_s === undefined) return null;
  if (l.workload === "W3" || l.workload === "W3g") {
    const [labels, method] = l.variant.split("/");
    if (l.backend === "native" && method !== "batched") return null;
    if (l.backend === "pytorch" && !PEER_FULL_MATRIX_METHODS.includes(method)) return null;
    return `${l.workload}|${l.model}|${l.threads}|${labels}`;
  }
  return `${l.workload}|${l.model}|${l.threads}|${l.variant}`;
}

function ratioLines(all: BenchLine[]): BenchLine[] {
  // Per round, PyTorch's best method; then medians over rounds.
  const groups = new Map<string, { ours: number[]; peer: Map<string, number> }>();
  all.forEach((l) => {
    if (l.backend !== "pytorch" && l.backend !== "native") return;
    const k = comparisonKey(l);
    if (!k) return;
    const g = groups.get(k) ?? { ours: [], peer: new Map<string, number>() };
    if (l.backend === "native") g.ours.push(l.items_per_s!);
    else {
      const round = String(l.round ?? 0);
      g.peer.set(round, Math.max(g.peer.get(round) ?? 0, l.items_per_s!));
    }
    groups.set(k, g);
  });
  const out: BenchLine[] = [];
  for (const [k, g] of groups) {
    const peer = [...g.peer.values()];
    if (!g.ours.length || !peer.length) continue;
    const [workload, model, threads, variant] = k.split("|");
    const ours = median(g.ours), theirs = median(peer);
    out.push({
      workload,
      model,
      backend: "native/pytorch",
      threads: Number(threads),
      batch: 0,
      variant: variant ? `ratio ${variant}` : "ratio",
      date_utc: dateUtc(),
      ours_items_per_s: ours,
      pytorch_items_per_s: theirs,
      ratio: ours / theirs,
      samples: { ours: g.ours, pytorch: peer },
    });
  }
  return out;
}

/**
 * W5 runs once per round, outside the backend loop (the solver is TypeScript on one thread);
 * with --peer, scikit-learn's fit comes first in round 1 and its data dump is what both fit.
 */
async function runW5(
  cfg: Config,
  peer: PeerSetup,
  emit: (l: BenchLine[]) => Promise<void>,
): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const shape = { n: cfg.quick ? 2000 : 10000, d: 512, classes: 10, sigma: 2 };
  let data: SvmData | null = null;
  const dump = cfg.peer ? await Deno.makeTempDir({ prefix: "gradlab-w5-" }) : null;
  const rounds = cfg.peer ? cfg.rounds : 1;
  for (let round = 1; round <= rounds; round++) {
    if (cfg.peer) {
      console.error(`[round ${round}] W5 scikit-learn peer…`);
      const extra = [
        "--n",
        String(shape.n),
        "--svc-subset",
        "0",
        ...(data ? [] : ["--dump-dir", dump!]),
      ];
      const l = [{ ...peerSvmLine(await runPeerScript(peer, "w5_svm.py", 1, extra)), round }];
      lines.push(...l);
      await emit(l);
    }
    data ??= dump
      ? await readSvmDump(dump, shape.d, shape.classes)
      : drawSvmData({ ...shape, seed: 0 });
    console.error(`[round ${round}] W5 TypeScript SVM (${data.source})…`);
    const l = [{
      ...benchSvm({ backend: "typescript", threads: 1, quick: cfg.quick }, data),
      round,
    }];
    lines.push(...l);
    await emit(l);
  }
  if (dump) await Deno.remove(dump, { recursive: true });
  return lines;
}

/** W5: median fit times of both sides and the speed-up (scikit-learn's time ÷ ours). */
function svmRatioLines(all: BenchLine[]): BenchLine[] {
  const fit = (backend: string) =>
    all.filter((l) => l.workload === "W5" && l.backend === backend).map((l) => l.fit_s as number);
  const ours = fit("typescript"), theirs = fit("sklearn");
  if (!ours.length || !theirs.length) return [];
  const model = all.find((l) => l.workload === "W5")!.model;
  return [{
    workload: "W5",
    model,
    backend: "typescript/sklearn",
    threads: 1,
    batch: 0,
    variant: "ratio",
    date_utc: dateUtc(),
    ours_fit_s: median(ours),
    sklearn_fit_s: median(theirs),
    speedup: median(theirs) / median(ours),
    samples: { ours, sklearn: theirs },
  }];
}

async function main(cfg: Config) {
  const outPath = cfg.out ||
    join(projectRoot(), "results", "bench", `${dateUtc().replace(/[-:]/g, "")}.jsonl`);
  await Deno.mkdir(join(outPath, ".."), { recursive: true });
  const emit = async (lines: BenchLine[]) => {
    for (const l of lines) {
      const s = JSON.stringify(l);
      console.log(s);
      await Deno.writeTextFile(outPath, s + "\n", { append: true });
    }
  };
  const peer: PeerSetup = { dir: join(projectRoot(), cfg.peerDir), python: cfg.python };
  if (cfg.peer) {
    const why = await peerUnavailable(peer);
    if (why) throw new UserError(`--peer: ${why}`);
  }
  const all: BenchLine[] = [];
  const rounds = cfg.peer ? cfg.rounds : 1;
  const tensorWorkloads = cfg.workload.some((w) => w !== "W5");
  for (let round = 1; round <= rounds && tensorWorkloads; round++) {
    for (const backend of cfg.backends) {
      const threadList = backend === "native" ? cfg.threads : [1];
      for (const threads of threadList) {
        const info = await initBackend(backend as "native", { threads, log: null });
        const ctx: BenchContext = { backend: info.name, threads: info.threads, quick: cfg.quick };
        console.error(`[round ${round}] ${info.name}, ${info.threads} thread(s)…`);
        const lines = (await ourLines(ctx, cfg)).map((l) => ({ ...l, round }));
        all.push(...lines);
        await emit(lines);
        if (cfg.peer && backend === "native") {
          console.error(`[round ${round}] pytorch peer, ${threads} thread(s)…`);
          const p = (await peerLines(peer, threads, cfg)).map((l) => ({ ...l, round }));
          all.push(...p);
          await emit(p);
        }
      }
    }
  }
  if (cfg.workload.includes("W5")) all.push(...(await runW5(cfg, peer, emit)));
  if (cfg.peer) await emit([...ratioLines(all), ...svmRatioLines(all)]);
  console.error(`wrote ${outPath}`);
}

if (import.meta.main) await runCli(spec, main);
