/**
 * A file of gradient rows: `GLGR`, a uint32 header length, a JSON header (row length, layout,
 * normalisation, anything else), zero padding to a 4-byte boundary, then float32 rows appended
 * batch by batch. The row count follows from the file size. Written to a temporary file and
 * renamed into place on close; read back in chunks, so memory stays bounded whatever the rows.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { GradientLayout } from "./per_example.ts";

const MAGIC = new TextEncoder().encode("GLGR");

/** What the header holds. */
export interface GradientFileHeader {
  rowLength: number;
  layout?: GradientLayout;
  normalization?: string;
  [extra: string]: unknown;
}

/** Appends gradient rows to a file. */
export class GradientWriter {
  private rows = 0;
  private closed = false;
  private constructor(
    private readonly file: Deno.FsFile,
    private readonly tmp: string,
    readonly path: string,
    readonly header: GradientFileHeader,
  ) {}

  /** Creates the file (under a temporary name until {@link close}). */
  static async create(path: string, header: GradientFileHeader): Promise<GradientWriter> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.tmp-${crypto.randomUUID()}`);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    const json = new TextEncoder().encode(JSON.stringify(header));
    const start = Math.ceil((8 + json.length) / 4) * 4;
    const head = new Uint8Array(start);
    head.set(MAGIC, 0);
    new DataView(head.buffer).setUint32(4, json.length, true);
    head.set(json, 8);
    await writeAll(file, head);
    return new GradientWriter(file, tmp, path, header);
  }

  /** Appends rows ([count, rowLength] row-major). */
  async append(rows: Float32Array): Promise<void> {
    if (this.closed) throw new Error("GradientWriter: append after close");
    if (rows.length % this.header.rowLength !== 0) {
      throw new RangeError(`${rows.length} values are not whole rows of ${this.header.rowLength}`);
    }
    await writeAll(this.file, new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    this.rows += rows.length / this.header.rowLength;
  }

  /** Rows written so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Flushes, closes and moves the file into place. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
    await Deno.rename(this.tmp, this.path);
  }

  /** Closes and deletes the partial file. */
  async abort(): Promise<void> {
    if (!this.closed) this.file.close();
    this.closed = true;
    await Deno.remove(this.tmp).catch(() => {});
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await f.write(bytes.subarray(off));
}

/** Reads a gradient file's header and rows in chunks. */
export class GradientReader {
  private constructor(
    private readonly file: Deno.FsFile,
    readonly header: GradientFileHeader,
    private readonly dataStart: number,
    readonly rowCount: number,
  ) {}

  static async open(path: string): Promise<GradientReader> {
    const file = await Deno.open(path);
    const head = new Uint8Array(8);
    await readExactly(file, head, 0);
    if (MAGIC.some((m, i) => head[i] !== m)) {
      file.close();
      throw new Error(`${path}: not a gradient file (bad magic)`);
    }
    const hlen = new DataView(head.buffer).getUint32(4, true);
    const json = new Uint8Array(hlen);
    await readExactly(file, json, 8);
    const header = JSON.parse(new TextDecoder().decode(json)) as GradientFileHeader;
    const dataStart = Math.ceil((8 + hlen) / 4) * 4;
    const size = (await file.stat()).size;
    const rowBytes = header.rowLength * 4;
    if ((size - dataStart) % rowBytes !== 0) {
      file.close();
      throw new Error(`${path}: truncated (${size - dataStart} data bytes, rows of ${rowBytes})`);
    }
    return new GradientReader(file, header, dataStart, (size - dataStart) / rowBytes);
  }

  /** Rows [start, start + count). */
  async read(start: number, count: number): Promise<Float32Array> {
    const n = Math.max(0, Math.min(count, this.rowCount - start));
    const out = new Float32Array(n * this.header.rowLength);
    await readExactly(
      this.file,
      new Uint8Array(out.buffer),
      this.dataStart + start * this.header.rowLength * 4,
    );
    return out;
  }

  /** Every row, `chunk` rows at a time. */
  async *chunks(chunk: number): AsyncGenerator<{ start: number; rows: Float32Array }> {
    for (let s = 0; s < this.rowCount; s += chunk) {
      yield { start: s, rows: await this.read(s, chunk) };
    }
  }

  close(): void {
    this.file.close();
  }
}

async function readExactly(f: Deno.FsFile, into: Uint8Array, position: number): Promise<void> {
  await f.seek(position, Deno.SeekMode.Start);
  let off = 0;
  while (off < into.length) {
    const n = await f.read(into.subarray(off));
    if (n === null) throw new Error("unexpected end of gradient file");
    off += n;
  }
}
