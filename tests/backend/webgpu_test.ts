/**
 * The WebGPU path on whatever adapter exists (Mesa's llvmpipe in CI): convolutions forward and
 * backward must match the cpu backend. Without an adapter the test is skipped, and says why.
 */

import assert from "node:assert";
import { probeWebGpu } from "../../lib/backend/select.ts";
import { CONV_CASES, DENSE_CASES } from "./op_cases.ts";
import { compareWithCpu } from "./against_cpu.ts";

const probe = await probeWebGpu();
const why = probe.ok
  ? `adapter: ${probe.description}${probe.software ? " (software)" : ""}`
  : probe.reason;
if (!probe.ok) console.log(`webgpu_test: SKIPPED — ${why}`);

Deno.test({
  name: `webgpu: conv forward and gradients match the cpu backend [${why}]`,
  ignore: !probe.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  // GPU reductions sum in another order; float32 agreement to 1e-4 relative still holds.
  fn: (t) => compareWithCpu(t, "webgpu", [...CONV_CASES.slice(0, 8), ...DENSE_CASES.slice(0, 5)]),
});

Deno.test({
  name:
    `auto: a GPU that passes the self-test is taken; a faulty one falls back to native [${why}]`,
  ignore: !probe.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { initBackend } = await import("../../lib/backend/select.ts");
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    // The adapter as it is (software, treated as hardware): the self-test passes.
    const good = await initBackend("auto", { log, testHooks: { acceptSoftwareAdapter: true } });
    assert.strictEqual(good.name, "webgpu", good.reason);
    assert.match(good.reason, /self-test passed/);
    // A faulty adapter: its read-back is off by 1 % of the largest value → native, one line why.
    const bad = await initBackend("auto", {
      log,
      testHooks: {
        acceptSoftwareAdapter: true,
        corrupt: (v) => v.map((x, i) => (i === 0 ? x + 0.01 * Math.max(1, ...v.map(Math.abs)) : x)),
      },
    });
    assert.strictEqual(bad.name, "native", bad.reason);
    assert.match(bad.reason, /webgpu self-test failed on '.*' \(conv forward differs/);
    assert.strictEqual(lines.length, 2);
    assert.ok(!lines[1].includes("\n"), "the reason is one line");
  },
});
