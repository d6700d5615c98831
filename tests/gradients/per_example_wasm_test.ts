/** The per-example gradient tests again, on the pure wasm backend (its own im2col and slices). */

import assert from "node:assert";

Deno.test({
  name: "per-example gradient tests pass on the wasm backend",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const file = new URL("./per_example_test.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", file],
      env: { GRADLAB_TEST_BACKEND: "wasm", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.strictEqual(code, 0, out);
    assert.match(out, /ok \| 10 passed/);
  },
});
