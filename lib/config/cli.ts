/**
 * The entry-point wrapper every script uses: parse the command line, run, and turn expected
 * failures into one-line messages.
 *
 * @module
 */

import { ConfigError, type ConfigSpec, type ConfigValue, parseConfig } from "./parse.ts";
import { declareConfig, key } from "./declare.ts";
import { RunDir } from "../run/run_dir.ts";
import { ioFailure, UserError } from "../util/errors.ts";
import { InterruptedError } from "../util/interrupt.ts";

/**
 * Options shared by all scripts, declared once (default, doc, allowed values); every script's
 * table starts with them.
 */
export const COMMON_KEYS = {
  seed: key(0, "random seed (same seed + same backend → same numbers)", { int: true, min: 0 }),
  backend: key("auto", "compute backend", {
    choices: ["auto", "webgpu", "native", "wasm", "cpu"] as const,
  }),
  out: key("results", "folder under which the run folder is written"),
  dataDir: key("", "where datasets are looked up first (then $GRADLAB_DATA, then data/)"),
  resume: key(
    "",
    "continue the run in this folder with its own configuration (only --threads may be given too)",
  ),
  threads: key(0, "compute threads for the native backend (0: all cores)", {
    int: true,
    min: 0,
    max: 1024,
  }),
};

const COMMON = declareConfig(COMMON_KEYS);

/** Defaults of the options shared by all scripts (from {@link COMMON_KEYS}). */
export const COMMON_DEFAULTS = COMMON.defaults;

/** Docs of {@link COMMON_DEFAULTS}. */
export const COMMON_DOCS = COMMON.docs;

/** Allowed ranges of the common numeric options. */
export const COMMON_RANGES = COMMON.ranges;

/** Allowed values of the common options. */
export const COMMON_CHOICES = { backend: COMMON_KEYS.backend.choices };

/**
 * Parses `args` with `spec` and runs `main(config)`. `--help` prints and exits 0; a
 * {@link UserError} (bad flag, missing dataset, unavailable backend) or a failure of the machine
 * (disk full, permission, a path that is a file) prints `error: <message>` and exits 2; an
 * interrupt prints the resume command and exits 130; other errors are bugs and keep their
 * stack. `--debug` keeps the stack of every error.
 */
export async function runCli<C extends Record<string, ConfigValue>>(
  spec: ConfigSpec<C>,
  main: (config: C, info: { preset: string | null; explicit: (keyof C)[] }) => Promise<unknown>,
  args: string[] = Deno.args,
): Promise<void> {
  // --debug: keep the stack trace of expected failures too
  const debug = args.includes("--debug");
  args = args.filter((a) => a !== "--debug");
  try {
    const parsed = parseConfig(args, spec);
    if ("help" in parsed) {
      console.log(parsed.help);
      return;
    }
    const extra = parsed.explicit.filter((k) => k !== "resume" && k !== "threads");
    if (parsed.config.resume && (extra.length || parsed.preset)) {
      const flags = [...(parsed.preset ? ["preset"] : []), ...extra.map(String)];
      throw new ConfigError(
        `--resume continues a run with its own configuration; drop ${
          flags.map((k) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")
        } (only --threads may change)`,
      );
    }
    await main(parsed.config, { preset: parsed.preset, explicit: parsed.explicit });
  } catch (e) {
    // a start that failed before any work leaves no run folder behind
    await RunDir.discardUnused();
    const run = RunDir.active;
    if (e instanceof InterruptedError && run) {
      const paper = String(run.config.paper ?? "<script>");
      console.error(`${e.message}; resume with: deno task ${paper} --resume=${run.path}`);
      Deno.exit(130);
    }
    if (debug) throw e;
    if (e instanceof UserError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    const io = ioFailure(e);
    if (io) {
      console.error(`error: ${io}`);
      Deno.exit(2);
    }
    throw e; // a bug: keep the stack
  }
}
