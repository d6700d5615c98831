/**
 * Errors meant for the person running a script: their message is one line that says what is
 * wrong and what to do. Scripts print it without a stack trace and exit non-zero; any other error
 * is a bug and keeps its stack.
 *
 * @module
 */

/** Base class of every expected, user-facing error. */
export class UserError extends Error {
  /** The error's name. */
  override name = "UserError";
}

const IO_CODES = new Set([
  "ENOSPC",
  "EDQUOT",
  "EACCES",
  "EPERM",
  "EROFS",
  "EISDIR",
  "ENOTDIR",
  "EEXIST",
  "ENOENT",
  "EIO",
  "EMFILE",
]);

/**
 * The one-line message of an expected failure of the machine rather than of the program — a
 * full disk, a permission, a path that is a file or does not exist — or null for anything else.
 * Deno's messages name the path (`Permission denied (os error 13): mkdir '/proc/x'`).
 */
export function ioFailure(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const code = (e as { code?: string }).code;
  const known = e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotFound ||
    e instanceof Deno.errors.AlreadyExists || e instanceof Deno.errors.IsADirectory ||
    e instanceof Deno.errors.NotADirectory ||
    (code !== undefined && IO_CODES.has(code)) || /\(os error \d+\)/.test(e.message);
  return known ? e.message.split("\n")[0] : null;
}
