/**
 * A progress bar on stderr: done/total, rate, ETA and any metrics the caller adds. On a terminal
 * it redraws one line; in a log (not a TTY) it prints a line at most every few seconds.
 *
 * @module
 */

const enc = new TextEncoder();

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** what is being counted, e.g. "img" or "B" */
  unit?: string;
  /** silence everything (tests) */
  quiet?: boolean;
  /** seconds between lines when stderr is not a terminal */
  logEvery?: number;
  /** the clock, in ms (tests) */
  now?: () => number;
}

/** Seconds of recent progress the shown rate and the ETA are taken over. */
const RATE_WINDOW_S = 30;

/** A progress bar for `total` items. */
export class Progress {
  private readonly start: number;
  private readonly clock: () => number;
  /** (time, done) at most once a second, the last RATE_WINDOW_S seconds and one before */
  private samples: [number, number][] = [];
  private lastDraw = 0;
  private done = 0;
  private metrics = "";
  private readonly tty: boolean;
  private readonly unit: string;
  private readonly quiet: boolean;
  private readonly logEvery: number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    o: ProgressOptions = {},
  ) {
    this.unit = o.unit ?? "";
    this.quiet = o.quiet ?? false;
    this.logEvery = o.logEvery ?? 10;
    this.tty = !this.quiet && Deno.stderr.isTerminal();
    this.clock = o.now ?? (() => performance.now());
    this.start = this.clock();
    this.samples.push([this.start, 0]);
  }

  /**
   * Items a second over about the last 30 s (since the start, before that): a stall long past, or
   * a slow start, does not colour the rate and the ETA for the rest of a long run.
   */
  rate(): number {
    const now = this.clock();
    this.sample(now);
    const [t0, d0] = this.samples[0];
    return (this.done - d0) / Math.max((now - t0) / 1000, 1e-9);
  }

  private sample(now: number): void {
    const last = this.samples[this.samples.length - 1];
    if (now - last[0] >= 1000) this.samples.push([now, this.done]);
    // keep one sample at or before the window's start
    while (this.samples.length > 2 && now - this.samples[1][0] >= RATE_WINDOW_S * 1000) {
      this.samples.shift();
    }
  }

  /** Advances by `n` items and sets the metrics text (e.g. "loss 0.31 acc 0.91"). */
  tick(n: number, metrics?: string): void {
    this.done += n;
    if (metrics !== undefined) this.metrics = metrics;
    const now = this.clock();
    this.sample(now);
    const interval = this.tty ? 100 : this.logEvery * 1000;
    // In a log, the last line is finish()'s; on a terminal the bar also redraws at the end.
    if (now - this.lastDraw >= interval || (this.tty && this.done >= this.total)) this.draw(now);
  }

  /** Sets metrics text without advancing. */
  note(metrics: string): void {
    this.metrics = metrics;
  }

  /** Final line with total time. */
  finish(metrics?: string): void {
    if (metrics !== undefined) this.metrics = metrics;
    this.draw(this.clock(), true);
  }

  private draw(now: number, final = false): void {
    this.lastDraw = now;
    if (this.quiet) return;
    const elapsed = (now - this.start) / 1000;
    // the final line's rate is the whole run's
    const rate = final ? this.done / Math.max(elapsed, 1e-9) : this.rate();
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const u = this.unit ? ` ${this.unit}` : "";
    const timing = final ? `${fmtDuration(elapsed)}` : `ETA ${fmtDuration(eta)}`;
    const line = `${this.label} ${bar} ${fmtCount(this.done)}/${fmtCount(this.total)}${u} ` +
      `${fmtCount(rate)}${u}/s ${timing}${this.metrics ? "  " + this.metrics : ""}`;
    if (this.tty) {
      Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line}${final ? "\n" : ""}`));
    } else {
      Deno.stderr.writeSync(enc.encode(line + "\n"));
    }
  }
}
