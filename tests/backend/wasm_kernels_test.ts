import assert from "node:assert";
import { composedKernelCalls } from "../../lib/backend/wasm_kernels.ts";
import { ALL_CASES } from "./op_cases.ts";
import { compareWithCpu } from "./against_cpu.ts";

Deno.test({
  name: "wasm backend (composed conv gradients): every op matches the cpu backend",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await compareWithCpu(t, "wasm", ALL_CASES);
    for (const k of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad"]) {
      assert((composedKernelCalls[k] ?? 0) > 0, `composed ${k} never ran`);
    }
  },
});
