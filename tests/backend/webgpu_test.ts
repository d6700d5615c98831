/**
 * The WebGPU path on whatever adapter exists (Mesa's llvmpipe in CI): convolutions forward and
 * backward must match the cpu backend. Without an adapter the test is skipped, and says why.
 */

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
