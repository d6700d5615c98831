import assert from "node:assert";
import { loadedNativeLib } from "../../lib/backend/select.ts";
import { ALL_CASES } from "./op_cases.ts";
import { compareWithCpu } from "./against_cpu.ts";

Deno.test({
  name: "native backend: every op the papers need matches the cpu backend (forward and gradients)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await compareWithCpu(t, "native", ALL_CASES);
    // The comparison means something only if the native code did the work.
    const calls = loadedNativeLib()!.calls;
    for (
      const k of [
        "conv2d",
        "conv2dBackpropInput",
        "conv2dBackpropFilter",
        "matmul",
        "maxPoolGrad",
        "avgPoolGrad",
        "sumRows",
        "sumCols",
        "copyBlock",
        "slice",
      ]
    ) {
      assert((calls[k] ?? 0) > 0, `native ${k} never ran`);
    }
  },
});
