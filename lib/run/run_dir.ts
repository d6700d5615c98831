/**
 * Run folders: `<out>/<paper>/<run-id>/` with the resolved `config.json`, `metrics.csv`, plots
 * (`*.html`), `summary.json`, `checkpoint.bin` and a `completed` marker. Every write is atomic
 * (temporary file, then rename), so a run killed at any moment (kill -9) leaves consistent files,
 * and `--resume <run-dir>` continues from its last checkpoint.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.ts";
import { UserError } from "../util/errors.ts";
import { decodeBundle, encodeBundle, type NamedArray } from "./bundle.ts";

/** A run folder. */
export class RunDir {
  /** when this process took the folder, and the seconds spent in it before (earlier segments) */
  private readonly since = performance.now();
  private before = 0;

  private constructor(readonly path: string, readonly config: Record<string, unknown>) {}

  /**
   * Seconds of work in this run folder, over every segment of an interrupted and resumed run
   * (recorded at each checkpoint, so kill -9 loses what the checkpoint lost).
   */
  elapsed(): number {
    return this.before + (performance.now() - this.since) / 1000;
  }

  /** Adds the time since the last record to the folder's elapsed-time file. */
  private async recordElapsed(): Promise<void> {
    await this.writeJson("elapsed.json", { seconds: this.elapsed() });
  }

  /** Creates a new run folder and writes `config.json`. */
  static async create(o: {
    out: string;
    paper: string;
    config: Record<string, unknown>;
    runId?: string;
  }): Promise<RunDir> {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "").replace(
      "T",
      "-",
    );
    const id = o.runId ?? `${stamp}-${crypto.randomUUID().slice(0, 6)}`;
    const path = resolve(join(o.out, o.paper, id));
    await Deno.mkdir(path, { recursive: true });
    const run = new RunDir(path, { paper: o.paper, ...o.config });
    await run.writeJson("config.json", { paper: o.paper, ...o.config });
    RunDir.fresh.add(path);
    RunDir.active = run;
    return run;
  }

  /** The run folder this process created or opened last (for the interrupt message). */
  static active: RunDir | null = null;

  /** Folders created by this process that may still hold nothing but their config.json. */
  private static fresh = new Set<string>();

  /**
   * Removes the folders this process created that hold nothing but config.json (a start that
   * failed before doing any work leaves nothing behind). Returns the paths removed.
   */
  static async discardUnused(): Promise<string[]> {
    const removed: string[] = [];
    for (const path of RunDir.fresh) {
      try {
        const names = [...Deno.readDirSync(path)].map((e) => e.name);
        if (names.length === 1 && names[0] === "config.json") {
          await Deno.remove(path, { recursive: true });
          removed.push(path);
          // and `<out>/<paper>/` when this run was its only content
          await Deno.remove(dirname(path)).catch(() => {});
        }
      } catch { /* already gone */ }
    }
    RunDir.fresh.clear();
    return removed;
  }

  /**
   * Opens an existing run folder to resume it (of script `paper`, when given).
   * @throws UserError when it is not a run folder, is another script's, or has already completed
   */
  static async open(path: string, paper?: string): Promise<RunDir> {
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await Deno.readTextFile(join(path, "config.json")));
    } catch {
      throw new UserError(`--resume ${path}: not a run folder (no readable config.json)`);
    }
    const run = new RunDir(resolve(path), config);
    if (paper && config.paper !== paper) {
      throw new UserError(
        `--resume ${path}: a ${config.paper ?? "unknown"} run folder, not a ${paper} one`,
      );
    }
    if (await run.isCompleted()) {
      throw new UserError(`--resume ${path}: this run already completed (see summary.json)`);
    }
    try {
      run.before = JSON.parse(await Deno.readTextFile(run.file("elapsed.json"))).seconds ?? 0;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    RunDir.active = run;
    return run;
  }

  /** Path of a file in the run folder. */
  file(name: string): string {
    return join(this.path, name);
  }

  /** Writes `value` as JSON to `name`, atomically. */
  writeJson(name: string, value: unknown): Promise<void> {
    return writeJsonAtomic(this.file(name), value);
  }

  /** Writes `text` to `name`, atomically. */
  writeText(name: string, text: string): Promise<void> {
    return writeFileAtomic(this.file(name), text);
  }

  /** Writes `bytes` to `name`, atomically. */
  writeBytes(name: string, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(this.file(name), bytes);
  }

  /** Rewrites `metrics.csv` from all rows so far (columns: union of keys, first-seen order). */
  async writeMetrics(
    rows: Record<string, number | string | null>[],
    name = "metrics.csv",
  ): Promise<void> {
    await this.writeText(name, toCsv(rows));
  }

  /**
   * Saves a checkpoint (metadata + tensors) atomically. The previous one is kept as
   * `<name>.prev`, so a checkpoint found corrupt later still has a good predecessor.
   */
  async saveCheckpoint(
    meta: unknown,
    tensors: NamedArray[],
    name = "checkpoint.bin",
  ): Promise<void> {
    try {
      await Deno.rename(this.file(name), this.file(`${name}.prev`));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await this.writeBytes(name, encodeBundle(meta, tensors));
    await this.recordElapsed();
  }

  /**
   * A bundle file of the run folder (checkpoint, snapshot, statistics), or null when it does not
   * exist; an unreadable or corrupt one is a UserError naming the file.
   */
  async readBundle<M>(file: string): Promise<{ meta: M; tensors: Map<string, NamedArray> } | null> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.file(file));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw new UserError(`${this.file(file)}: ${(e as Error).message.split("\n")[0]}`);
    }
    try {
      return decodeBundle<M>(bytes);
    } catch (e) {
      throw new UserError(`${this.file(file)}: ${(e as Error).message}`);
    }
  }

  /**
   * The last checkpoint, or null when there is none. A corrupt or unreadable one is reported by
   * name and its predecessor (`<name>.prev`) is used instead, with a warning; when both are bad
   * this throws a UserError naming the file.
   */
  async loadCheckpoint<M>(
    name = "checkpoint.bin",
  ): Promise<{ meta: M; tensors: Map<string, NamedArray> } | null> {
    const read = (file: string) => this.readBundle<M>(file);
    try {
      return (await read(name)) ?? (await read(`${name}.prev`));
    } catch (e) {
      const prev = await read(`${name}.prev`).catch(() => null);
      if (!prev) throw e;
      console.error(`warning: ${(e as Error).message}; resuming from ${name}.prev instead`);
      return prev;
    }
  }

  /**
   * The JSON file `name` of the run folder, or — when it does not exist yet — `compute()`'s
   * value, written there first. Only a missing file counts as missing: any other read or parse
   * error propagates.
   */
  async cachedJson<T>(name: string, compute: () => Promise<T>): Promise<T> {
    try {
      return JSON.parse(await Deno.readTextFile(this.file(name)));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const v = await compute();
    await this.writeJson(name, v);
    return v;
  }

  /** Whether the run finished (its `completed` marker exists). */
  async isCompleted(): Promise<boolean> {
    try {
      await Deno.stat(this.file("completed"));
      return true;
    } catch {
      return false;
    }
  }

  /** Writes `summary.json`, then the `completed` marker. */
  async complete(summary: unknown): Promise<void> {
    await this.recordElapsed();
    await this.writeJson("summary.json", summary);
    await this.writeText("completed", new Date().toISOString() + "\n");
  }
}

/** Rows → CSV text (numbers as-is, missing values and NaN empty, strings quoted when needed). */
export function toCsv(rows: Record<string, number | string | null>[]): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: number | string | null | undefined) => {
    // NaN too: a checkpoint's JSON turns NaN into null, and a resumed run must write the same file
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") +
    "\n";
}
