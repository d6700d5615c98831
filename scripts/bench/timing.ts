/**
 * Timing windows as in `shared/bench/peer/common.py`: repeat a call until a window has lasted at
 * least `minS` seconds; report the median rate over windows and, from /proc, the process CPU
 * time and minor page faults per call.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** One workload's timing. */
export interface Timing {
  items_per_s: number;
  items_per_s_windows: number[];
  sec_per_call_median: number;
  calls_per_window: number[];
  items_per_s_total: number;
  timed_s_total: number;
  cpu_user_s_per_call: number | null;
  cpu_sys_s_per_call: number | null;
  minor_faults_per_call: number | null;
}

interface ProcStat {
  user: number;
  sys: number;
  minflt: number;
}

/** User and system CPU seconds and minor faults of this process (Linux), or null. */
export function procStat(): ProcStat | null {
  try {
    const s = Deno.readTextFileSync("/proc/self/stat");
    const fields = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ": state=0, ..., minflt=7, utime=11, stime=12 (clock ticks, 100/s).
    return {
      minflt: Number(fields[7]),
      user: Number(fields[11]) / 100,
      sys: Number(fields[12]) / 100,
    };
  } catch {
    return null;
  }
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `call` in `repeats` windows of at least `minS` seconds. The call returns the tensor whose
 * value ends its work (or nothing); syncing that value once per window (`sync: "window"`, W1/W2)
 * or after every call (`sync: "call"`, W3/W4) is part of the timing, disposing it is too.
 */
export async function timeWindows(
  call: () => tf.Tensor | tf.Tensor[] | void | Promise<tf.Tensor>,
  itemsPerCall: number,
  options: { minS: number; repeats: number; sync: "window" | "call" },
): Promise<Timing> {
  const rates: number[] = [], perCall: number[] = [], calls: number[] = [];
  let totalT = 0, totalN = 0;
  const p0 = procStat();
  for (let w = 0; w < options.repeats; w++) {
    let n = 0;
    let last: tf.Tensor | tf.Tensor[] | void = undefined;
    const t0 = performance.now();
    let el = 0;
    while (true) {
      if (last) tf.dispose(last);
      last = await call();
      n++;
      if (options.sync === "call" && last) {
        await syncValue(last);
        // Free the result before the next call: a small tensor left alive next to a large freed
        // block fragments the wasm heap, and every call then grows it afresh.
        tf.dispose(last);
        last = undefined;
      }
      el = (performance.now() - t0) / 1000;
      if (el >= options.minS) break;
    }
    if (options.sync === "window" && last) await syncValue(last);
    el = (performance.now() - t0) / 1000;
    if (last) tf.dispose(last);
    rates.push((n * itemsPerCall) / el);
    perCall.push(el / n);
    calls.push(n);
    totalT += el;
    totalN += n;
  }
  const p1 = procStat();
  return {
    items_per_s: median(rates),
    items_per_s_windows: rates.map((r) => Math.round(r * 100) / 100),
    sec_per_call_median: median(perCall),
    calls_per_window: calls,
    items_per_s_total: (totalN * itemsPerCall) / totalT,
    timed_s_total: Math.round(totalT * 1000) / 1000,
    cpu_user_s_per_call: p0 && p1 ? (p1.user - p0.user) / totalN : null,
    cpu_sys_s_per_call: p0 && p1 ? (p1.sys - p0.sys) / totalN : null,
    minor_faults_per_call: p0 && p1 ? (p1.minflt - p0.minflt) / totalN : null,
  };
}

async function syncValue(t: tf.Tensor | tf.Tensor[]): Promise<void> {
  const last = Array.isArray(t) ? t[t.length - 1] : t;
  if (last) await last.data();
}
