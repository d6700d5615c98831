import assert from "node:assert";
import { join } from "node:path";
import { decodeBundle, encodeBundle } from "../../lib/run/bundle.ts";
import { RunDir, toCsv } from "../../lib/run/run_dir.ts";
import { writeFileAtomic } from "../../lib/util/atomic.ts";

Deno.test("encodeBundle()/decodeBundle() round-trip metadata and tensors exactly", () => {
  const t = [
    { name: "a", shape: [2, 3], values: new Float32Array([1, 2, 3, 4, 5, 6.5]) },
    { name: "b", shape: [1], values: new Float32Array([-0]) },
    { name: "c", shape: [0], values: new Float32Array([]) },
  ];
  const back = decodeBundle<{ x: number }>(encodeBundle({ x: 7 }, t));
  assert.deepStrictEqual(back.meta, { x: 7 });
  for (const e of t) assert.deepStrictEqual(back.tensors.get(e.name)!.values, e.values);
});

Deno.test("decodeBundle() rejects a truncated or foreign file", () => {
  const bytes = encodeBundle({}, [{ name: "a", shape: [100], values: new Float32Array(100) }]);
  assert.throws(() => decodeBundle(bytes.subarray(0, bytes.length - 40)), /truncated/);
  assert.throws(() => decodeBundle(new TextEncoder().encode("hello world")), /bad magic/);
});

Deno.test("writeFileAtomic() replaces a file and leaves no temporary behind", async () => {
  const dir = await Deno.makeTempDir();
  const p = join(dir, "sub", "x.json");
  await writeFileAtomic(p, "one");
  await writeFileAtomic(p, "two");
  assert.strictEqual(await Deno.readTextFile(p), "two");
  assert.deepStrictEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["x.json"]);
});

Deno.test("RunDir writes config, metrics CSV, summary and the completed marker", async () => {
  const out = await Deno.makeTempDir();
  const run = await RunDir.create({ out, paper: "demo", config: { seed: 3 }, runId: "r1" });
  assert.deepStrictEqual(
    JSON.parse(await Deno.readTextFile(join(out, "demo", "r1", "config.json"))),
    { paper: "demo", seed: 3 },
  );
  await run.writeMetrics([{ epoch: 1, loss: 0.5 }, { epoch: 2, loss: 0.25, acc: 0.9 }]);
  assert.strictEqual(
    await Deno.readTextFile(run.file("metrics.csv")),
    "epoch,loss,acc\n1,0.5,\n2,0.25,0.9\n",
  );
  assert.strictEqual(await run.isCompleted(), false);
  await run.complete({ ok: true });
  assert.strictEqual(await run.isCompleted(), true);
  assert.strictEqual(toCsv([{ a: 'x,"y"' }]), 'a\n"x,""y"""\n');
  // NaN and null write the same empty cell (a checkpoint's JSON turns NaN into null)
  assert.strictEqual(toCsv([{ a: NaN, b: 1 }]), toCsv([{ a: null, b: 1 }]));
  assert.strictEqual(toCsv([{ a: NaN, b: 1 }]), "a,b\n,1\n");
});

Deno.test("a bundle with one changed value is refused (checksum); a checkpoint falls back to .prev", async () => {
  const { RunDir } = await import("../../lib/run/run_dir.ts");
  const t = (v: number) => [{ name: "w", shape: [3], values: Float32Array.from([v, 2, 3]) }];
  const bytes = encodeBundle({ step: 1 }, t(1));
  const bad = bytes.slice();
  bad[bad.length - 2] ^= 0x40; // one bit of the last value
  assert.throws(() => decodeBundle(bad), /checksum mismatch/);
  const run = await RunDir.create({ out: await Deno.makeTempDir(), paper: "t", config: {} });
  await run.saveCheckpoint({ step: 1 }, t(1), "ck.bin");
  await run.saveCheckpoint({ step: 2 }, t(2), "ck.bin"); // step 1 is kept as ck.bin.prev
  assert.deepStrictEqual((await run.loadCheckpoint<{ step: number }>("ck.bin"))!.meta, { step: 2 });
  const file = run.file("ck.bin");
  const raw = await Deno.readFile(file);
  raw[raw.length - 2] ^= 0x40;
  await Deno.writeFile(file, raw);
  const back = await run.loadCheckpoint<{ step: number }>("ck.bin");
  assert.deepStrictEqual(back!.meta, { step: 1 }, "the good predecessor");
  // both corrupt: an error that names the file
  const prev = await Deno.readFile(`${file}.prev`);
  prev[prev.length - 2] ^= 0x40;
  await Deno.writeFile(`${file}.prev`, prev);
  await assert.rejects(run.loadCheckpoint("ck.bin"), /ck\.bin: bundle checksum mismatch/);
});
