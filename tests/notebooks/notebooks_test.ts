/**
 * Every notebook executes on the Deno Jupyter kernel without a cell error (via
 * `deno task notebooks`). Skipped, with the reason printed, where Jupyter is not installed.
 */

import assert from "node:assert";

async function jupyterMissing(): Promise<string | null> {
  try {
    const { code } = await new Deno.Command("jupyter", {
      args: ["nbconvert", "--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0 ? null : "jupyter nbconvert is broken";
  } catch {
    return "jupyter is not installed (apt-get install jupyter-nbconvert python3-nbclient python3-ipykernel)";
  }
}

const why = await jupyterMissing();
if (why) console.log(`notebooks_test: SKIPPED — ${why}`);

Deno.test({
  name: `every notebook runs on the Deno kernel${why ? ` [skipped: ${why}]` : ""}`,
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const script = new URL("../../scripts/notebooks.ts", import.meta.url).pathname;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.strictEqual(code, 0, new TextDecoder().decode(stderr));
  },
});
