/**
 * The IDX format of MNIST and Fashion-MNIST: a big-endian header — two zero bytes, a type code
 * (0x08 = unsigned byte), the number of dimensions, then one uint32 per dimension — followed by
 * the values.
 *
 * @module
 */

import { DataError } from "./dataset.ts";

/** A parsed IDX file. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses an unsigned-byte IDX file.
 *
 * @param bytes the whole file
 * @param expectDims the number of dimensions it must have (1 for labels, 3 for images)
 * @param source file name for error messages
 * @throws DataError on a wrong magic number, type, rank, or a length that does not match
 */
export function parseIdx(bytes: Uint8Array, expectDims: number, source: string): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(`${source}: too short for an IDX file (${bytes.length} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = 0x800 | expectDims;
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || bytes[3] !== expectDims) {
    throw new DataError(
      `${source}: wrong magic number 0x${magic.toString(16).padStart(8, "0")} ` +
        `(expected 0x${
          expected.toString(16).padStart(8, "0")
        }: unsigned bytes, ${expectDims} dims)`,
    );
  }
  const header = 4 + 4 * expectDims;
  if (bytes.length < header) throw new DataError(`${source}: truncated IDX header`);
  const dims = Array.from({ length: expectDims }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + count) {
    throw new DataError(
      `${source}: ${bytes.length - header} data bytes, but the header's dimensions ` +
        `${dims.join("×")} need ${count} (truncated or corrupt file)`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/** Encodes an unsigned-byte IDX file (used to make test fixtures). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, header);
  return out;
}
