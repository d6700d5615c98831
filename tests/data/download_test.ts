/**
 * Dataset download end to end against a local HTTP server: fetch with the published checksum,
 * extraction of the wanted archive members into the cache (atomically), and a clear error for a
 * corrupt archive or an unreachable host.
 */

import assert from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ensureDownloaded, untar } from "../../lib/data/download.ts";
import { DataError } from "../../lib/data/dataset.ts";

/** A ustar archive of the given files (what tar would write). */
function tarOf(files: Record<string, Uint8Array>): Uint8Array<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, body] of Object.entries(files)) {
    const h = new Uint8Array(512);
    h.set(enc.encode(name), 0);
    h.set(enc.encode("0000644\0"), 100);
    h.set(enc.encode(body.length.toString(8).padStart(11, "0") + "\0"), 124);
    h.set(enc.encode("        "), 148); // checksum field counts as spaces
    h[156] = "0".charCodeAt(0);
    h.set(enc.encode("ustar\0"), 257);
    const sum = h.reduce((a, b) => a + b, 0);
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    blocks.push(h, body, new Uint8Array((512 - (body.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const s = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("untar() reads the members of a ustar archive", () => {
  const t = untar(
    tarOf({ "d/a.bin": new Uint8Array([1, 2, 3]), "d/b.txt": new TextEncoder().encode("hi") }),
  );
  assert.deepStrictEqual([...t.keys()], ["d/a.bin", "d/b.txt"]);
  assert.deepStrictEqual(Array.from(t.get("d/a.bin")!), [1, 2, 3]);
});

Deno.test({
  name:
    "ensureDownloaded() fetches, checks the MD5, extracts into the cache, and rejects corruption",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const archive = await gzip(tarOf({
      "set/train.bin": new Uint8Array(3000).fill(7),
      "set/test.bin": new Uint8Array(10).fill(9),
      "set/other.txt": new TextEncoder().encode("ignored"),
    }));
    const md5 = createHash("md5").update(archive).digest("hex");
    const ac = new AbortController();
    const server = Deno.serve(
      { port: 0, signal: ac.signal, onListen() {} },
      (req) =>
        new URL(req.url).pathname === "/set.tar.gz"
          ? new Response(archive, { headers: { "content-length": String(archive.length) } })
          : new Response("no", { status: 404 }),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const root = await Deno.makeTempDir();
    const old = Deno.env.get("GRADLAB_DATA");
    Deno.env.set("GRADLAB_DATA", root);
    try {
      const spec = {
        name: "TestSet",
        folder: "testset",
        url: `${base}/set.tar.gz`,
        md5,
        archiveMember: "set/",
        files: ["train.bin", "test.bin"],
        required: ["train.bin", "test.bin"],
        searched: ["/nowhere"],
      };
      const dir = await ensureDownloaded(spec);
      assert.strictEqual(dir, join(root, "testset"));
      assert.deepStrictEqual((await Deno.readFile(join(dir, "train.bin"))).length, 3000);
      assert.deepStrictEqual([...Deno.readDirSync(root)].map((e) => e.name), ["testset"]);
      await assert.rejects(
        ensureDownloaded({ ...spec, folder: "bad", md5: "0".repeat(32) }),
        (e: Error) => {
          assert.ok(e instanceof DataError);
          assert.match(
            e.message,
            /TestSet not found .* is corrupt: MD5 [0-9a-f]{32}, expected 0{32}/,
          );
          return true;
        },
      );
      await assert.rejects(
        ensureDownloaded({ ...spec, folder: "gone", url: `${base}/missing.tar.gz` }),
        /HTTP 404/,
      );
      // nothing half-written is left behind
      assert.deepStrictEqual([...Deno.readDirSync(root)].map((e) => e.name), ["testset"]);
    } finally {
      ac.abort();
      await server.finished;
      if (old === undefined) Deno.env.delete("GRADLAB_DATA");
      else Deno.env.set("GRADLAB_DATA", old);
    }
  },
});
