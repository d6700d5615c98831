/**
 * Compiles `kernels.c` into a shared library with the machine's C compiler, once per
 * (source, compiler, CPU), and caches it under `data/cache/native/` (or `$GRADLAB_CACHE/native`).
 *
 * The library is built with `-march=native`, so a cached build is keyed by the CPU model and
 * flags too: a checkout copied to another machine rebuilds instead of crashing on an illegal
 * instruction.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir } from "../../util/paths.ts";
import { writeFileAtomic } from "../../util/atomic.ts";

/** Result of {@link buildNativeLibrary}: where the library is, or why there is none. */
export type NativeBuild =
  | { ok: true; path: string; openmp: boolean; cached: boolean }
  | { ok: false; reason: string };

const SOURCE_URL = new URL("./kernels.c", import.meta.url);

function libSuffix(): string {
  return Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function runCapture(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { code, stdout, stderr } = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code, out: dec.decode(stdout) + dec.decode(stderr) };
  } catch (e) {
    return { code: -1, out: e instanceof Error ? e.message : String(e) };
  }
}

function cpuSignature(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    const model = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "";
    const flags = info.match(/^(flags|Features)\s*:\s*(.*)$/m)?.[2] ?? "";
    return `${model}|${flags}`;
  } catch {
    return `${Deno.build.os}-${Deno.build.arch}`;
  }
}

/**
 * Builds (or finds in the cache) the native kernel library.
 *
 * @param options.cc the C compiler (default `$CC` or `cc`)
 * @param options.force rebuild even when a cached build exists
 * @returns the library path, or the reason it could not be built (no compiler, compile error)
 */
export async function buildNativeLibrary(
  options: { cc?: string; force?: boolean } = {},
): Promise<NativeBuild> {
  if (Deno.build.os === "windows") {
    return { ok: false, reason: "native kernels are built with a Unix C compiler; not on Windows" };
  }
  const cc = options.cc ?? Deno.env.get("CC") ?? "cc";
  const version = await runCapture(cc, ["--version"]);
  if (version.code !== 0) {
    return {
      ok: false,
      reason: `no C compiler ('${cc} --version' failed: ${firstLine(version.out)})`,
    };
  }
  const source = await Deno.readTextFile(SOURCE_URL);
  // -z nodelete: the library (and libgomp with it) is never unmapped, not even when Deno closes it
  // at exit while OpenMP's worker threads still spin inside it.
  const baseFlags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=gnu11", "-pthread"];
  if (Deno.build.os === "linux") baseFlags.push("-Wl,-z,nodelete");
  // extra flags, e.g. a sanitizer build for the tests (GRADLAB_CFLAGS="-fsanitize=address,undefined")
  const extra = (Deno.env.get("GRADLAB_CFLAGS") ?? "").split(/\s+/).filter(Boolean);
  baseFlags.push(...extra);
  const key =
    (await sha256Hex([source, baseFlags.join(" "), version.out, cpuSignature()].join("\n")))
      .slice(0, 16);
  const outDir = join(cacheDir(), "native");
  const outPath = join(outDir, `libgradlab-${key}.${libSuffix()}`);
  const markerPath = `${outPath}.json`;
  if (!options.force) {
    try {
      const marker = JSON.parse(await Deno.readTextFile(markerPath));
      await Deno.stat(outPath);
      return { ok: true, path: outPath, openmp: Boolean(marker.openmp), cached: true };
    } catch {
      // not cached yet
    }
  }
  await Deno.mkdir(outDir, { recursive: true });
  const srcPath = fileURLToPath(SOURCE_URL);
  const tmpPath = join(dirname(outPath), `.tmp-${crypto.randomUUID()}.${libSuffix()}`);
  // OpenMP gives the kernels both cores; compilers without it (Apple clang) still get a build.
  let openmp = true;
  let flags = baseFlags;
  let res = await runCapture(cc, [...flags, "-fopenmp", "-o", tmpPath, srcPath, "-lm"]);
  if (res.code !== 0) {
    openmp = false;
    res = await runCapture(cc, [...flags, "-o", tmpPath, srcPath, "-lm"]);
  }
  if (res.code !== 0) {
    // compilers that do not know -march=native (some ARM and older toolchains) still build
    flags = baseFlags.filter((f) => f !== "-march=native");
    openmp = true;
    res = await runCapture(cc, [...flags, "-fopenmp", "-o", tmpPath, srcPath, "-lm"]);
    if (res.code !== 0) {
      openmp = false;
      res = await runCapture(cc, [...flags, "-o", tmpPath, srcPath, "-lm"]);
    }
  }
  if (res.code !== 0) {
    await Deno.remove(tmpPath).catch(() => {});
    return { ok: false, reason: `compiling kernels.c failed: ${firstLine(res.out)}` };
  }
  await Deno.rename(tmpPath, outPath);
  await writeFileAtomic(markerPath, JSON.stringify({ openmp, cc, flags }) + "\n");
  return { ok: true, path: outPath, openmp, cached: false };
}

function firstLine(s: string): string {
  return s.trim().split("\n")[0] ?? "";
}
