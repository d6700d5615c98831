/**
 * Deno runs `--parallel` test modules and workers as threads of one process, and they share the
 * one native library: concurrent callers must not corrupt each other's results (the library
 * serialises its entry points). Three workers run the same kernels at once; every repetition
 * must equal the worker's first result bit for bit.
 */
import assert from "node:assert/strict";

function runWorker(seed: number, reps: number): Promise<{ differing: number; checksum: number }> {
  const w = new Worker(new URL("./concurrent_worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    w.postMessage({ seed, reps });
  });
}

Deno.test("native kernels called from three runtimes at once give each its exact results", async () => {
  const results = await Promise.all([1, 2, 3].map((seed) => runWorker(seed, 25)));
  for (const [i, r] of results.entries()) {
    assert.equal(r.differing, 0, `worker ${i + 1}: ${r.differing} of 25 repetitions differed`);
    assert.ok(Number.isFinite(r.checksum));
  }
  // the workers computed different things (a test that cannot mix them up would prove nothing)
  assert.notEqual(results[0].checksum, results[1].checksum);
});
