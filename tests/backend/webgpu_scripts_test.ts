/**
 * Every paper script's smoke preset runs end to end on WebGPU (Mesa's llvmpipe in CI) — no
 * synchronous read-back crash — and gives the numbers of the native backend:
 * - accuracies within 0.02 (one example of the smoke test sets),
 * - losses, angles and means within 1e-3 relative (GPU reductions sum in another order),
 * - timings are not compared; neither are the last-layer offsets and grid agreement, which at
 *   smoke scale (training loss ≈ ln 2, last-layer weights ≈ 0) divide by a near-zero norm.
 * Each script runs as a user runs it: a subprocess, its exit code and its summary.json.
 * Without an adapter the test is skipped, and says why.
 */

import assert from "node:assert";
import { join } from "node:path";
import { probeWebGpu } from "../../lib/backend/select.ts";

const probe = await probeWebGpu();
const why = probe.ok
  ? `adapter: ${probe.description}${probe.software ? " (software)" : ""}`
  : probe.reason;

const NOT_COMPARED = /second|per_s|perSecond|offset_|agreement/i;

async function runSmoke(script: string, backend: string): Promise<unknown> {
  const out = await Deno.makeTempDir();
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `scripts/${script}.ts`,
      "--preset=smoke",
      `--backend=${backend}`,
      `--out=${out}`,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  const err = new TextDecoder().decode(r.stderr);
  assert.strictEqual(r.code, 0, `${script} on ${backend} exited ${r.code}:\n${err.slice(-2000)}`);
  const [run] = [...Deno.readDirSync(join(out, script))].map((e) => e.name);
  const summary = JSON.parse(await Deno.readTextFile(join(out, script, run, "summary.json")));
  await Deno.remove(out, { recursive: true });
  return summary;
}

/** Compares the numeric leaves of two summaries; returns the differences found. */
function compare(a: unknown, b: unknown, path = ""): string[] {
  if (typeof a === "number" && typeof b === "number") {
    const key = path.split(".").at(-1) ?? "";
    if (NOT_COMPARED.test(key)) return [];
    const tol = /acc|accuracy/i.test(path) ? 0.02 : 1e-3 * Math.max(1, Math.abs(b));
    return Math.abs(a - b) <= tol || (Number.isNaN(a) && Number.isNaN(b))
      ? []
      : [`${path}: webgpu ${a}, native ${b}`];
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    return Object.keys(b).flatMap((k) =>
      compare((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)
    );
  }
  return [];
}

for (const script of ["gradnet", "lastlayer", "supernet", "gunn"]) {
  Deno.test({
    name: `webgpu: ${script} --preset=smoke runs end to end and matches native [${why}]`,
    ignore: !probe.ok,
    fn: async () => {
      const [gpu, cpu] = [await runSmoke(script, "webgpu"), await runSmoke(script, "native")];
      const diffs = compare(gpu, cpu);
      assert.deepStrictEqual(diffs, [], diffs.join("\n"));
    },
  });
}

Deno.test("no library or script code reads a tensor synchronously (WebGPU in Deno cannot)", async () => {
  const offenders: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (p.endsWith(".ts")) {
        (await Deno.readTextFile(p)).split("\n").forEach((line, i) => {
          const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
          if (/\.(dataSync|arraySync|bufferSync)\(/.test(code)) offenders.push(`${p}:${i + 1}`);
        });
      }
    }
  };
  await walk("lib");
  await walk("scripts");
  assert.deepStrictEqual(offenders, [], `synchronous reads:\n${offenders.join("\n")}`);
});
