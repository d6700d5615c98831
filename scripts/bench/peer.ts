/**
 * Runs the PyTorch peer benchmark scripts of `shared/bench/peer/` (Debian's python3-torch) and
 * turns their JSON into the same lines as ours, so that both sides are measured in one run.
 *
 * @module
 */

import type { BenchLine } from "./result.ts";

/** Where the peer scripts are, and which interpreter has torch. */
export interface PeerSetup {
  dir: string;
  python: string;
}

/** Says why the peer cannot run, or null when it can. */
export async function peerUnavailable(p: PeerSetup): Promise<string | null> {
  try {
    await Deno.stat(`${p.dir}/w1_train.py`);
  } catch {
    return `peer scripts not found in ${p.dir}`;
  }
  try {
    const { code } = await new Deno.Command(p.python, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (code !== 0) return `${p.python} cannot import torch (apt-get install python3-torch)`;
  } catch {
    return `${p.python} not found`;
  }
  return null;
}

/**
 * Runs one peer script at `threads` (2 threads use OMP_WAIT_POLICY=passive, the suite's
 * `2/passive` configuration) and returns its parsed JSON object.
 */
export async function runPeerScript(
  p: PeerSetup,
  script: string,
  threads: number,
  extra: string[] = [],
): Promise<Record<string, unknown>> {
  const env: Record<string, string> = {};
  if (threads > 1) env.OMP_WAIT_POLICY = "passive";
  const { code, stdout, stderr } = await new Deno.Command(p.python, {
    args: [`${p.dir}/${script}`, "--threads", String(threads), ...extra],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    throw new Error(
      `peer ${script} failed: ${new TextDecoder().decode(stderr).trim().split("\n").pop()}`,
    );
  }
  return JSON.parse(out.split("\n").pop()!);
}

/** Lines for the per-model results of a W1/W2-style peer object. */
export function peerModelLines(
  obj: Record<string, unknown>,
  workload: string,
  threads: number,
): BenchLine[] {
  const models = obj.models as Record<string, Record<string, unknown>>;
  return Object.entries(models).map(([model, r]) => ({
    workload,
    model,
    backend: "pytorch",
    threads,
    batch: Number(obj.batch),
    items_per_s: Number(r.items_per_s),
    variant: "",
    date_utc: String(obj.date_utc),
    items_per_s_windows: r.items_per_s_windows,
  }));
}

/** Full-matrix methods of the W3 peer (trick_dense yields only the dense columns). */
export const PEER_FULL_MATRIX_METHODS = ["loop", "vmap", "trick_all"];

/** Lines for a W3 peer object: one per (model, labels, method), plus the baseline. */
export function peerW3Lines(obj: Record<string, unknown>, threads: number): BenchLine[] {
  const models = obj.models as Record<string, Record<string, unknown>>;
  const lines: BenchLine[] = [];
  for (const [model, m] of Object.entries(models)) {
    const workload = model.startsWith("gradnet_base") ? "W3g" : "W3";
    const base = m.baseline_batched_fwd_bwd as Record<string, number>;
    const common = {
      workload,
      model,
      backend: "pytorch",
      threads,
      batch: 64,
      date_utc: String(obj.date_utc),
    };
    lines.push({ ...common, variant: "baseline", items_per_s: base.examples_per_s });
    for (const labels of ["labels_1", "labels_10"]) {
      const methods =
        (m[labels] as { methods: Record<string, Record<string, number>> } | undefined)?.methods ??
          {};
      for (const [method, r] of Object.entries(methods)) {
        lines.push({
          ...common,
          variant: `${labels.replace("_", "")}/${method}`,
          items_per_s: r.examples_per_s,
          minor_faults_per_call: r.minor_faults_per_call,
          cpu_sys_s_per_call: r.cpu_sys_s_per_call,
        });
      }
    }
  }
  return lines;
}
