/**
 * Errors meant for the person running a script: their message is one line that says what is
 * wrong and what to do. Scripts print it without a stack trace and exit non-zero; any other error
 * is a bug and keeps its stack.
 *
 * @module
 */

/** Base class of every expected, user-facing error. */
export class UserError extends Error {
  override name = "UserError";
}
