/**
 * Where the project keeps files it makes: the download and build cache.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (the folder holding `deno.json`), derived from this file's location. */
export function projectRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}

/**
 * The cache folder: `$GRADLAB_CACHE` when set, else `data/cache` in the project.
 * Nothing here is precious: it is rebuilt or re-downloaded when missing.
 */
export function cacheDir(): string {
  return Deno.env.get("GRADLAB_CACHE") ?? join(projectRoot(), "data", "cache");
}
