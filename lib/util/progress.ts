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
}

/** A progress bar for `total` items. */
export class Progress {
  private readonly start = performance.now();
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
  }

  /** Advances by `n` items and sets the metrics text (e.g. "loss 0.31 acc 0.91"). */
  tick(n: number, metrics?: string): void {
    this.done += n;
    if (metrics !== undefined) this.metrics = metrics;
    const now = performance.now();
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
    this.draw(performance.now(), true);
  }

  private draw(now: number, final = false): void {
    this.lastDraw = now;
    if (this.quiet) return;
    const elapsed = (now - this.start) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-9);
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
