/**
 * Downloads a dataset from its home page, verifies the published MD5, and extracts it atomically
 * into the download cache (a temporary folder renamed into place, so an interrupted download
 * leaves nothing half-written). Without network the error says what is expected, where, and how
 * to get it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { DataError } from "./dataset.ts";
import { downloadRoot } from "./locate.ts";
import { Progress } from "../util/progress.ts";

/** What to fetch and what must come out of it. */
export interface DownloadSpec {
  /** human name, e.g. "CIFAR-10" */
  name: string;
  /** folder created under the download root */
  folder: string;
  /** a .tar.gz archive ... */
  url?: string;
  md5?: string;
  /** path prefix of the wanted members inside the archive */
  archiveMember?: string;
  /** ... or individual files: url, md5, and the name to save under */
  fileDownloads?: { url: string; md5: string; file: string }[];
  /** files to keep */
  files: string[];
  /** files that must exist for the dataset to count as present */
  required: string[];
  /** folders that were searched (for the error message) */
  searched: string[];
  offline?: boolean;
}

function missingMessage(spec: DownloadSpec, reason: string): string {
  const source = spec.url ?? spec.fileDownloads?.map((d) => d.url).join(", ");
  return `${spec.name} not found (expected ${spec.required.join(", ")} in one of: ` +
    `${spec.searched.join(", ")}); ${reason}. Get it from ${source}, extract it, and pass ` +
    `--data-dir=FOLDER (or set GRADLAB_DATA)`;
}

/** Streams `url` to `dest`, checking the MD5; throws DataError on any failure. */
export async function downloadFile(
  url: string,
  dest: string,
  md5: string,
  label: string,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new DataError(`download of ${url} failed: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!res.ok || !res.body) {
    throw new DataError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`);
  }
  const total = Number(res.headers.get("content-length")) || 0;
  const bar = new Progress(`download ${label}`, total || 1, { unit: "B" });
  const hash = createHash("md5");
  const tmp = `${dest}.part`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    for await (const chunk of res.body) {
      hash.update(chunk);
      await file.write(chunk);
      bar.tick(chunk.length);
    }
  } finally {
    file.close();
  }
  bar.finish();
  const got = hash.digest("hex");
  if (got !== md5) {
    await Deno.remove(tmp).catch(() => {});
    throw new DataError(`download of ${url} is corrupt: MD5 ${got}, expected ${md5}`);
  }
  await Deno.rename(tmp, dest);
}

/** Reads a gzip file fully into memory. */
export async function gunzipFile(path: string): Promise<Uint8Array> {
  const f = await Deno.open(path);
  const buf = await new Response(f.readable.pipeThrough(new DecompressionStream("gzip")))
    .arrayBuffer();
  return new Uint8Array(buf);
}

function octal(b: Uint8Array, off: number, len: number): number {
  const s = new TextDecoder().decode(b.subarray(off, off + len)).replace(/\0.*$/, "").trim();
  return s ? parseInt(s, 8) : 0;
}

function cstring(b: Uint8Array, off: number, len: number): string {
  const end = b.subarray(off, off + len).indexOf(0);
  return new TextDecoder().decode(b.subarray(off, end < 0 ? off + len : off + end));
}

/** Regular files of a (ustar/pax) tar image, by path. */
export function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let off = 0;
  let paxPath: string | null = null;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((v) => v === 0)) break;
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = cstring(h, 345, 155);
    let name = cstring(h, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    const body = tar.subarray(off + 512, off + 512 + size);
    if (body.length < size) throw new DataError(`archive truncated inside ${name}`);
    if (type === "x") {
      const m = new TextDecoder().decode(body).match(/\d+ path=([^\n]*)\n/);
      paxPath = m ? m[1] : null;
    } else if (type === "0" || type === "\0") {
      files.set(paxPath ?? name, body);
      paxPath = null;
    } else {
      paxPath = null;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * Downloads and extracts a dataset into `<download root>/<folder>`; returns that folder.
 * @throws DataError with instructions when offline, unreachable, or corrupt
 */
export async function ensureDownloaded(spec: DownloadSpec): Promise<string> {
  if (spec.offline) throw new DataError(missingMessage(spec, "downloads are disabled"));
  const root = downloadRoot();
  const target = join(root, spec.folder);
  const work = join(root, `.tmp-${spec.folder}-${crypto.randomUUID()}`);
  await Deno.mkdir(work, { recursive: true });
  try {
    if (spec.url) {
      const archive = join(work, "archive.tar.gz");
      await downloadFile(spec.url, archive, spec.md5!, spec.name);
      const members = untar(await gunzipFile(archive));
      for (const f of spec.files) {
        const body = members.get(`${spec.archiveMember ?? ""}${f}`);
        if (body) await Deno.writeFile(join(work, f), body);
        else if (spec.required.includes(f)) throw new DataError(`${spec.url} lacks ${f}`);
      }
      await Deno.remove(archive);
    } else {
      for (const d of spec.fileDownloads ?? []) {
        await downloadFile(d.url, join(work, d.file), d.md5, `${spec.name} ${d.file}`);
      }
    }
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(work, target);
    return target;
  } catch (e) {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    if (e instanceof DataError) throw new DataError(missingMessage(spec, e.message));
    throw e;
  }
}
