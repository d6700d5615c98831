/**
 * Process memory readings (Linux): current and peak resident set size, with a reset of the peak
 * so that each workload's own peak can be reported.
 *
 * @module
 */

function statusField(name: string): number | null {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(
      new RegExp(`^${name}:\\s+(\\d+) kB`, "m"),
    );
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Resident set size now, MiB. */
export function rssMiB(): number | null {
  return statusField("VmRSS");
}

/** Peak resident set size since start or the last {@link resetPeakRss}, MiB. */
export function peakRssMiB(): number | null {
  return statusField("VmHWM");
}

/** Resets the kernel's peak-RSS counter (writes 5 to /proc/self/clear_refs); false if refused. */
export function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}
