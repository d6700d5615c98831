/**
 * Atomic file writes: write to a temporary file in the same folder, then rename over the
 * target. A reader (or a resumed run after kill -9) sees the old file or the new one, never half.
 *
 * @module
 */

import { dirname, join } from "node:path";

function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${crypto.randomUUID()}`);
}

/** Writes `data` to `path` atomically, creating the parent folder when missing. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Writes `value` as pretty JSON, atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
