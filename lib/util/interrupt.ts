/**
 * Ctrl-C (SIGINT) and SIGTERM handling for long runs: the first signal asks the training loop to
 * stop at the next step boundary, after writing a checkpoint; a second one exits at once. The
 * loss of the parent process (the `deno task` wrapper killed) counts as a signal.
 *
 * @module
 */

import { UserError } from "./errors.ts";

let requested = false;
let installed = false;

/** Raised by a loop that stopped because of a signal; the message says how to resume. */
export class InterruptedError extends UserError {
  override name = "InterruptedError";
}

/** Installs the signal handlers (idempotent). */
export function installInterruptHandler(): void {
  if (installed || Deno.build.os === "windows") return;
  installed = true;
  const onSignal = () => {
    if (requested) Deno.exit(130);
    requested = true;
    console.error(
      "\ninterrupt: finishing the current step and saving a checkpoint (again to quit now)",
    );
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  // `deno task` runs the script as a child: when the wrapper is killed (kill -9 sends no signal
  // on), the child is re-parented. Treat that as an interrupt, so no orphan trains on unseen.
  const parent = Deno.ppid;
  const watch = setInterval(() => {
    if (Deno.ppid !== parent && !requested) {
      requested = true;
      console.error("\ninterrupt: the parent process is gone; saving a checkpoint and stopping");
    }
  }, 1000);
  Deno.unrefTimer(watch);
}

/** Whether a stop was requested. */
export function interruptRequested(): boolean {
  return requested;
}

/**
 * Lets the event loop run once (a pending signal is handled there: a loop whose awaits resolve at
 * once never lets it) and throws InterruptedError when a stop was requested. For long loops
 * with nothing to save at the check, e.g. between chunks of a feature build.
 *
 * @example
 * ```ts
 * import { setInterruptRequested, stopIfInterrupted } from "./interrupt.ts";
 * await stopIfInterrupted("while testing"); // no stop requested: returns
 * setInterruptRequested(true);
 * const stopped = await stopIfInterrupted("while testing").then(() => false, () => true);
 * setInterruptRequested(false);
 * console.assert(stopped);
 * ```
 */
export async function stopIfInterrupted(where: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  if (requested) throw new InterruptedError(`interrupted ${where}`);
}

/** For tests: ask for a stop as if a signal had come, or clear the request. */
export function setInterruptRequested(v: boolean): void {
  requested = v;
}
