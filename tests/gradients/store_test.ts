import assert from "node:assert";
import { join } from "node:path";
import { GradientReader, GradientWriter } from "../../lib/gradients/store.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("GradientWriter/Reader: rows appended in batches read back exactly, in chunks", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "g.bin");
  const P = 7;
  const w = await GradientWriter.create(path, {
    rowLength: P,
    normalization: "scale_power",
    note: "x",
  });
  const all = new Rng(1).normals(23 * P);
  await w.append(all.subarray(0, 5 * P));
  await w.append(all.subarray(5 * P, 20 * P));
  await w.append(all.subarray(20 * P));
  await assert.rejects(Deno.stat(path)); // not visible until closed
  await w.close();
  const r = await GradientReader.open(path);
  assert.strictEqual(r.rowCount, 23);
  assert.deepStrictEqual({ ...r.header }, {
    rowLength: P,
    normalization: "scale_power",
    note: "x",
  });
  const back: number[] = [];
  for await (const c of r.chunks(4)) back.push(...c.rows);
  assert.deepStrictEqual(Float32Array.from(back), all);
  assert.deepStrictEqual(await r.read(21, 5), all.subarray(21 * P));
  r.close();
});

Deno.test("GradientReader rejects a truncated file and a foreign one", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "g.bin");
  const w = await GradientWriter.create(path, { rowLength: 3 });
  await w.append(new Float32Array(6));
  await w.close();
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 4));
  await assert.rejects(GradientReader.open(path), /truncated/);
  await Deno.writeFile(path, new TextEncoder().encode("not a gradient file"));
  await assert.rejects(GradientReader.open(path), /bad magic/);
});
