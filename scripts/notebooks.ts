/**
 * Executes every notebook in `notebooks/` headlessly on the Deno Jupyter kernel and fails on any
 * cell error. Needs Debian's `jupyter-nbconvert python3-nbclient python3-ipykernel`; installs the
 * Deno kernelspec (`deno jupyter --install`) when it is missing.
 *
 *   deno task notebooks                       # all notebooks
 *   deno task notebooks --only=datasets       # one
 *   deno task notebooks --keep=results/nb     # keep the executed copies
 *
 * @module
 */

import { join } from "node:path";
import { runCli } from "../lib/config/cli.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { UserError } from "../lib/util/errors.ts";

const spec = {
  description: "notebooks — execute every notebook on the Deno kernel; fail on any cell error",
  usage: "deno task notebooks [--only=NAME,...] [--keep=DIR] [--timeout=SECONDS]",
  defaults: { only: [] as string[], keep: "", timeout: 900 },
  docs: {
    only: "notebook names (without .ipynb) to run",
    keep: "folder for the executed notebooks (default: a temporary folder)",
    timeout: "seconds allowed per cell",
  },
  integers: ["timeout"] as const,
};

async function ensureKernel(): Promise<void> {
  const home = Deno.env.get("HOME") ?? "";
  const dirs = [
    join(home, ".local/share/jupyter/kernels/deno"),
    "/usr/local/share/jupyter/kernels/deno",
    "/usr/share/jupyter/kernels/deno",
  ];
  for (const d of dirs) {
    try {
      await Deno.stat(join(d, "kernel.json"));
      return;
    } catch { /* not there */ }
  }
  console.error("installing the Deno Jupyter kernel (deno jupyter --install)");
  const { code } = await new Deno.Command(Deno.execPath(), { args: ["jupyter", "--install"] })
    .output();
  if (code !== 0) throw new UserError("`deno jupyter --install` failed");
}

async function main(cfg: typeof spec.defaults) {
  try {
    await new Deno.Command("jupyter", {
      args: ["nbconvert", "--version"],
      stdout: "null",
      stderr: "null",
    }).output();
  } catch {
    throw new UserError(
      "jupyter not found: apt-get install jupyter-nbconvert python3-nbclient python3-ipykernel",
    );
  }
  await ensureKernel();
  const dir = join(projectRoot(), "notebooks");
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".ipynb"))
    .sort()
    .filter((n) => cfg.only.length === 0 || cfg.only.includes(n.replace(/\.ipynb$/, "")));
  if (names.length === 0) throw new UserError(`no notebooks to run in ${dir}`);
  const outDir = cfg.keep || await Deno.makeTempDir({ prefix: "gradlab-nb-" });
  await Deno.mkdir(outDir, { recursive: true });
  const failed: string[] = [];
  const execute = (name: string) =>
    new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to=notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=deno",
        `--ExecutePreprocessor.timeout=${cfg.timeout}`,
        // outputs that reach the client after the cell's reply were dropped under load (4 s
        // default): a busy machine lost 1–3 of 7 outputs per run
        "--ExecutePreprocessor.iopub_timeout=60",
        `--output-dir=${outDir}`,
        join(dir, name),
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
  for (const name of names) {
    const t0 = performance.now();
    console.error(`▶ ${name}`);
    let { code, stderr } = await execute(name);
    // Jupyter's client now and then rejects a message of the Deno kernel as badly signed
    // ("Invalid Signature") — a transport failure, not the notebook's: run it once more, saying so.
    if (code !== 0 && new TextDecoder().decode(stderr).includes("Invalid Signature")) {
      console.error(
        `  ${name}: the Jupyter client rejected a kernel message's signature; once more`,
      );
      ({ code, stderr } = await execute(name));
    }
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (code === 0) {
      console.error(`✔ ${name} (${secs} s)`);
    } else {
      failed.push(name);
      const log = new TextDecoder().decode(stderr).split("\n").filter((l) =>
        !l.includes("is unstable")
      );
      console.error(`✘ ${name} (${secs} s)\n${log.slice(-30).join("\n")}`);
    }
  }
  console.error(`executed notebooks in ${outDir}`);
  if (failed.length) throw new UserError(`notebooks failed: ${failed.join(", ")}`);
}

if (import.meta.main) await runCli(spec, main);
