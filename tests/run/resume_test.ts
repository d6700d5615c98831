/**
 * kill -9 in the middle of a run, then --resume: the run must end with exactly the metrics and
 * weights of an uninterrupted run with the same seed on the same backend.
 */

import assert from "node:assert";
import { join } from "node:path";
import { decodeBundle } from "../../lib/run/bundle.ts";

const FIXTURE = new URL("../fixtures/train_small.ts", import.meta.url).pathname;

async function runFixture(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FIXTURE, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.strictEqual(code, 0, new TextDecoder().decode(stderr));
}

async function summary(dir: string) {
  const s = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
  return {
    history: s.history.map((h: Record<string, number>) => ({ ...h, seconds: 0 })),
    weights: s.weights,
  };
}

async function checkpointStep(dir: string): Promise<number> {
  try {
    const meta = decodeBundle<{ state: { globalStep: number } }>(
      await Deno.readFile(join(dir, "checkpoint.bin")),
    ).meta;
    return meta.state.globalStep;
  } catch {
    return 0;
  }
}

Deno.test({
  name: "a run killed with SIGKILL and resumed ends exactly like an uninterrupted run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await Deno.makeTempDir();
    await runFixture([`--out=${root}`, "--run-id=whole"]);
    const whole = await summary(join(root, "fixture", "whole"));

    const dir = join(root, "fixture", "killed");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", FIXTURE, `--out=${root}`, "--run-id=killed", "--step-delay-ms=150"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 60_000;
    while ((await checkpointStep(dir)) < 7) {
      assert.ok(Date.now() < deadline, "no checkpoint past step 7 within 60 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    const status = await child.status;
    assert.notStrictEqual(status.code, 0, "the run finished before it could be killed");
    await assert.rejects(Deno.stat(join(dir, "completed")));

    await runFixture([`--resume=${dir}`]);
    assert.deepStrictEqual(await summary(dir), whole);
    const csv = (await Deno.readTextFile(join(dir, "metrics.csv"))).trim().split("\n");
    assert.strictEqual(csv.length, 1 + whole.history.length);
  },
});

Deno.test({
  name: "--resume refuses a completed run and a folder that is not a run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await Deno.makeTempDir();
    await runFixture([`--out=${root}`, "--run-id=done", "--epochs=1"]);
    for (
      const [dir, re] of [[join(root, "fixture", "done"), /already completed/], [
        root,
        /not a run folder/,
      ]] as const
    ) {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", FIXTURE, `--resume=${dir}`],
        stdout: "null",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(stderr);
      assert.strictEqual(code, 2);
      assert.match(err, re);
      assert.ok(!err.includes("    at "), "stack trace printed");
    }
  },
});
