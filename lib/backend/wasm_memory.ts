/**
 * Access to the TF.js wasm backend's tensor memory, for kernels that run outside the wasm module
 * (native FFI kernels) but read and write its tensors in place.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** The parts of `BackendWasm` that kernels written here use. */
export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number; shape: number[]; dtype: string } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
}

/** A Float32Array view of a wasm tensor's data (no copy). Take views after every allocation: a
 * `makeOutput` can grow, and so move, the wasm heap. */
export function f32View(backend: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  const size = tf.util.sizeFromShape(t.shape);
  if (size === 0) return new Float32Array(0);
  const { memoryOffset } = backend.dataIdMap.get(t.dataId);
  // TF.js does not check its wasm malloc: offset 0 means the 4 GB wasm heap is exhausted.
  if (!memoryOffset) throw new Error("wasm heap exhausted (4 GB limit): use smaller batches");
  return new Float32Array(backend.wasm.HEAPU8.buffer, memoryOffset, size);
}
