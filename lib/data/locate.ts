/**
 * Where datasets are looked up: `--data-dir`, then `$GRADLAB_DATA`, then the project's `data/`
 * folder (the download cache). In each root a dataset may sit in a named sub-folder (`cifar10/`,
 * `cifar-10-batches-bin/`, …) or directly in the root.
 *
 * @module
 */

import { DataError } from "./dataset.ts";
import { join, resolve } from "node:path";
import { projectRoot } from "../util/paths.ts";

/** How to look for (and whether to download) a dataset. */
export interface LocateOptions {
  /** a folder the user named (`--data-dir`); searched first */
  dataDir?: string;
  /** never touch the network: report what is missing instead (tests) */
  offline?: boolean;
  /** false: accept files with other record counts than the published ones (hand-made fixtures) */
  checkCounts?: boolean;
}

/** The project's download cache for datasets: `$GRADLAB_DATA` when set, else `data/`. */
export function downloadRoot(): string {
  return Deno.env.get("GRADLAB_DATA") || join(projectRoot(), "data");
}

/** Roots searched, in order, without duplicates. */
export function dataRoots(o: LocateOptions = {}): string[] {
  const roots = [o.dataDir, Deno.env.get("GRADLAB_DATA"), join(projectRoot(), "data")]
    .filter((r): r is string => Boolean(r))
    .map((r) => resolve(r));
  return [...new Set(roots)];
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * The first folder holding every `required` file: for each root, `root/<alias>` for each alias,
 * then `root` itself. Also returns every folder searched, for the error message.
 */
export async function findDatasetDir(
  aliases: readonly string[],
  required: readonly string[],
  o: LocateOptions = {},
  extraDirs: readonly string[] = [],
): Promise<{ dir: string | null; searched: string[] }> {
  const searched: string[] = [];
  const candidates = dataRoots(o).flatMap((r) => [...aliases.map((a) => join(r, a)), r]);
  for (const dir of [...candidates, ...extraDirs]) {
    searched.push(dir);
    let all = true;
    for (const f of required) {
      if (!(await isFile(join(dir, f)))) {
        all = false;
        // a folder where a data file belongs is a mistake to name, not a missing dataset
        const st = await Deno.stat(join(dir, f)).catch(() => null);
        if (st?.isDirectory) {
          throw new DataError(`${join(dir, f)} is a directory; expected the data file ${f}`);
        }
        break;
      }
    }
    if (all) return { dir, searched };
  }
  return { dir: null, searched };
}
