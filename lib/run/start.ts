/**
 * The opening every paper script shares: create a run folder (or reopen one with `--resume`, whose
 * saved configuration then wins), say where it is, start the compute backend, and arm Ctrl-C.
 *
 * @module
 */

import { type BackendChoice, initBackend } from "../backend/select.ts";
import { installInterruptHandler } from "../util/interrupt.ts";
import { RunDir } from "./run_dir.ts";
import { UserError } from "../util/errors.ts";

/** The options every script has that this needs. */
export interface RunConfig {
  resume: string;
  out: string;
  backend: string;
  threads: number;
}

/** Opens the run folder and the backend; returns the folder and the configuration in force. */
export async function startRun<C extends RunConfig>(
  paper: string,
  cfgIn: C,
  defaults: C,
): Promise<{ run: RunDir; cfg: C }> {
  if (!cfgIn.resume && cfgIn.out.trim() === "") {
    throw new UserError("--out is empty: name the folder that run folders go under");
  }
  const run = cfgIn.resume ? await RunDir.open(cfgIn.resume, paper) : await RunDir.create({
    out: cfgIn.out,
    paper,
    config: { ...cfgIn } as Record<string, unknown>,
  });
  // A resumed run keeps its configuration; only the thread count (which changes no number) may
  // differ — the command line refuses other flags next to --resume (lib/config/cli.ts).
  const cfg =
    (cfgIn.resume
      ? { ...defaults, ...run.config, resume: cfgIn.resume, threads: cfgIn.threads }
      : cfgIn) as C;
  console.error(`run folder: ${run.path}`);
  await initBackend(cfg.backend as BackendChoice, { threads: cfg.threads || undefined });
  installInterruptHandler();
  return { run, cfg };
}
