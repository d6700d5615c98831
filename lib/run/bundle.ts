/**
 * A single-file container for named float32 tensors plus JSON metadata, used for checkpoints and
 * snapshots: `GLB1`, a uint32 header length, the JSON header, zero padding to 4 bytes, then the
 * tensors' values back to back (little-endian). One file can be replaced atomically by rename.
 * The header carries a checksum of the values (files written before it existed have none), so a
 * corrupted file is refused instead of resuming with wrong weights.
 *
 * @module
 */

/** A named tensor on the host. */
export interface NamedArray {
  /** array name */
  name: string;
  /** its shape */
  shape: number[];
  /** its values, row-major */
  values: Float32Array;
}

const MAGIC = [0x47, 0x4c, 0x42, 0x31]; // "GLB1"

/** A 32-bit checksum of 4-byte words (FNV-1a over words: fast enough for 100 MB files). */
export function wordChecksum(bytes: Uint8Array): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  for (let i = words.length * 4; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** Encodes metadata and tensors into one byte array. */
export function encodeBundle(meta: unknown, tensors: NamedArray[]): Uint8Array {
  let offset = 0;
  const entries = tensors.map((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.values.length) {
      throw new RangeError(
        `bundle: ${t.name} has ${t.values.length} values for shape [${t.shape}]`,
      );
    }
    const e = { name: t.name, shape: t.shape, offset };
    offset += size;
    return e;
  });
  const data = new Float32Array(offset);
  tensors.forEach((t, i) => data.set(t.values, entries[i].offset));
  const checksum = wordChecksum(new Uint8Array(data.buffer));
  const header = new TextEncoder().encode(JSON.stringify({ meta, tensors: entries, checksum }));
  const headerPadded = Math.ceil((8 + header.length) / 4) * 4;
  const out = new Uint8Array(headerPadded + offset * 4);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, header.length, true);
  out.set(header, 8);
  out.set(new Uint8Array(data.buffer), headerPadded);
  return out;
}

/** Decodes {@link encodeBundle}'s output. Throws on a corrupt or truncated file. */
export function decodeBundle<M = unknown>(
  bytes: Uint8Array,
): { meta: M; tensors: Map<string, NamedArray> } {
  if (bytes.length < 8 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error("not a gradlab bundle (bad magic)");
  }
  const hlen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  if (8 + hlen > bytes.length) throw new Error("bundle header truncated");
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch {
    throw new Error("bundle header unreadable (corrupt)");
  }
  const { meta, tensors, checksum } = header;
  const start = Math.ceil((8 + hlen) / 4) * 4;
  const total = (bytes.length - start) / 4;
  const copy = bytes.slice(start); // aligned copy
  const data = new Float32Array(copy.buffer, 0, Math.floor(total));
  const map = new Map<string, NamedArray>();
  for (const e of tensors as { name: string; shape: number[]; offset: number }[]) {
    const size = e.shape.reduce((a: number, b: number) => a * b, 1);
    if (e.offset + size > data.length) throw new Error(`bundle truncated inside ${e.name}`);
    map.set(e.name, {
      name: e.name,
      shape: e.shape,
      values: data.subarray(e.offset, e.offset + size),
    });
  }
  if (typeof checksum === "number" && wordChecksum(copy) !== checksum) {
    throw new Error("bundle checksum mismatch (the file is corrupt)");
  }
  return { meta: meta as M, tensors: map };
}
