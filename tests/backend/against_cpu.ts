/** Runs op cases on the `cpu` reference backend and on a target backend, and compares them. */

import * as tf from "@tensorflow/tfjs";
import assert from "node:assert";
import { type BackendChoice, initBackend, silenceNodeBanner } from "../../lib/backend/select.ts";
import { type OpCase, relativeError, runCase } from "./op_cases.ts";

export const TOLERANCE = 1e-4;

/** Reference outputs of `cases` on the cpu backend. */
export async function cpuReferences(cases: OpCase[]) {
  await tf.setBackend("cpu");
  silenceNodeBanner();
  const refs = [];
  for (let i = 0; i < cases.length; i++) refs.push(await runCase(cases[i], 1000 + i));
  return refs;
}

/** Registers one Deno.test step per case comparing `target` with the cpu reference. */
export async function compareWithCpu(
  t: Deno.TestContext,
  target: BackendChoice,
  cases: OpCase[],
  tolerance = TOLERANCE,
): Promise<void> {
  const refs = await cpuReferences(cases);
  await initBackend(target, { log: null });
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    await t.step(c.name, async () => {
      const got = await runCase(c, 1000 + i);
      const want = refs[i];
      const errY = relativeError(got.y, want.y);
      assert(errY <= tolerance, `${c.name}: forward relative error ${errY.toExponential(2)}`);
      assert.equal(got.grads.length, want.grads.length);
      got.grads.forEach((g, j) => {
        const e = relativeError(g, want.grads[j]);
        assert(
          e <= tolerance,
          `${c.name}: gradient of input ${j} relative error ${e.toExponential(2)}`,
        );
      });
    });
  }
}
