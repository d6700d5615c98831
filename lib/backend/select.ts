/**
 * Backend selection: `auto | webgpu | native | wasm | cpu`.
 *
 * - `webgpu`: TF.js WebGPU. `auto` takes it only for a hardware adapter (llvmpipe, lavapipe,
 *   SwiftShader and other software rasterisers are skipped: they are slower than the CPU paths).
 * - `native`: the wasm backend with its heavy kernels (convolutions and their gradients, matrix
 *   products) replaced by a native library compiled here with the system C compiler and called
 *   through Deno FFI; multi-threaded. The fast CPU path.
 * - `wasm`: the wasm backend (XNNPACK) alone, with convolution gradients composed from its forward
 *   convolution. Needs no compiler.
 * - `cpu`: TF.js's pure-JavaScript backend; a last resort.
 *
 * `auto` tries webgpu (hardware only, after a self-test against the cpu backend), then native,
 * then wasm, and reports which it took and why.
 * An explicitly requested backend that cannot start is an error, never a silent substitute.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";
import { buildNativeLibrary } from "./native/build.ts";
import { type NativeLib, openNativeLib } from "./native/ffi.ts";
import { installNativeKernels, type KernelOverride } from "./native/kernels.ts";
import { installWasmTrainingKernels } from "./wasm_kernels.ts";
import { installLeanGradients } from "./lean_gradients.ts";
import { UserError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";

/** What a user can ask for. */
export type BackendChoice = "auto" | "webgpu" | "native" | "wasm" | "cpu";
/** Every value `--backend` accepts. */
export const BACKEND_CHOICES: readonly BackendChoice[] = [
  "auto",
  "webgpu",
  "native",
  "wasm",
  "cpu",
];

/** What was started. */
export interface BackendInfo {
  /** the gradlab backend: `native` is TF.js's `wasm` with native kernels */
  name: Exclude<BackendChoice, "auto">;
  /** the TF.js backend name (`tf.getBackend()`) */
  tfBackend: string;
  /** one line: why this backend */
  reason: string;
  /** compute threads used by the kernels */
  threads: number;
  /** the GPU adapter's description (webgpu) or the native library path */
  detail?: string;
}

/** Thrown when a requested backend cannot start; `message` is a one-line explanation. */
export class BackendUnavailableError extends UserError {
  /** The error's name. */
  override name = "BackendUnavailableError";
}

let activeOverride: KernelOverride | null = null;
let nativeLib: NativeLib | null = null;
let wasmPathsSet = false;
let current: BackendInfo | null = null;

/** The backend started last by {@link initBackend}, or null. */
export function currentBackend(): BackendInfo | null {
  return current;
}

/** The loaded native library (after `initBackend("native")`), for benchmarks and tests. */
export function loadedNativeLib(): NativeLib | null {
  return nativeLib;
}

function useLocalWasmBinaries(): void {
  if (wasmPathsSet) return;
  // The .wasm files ship inside the installed npm package; never fetch them from a CDN.
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
  setWasmPaths(pathToFileURL(dir).href + "/");
  wasmPathsSet = true;
}

/** Stops the cpu backend's "running in Node.js, install tfjs-node" banner (it cannot be). */
export function silenceNodeBanner(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i;

/** Describes the WebGPU adapter, or says why there is none. */
export async function probeWebGpu(): Promise<
  { ok: true; description: string; software: boolean } | { ok: false; reason: string }
> {
  const gpu = (navigator as unknown as { gpu?: GPU }).gpu;
  if (!gpu) return { ok: false, reason: "this Deno has no navigator.gpu" };
  // Mesa prints "XDG_RUNTIME_DIR is invalid" on every probe of a headless machine; give it one.
  if (!Deno.env.get("XDG_RUNTIME_DIR") && Deno.build.os === "linux") {
    Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync({ prefix: "gradlab-xdg-" }));
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { ok: false, reason: `requestAdapter failed: ${(e as Error).message}` };
  }
  if (!adapter) return { ok: false, reason: "no WebGPU adapter" };
  const info = adapter.info;
  const description = [info.description, info.vendor, info.device, info.architecture]
    .filter((s) => s && s !== "0").join(" ");
  const fallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    ok: true,
    description,
    software: Boolean(fallback) || SOFTWARE_ADAPTER.test(description),
  };
}

function resetOverrides(): void {
  activeOverride?.uninstall();
  activeOverride = null;
}

async function startWebGpu(): Promise<void> {
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) {
    throw new BackendUnavailableError("the TF.js webgpu backend failed to initialise");
  }
}

/** Test hooks of `auto`'s WebGPU path (a simulated adapter); not for normal use. */
export interface AutoTestHooks {
  /** treat a software adapter as hardware (so `auto` tries it) */
  acceptSoftwareAdapter?: boolean;
  /** alters the GPU's results before the self-test compares them (a faulty adapter) */
  corrupt?: (values: Float32Array) => Float32Array;
}

/**
 * The self-test `auto` runs on a GPU before trusting it: a convolution forward and both its
 * gradients, and the read-back of a 5,000-element tensor (Deno's WebGPU cannot read such a tensor
 * synchronously; the async path must work), compared with TF.js's cpu backend to 1e-3 relative.
 * Throws an Error whose message is one line saying what differed.
 */
export async function gpuSelfTest(hooks: AutoTestHooks = {}): Promise<void> {
  const run = async (): Promise<Float32Array[]> => {
    const rng = new Rng(7);
    const x = tf.tensor4d(rng.normals(2 * 9 * 9 * 3), [2, 9, 9, 3]);
    const f = tf.tensor4d(rng.normals(3 * 3 * 3 * 4), [3, 3, 3, 4]);
    const loss = (a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same").square().sum();
    const [dx, df] = tf.grads(loss)([x, f]);
    const y = tf.conv2d(x, f, 1, "same");
    const big = tf.tidy(() => tf.range(0, 5000, 1, "float32").mul(0.5).sin());
    const out: Float32Array[] = [];
    for (const t of [y, dx, df, big]) out.push((await t.data()) as Float32Array);
    tf.dispose([x, f, dx, df, y, big]);
    return out;
  };
  const names = ["conv forward", "conv input gradient", "conv filter gradient", "large read-back"];
  const gpu = (await run()).map((v) => hooks.corrupt?.(v) ?? v);
  const backend = tf.getBackend();
  await tf.setBackend("cpu");
  const ref = await run();
  await tf.setBackend(backend);
  ref.forEach((r, i) => {
    const g = gpu[i];
    if (g.length !== r.length) throw new Error(`${names[i]}: ${g.length} values, cpu ${r.length}`);
    let scale = 0, worst = 0;
    for (let j = 0; j < r.length; j++) scale = Math.max(scale, Math.abs(r[j]));
    for (let j = 0; j < r.length; j++) worst = Math.max(worst, Math.abs(g[j] - r[j]));
    if (!(worst <= 1e-3 * Math.max(scale, 1))) {
      throw new Error(`${names[i]} differs from the cpu backend by ${worst.toPrecision(3)}`);
    }
  });
}

async function startWasm(): Promise<void> {
  useLocalWasmBinaries();
  if (!(await tf.setBackend("wasm"))) {
    throw new BackendUnavailableError("the TF.js wasm backend failed to initialise");
  }
}

async function startNative(threads: number): Promise<{ lib: NativeLib; threads: number }> {
  const build = await buildNativeLibrary();
  if (!build.ok) throw new BackendUnavailableError(`native kernels unavailable: ${build.reason}`);
  await startWasm();
  if (!nativeLib || nativeLib.path !== build.path) {
    // OpenMP's default is to spin after each parallel region: with two gradlab processes on the
    // same cores (a script and a notebook, two runs) each step then took 8× as long (measured:
    // GUNN 325 ms → 2,745 ms per step). Sleeping threads cost ~10 % alone and nothing shared.
    // OpenMP reads this once, when the library loads; a user's own setting wins.
    if (!Deno.env.get("OMP_WAIT_POLICY") && !Deno.env.get("GOMP_SPINCOUNT")) {
      Deno.env.set("OMP_WAIT_POLICY", "passive");
    }
    nativeLib = openNativeLib(build.path);
  }
  const used = build.openmp ? nativeLib.setThreads(threads) : nativeLib.setThreads(1);
  activeOverride = installNativeKernels(nativeLib);
  return { lib: nativeLib, threads: used };
}

/** Number of compute threads by default: every core, or `$GRADLAB_THREADS`. */
export function defaultThreads(): number {
  const env = Number(Deno.env.get("GRADLAB_THREADS"));
  return Number.isInteger(env) && env > 0 ? env : navigator.hardwareConcurrency || 1;
}

/**
 * Starts a backend and makes it TF.js's current one.
 *
 * @param choice what to start; `auto` picks the fastest that works here
 * @param options.threads compute threads for `native` (default: all cores)
 * @param options.log where the one-line choice is reported (default: stderr); null for silence
 * @throws BackendUnavailableError when an explicitly chosen backend cannot start
 */
export async function initBackend(
  choice: BackendChoice = "auto",
  options: {
    threads?: number;
    log?: ((line: string) => void) | null;
    /** test hooks of `auto` (a simulated adapter) */
    testHooks?: AutoTestHooks;
  } = {},
): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new BackendUnavailableError(
      `unknown backend '${choice}' (choose one of ${BACKEND_CHOICES.join(", ")})`,
    );
  }
  const threads = options.threads ?? defaultThreads();
  resetOverrides();
  silenceNodeBanner();
  installLeanGradients();
  let info: BackendInfo;
  if (choice === "webgpu") {
    const probe = await probeWebGpu();
    if (!probe.ok) throw new BackendUnavailableError(`webgpu unavailable: ${probe.reason}`);
    await startWebGpu();
    info = {
      name: "webgpu",
      tfBackend: "webgpu",
      threads: 1,
      detail: probe.description,
      reason: probe.software
        ? `requested; adapter '${probe.description}' is a software rasteriser (slow)`
        : `requested; adapter '${probe.description}'`,
    };
  } else if (choice === "native") {
    const { lib, threads: used } = await startNative(threads);
    info = {
      name: "native",
      tfBackend: "wasm",
      threads: used,
      detail: lib.path,
      reason: `requested; native kernels (${lib.vectorWidth() * 32}-bit SIMD, ${used} threads)`,
    };
  } else if (choice === "wasm") {
    await startWasm();
    activeOverride = installWasmTrainingKernels();
    info = { name: "wasm", tfBackend: "wasm", threads: 1, reason: "requested" };
  } else if (choice === "cpu") {
    if (!(await tf.setBackend("cpu"))) throw new BackendUnavailableError("cpu backend failed");
    info = {
      name: "cpu",
      tfBackend: "cpu",
      threads: 1,
      reason: "requested (slow: pure JavaScript)",
    };
  } else {
    info = await autoSelect(threads, options.testHooks ?? {});
  }
  current = info;
  const log = options.log === undefined ? (l: string) => console.error(l) : options.log;
  log?.(`backend: ${info.name} — ${info.reason}`);
  return info;
}

/** Starts WebGPU and self-tests it; returns null when it works, else the reason (one line). */
async function webGpuProblem(adapter: string, hooks: AutoTestHooks): Promise<string | null> {
  try {
    await startWebGpu();
  } catch (e) {
    return `webgpu failed to start (${(e as Error).message})`;
  }
  try {
    await gpuSelfTest(hooks);
  } catch (e) {
    return `webgpu self-test failed on '${adapter}' (${(e as Error).message})`;
  }
  return null;
}

async function autoSelect(threads: number, hooks: AutoTestHooks): Promise<BackendInfo> {
  const probe = await probeWebGpu();
  let why: string;
  if (probe.ok && (!probe.software || hooks.acceptSoftwareAdapter)) {
    const problem = await webGpuProblem(probe.description, hooks);
    if (!problem) {
      return {
        name: "webgpu",
        tfBackend: "webgpu",
        threads: 1,
        detail: probe.description,
        reason: `GPU adapter '${probe.description}' (self-test passed)`,
      };
    }
    why = problem;
  } else {
    why = probe.ok
      ? `GPU adapter '${probe.description}' is software, skipped`
      : `no GPU (${probe.reason})`;
  }
  try {
    const { lib, threads: used } = await startNative(threads);
    return {
      name: "native",
      tfBackend: "wasm",
      threads: used,
      detail: lib.path,
      reason: `${why}; CPU with native kernels (${
        lib.vectorWidth() * 32
      }-bit SIMD, ${used} threads)`,
    };
  } catch (e) {
    why += `; ${(e as Error).message}`;
  }
  try {
    await startWasm();
    activeOverride = installWasmTrainingKernels();
    return { name: "wasm", tfBackend: "wasm", threads: 1, reason: `${why}; using wasm (XNNPACK)` };
  } catch (e) {
    why += `; wasm failed (${(e as Error).message})`;
  }
  await tf.setBackend("cpu");
  return { name: "cpu", tfBackend: "cpu", threads: 1, reason: `${why}; using pure-JS cpu (slow)` };
}
