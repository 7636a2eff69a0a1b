import type { JobProgress } from "../runner/local-runner.ts";

/** "1.20M", "35.4k", "812". A value that rounds up to the next unit takes it: 999,960 is "1.00M", not "1000.0k". */
export function compactNumber(n: number): string {
  if (Math.round(n) < 1e4) return String(Math.round(n));
  const k = (n / 1e3).toFixed(1);
  if (Number(k) < 1000) return `${k}k`;
  const m = (n / 1e6).toFixed(2);
  if (Number(m) < 1000) return `${m}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}

/** "1h02m", "3m05s", "42s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** One progress line: bar, records, rate, ETA, partitions, workers. */
export function progressLine(p: JobProgress, width = 24): string {
  const frac = p.bytesTotal === 0 ? (p.partitions === 0 ? 1 : 0) : p.bytesDone / p.bytesTotal;
  const filled = Math.round(frac * width);
  const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
  const eta = p.etaSeconds === undefined ? "" : ` ETA ${duration(p.etaSeconds)}`;
  const failed = p.partitionsFailed > 0 ? `, ${p.partitionsFailed} failed` : "";
  const errors = p.errors > 0 ? ` (${compactNumber(p.errors)} bad)` : "";
  return `${bar} ${(frac * 100).toFixed(1).padStart(5)}% ${compactNumber(p.records)} records${errors} ${compactNumber(p.rate)}/s${eta} | partitions ${p.partitionsDone}/${p.partitions}${failed} | workers ${p.workers} | ${p.state}`;
}

/**
 * Writes progress: a redrawn line on a terminal, a plain line every few seconds otherwise.
 * `log` prints a line (a worker's log line) above the bar, which is then redrawn under it.
 */
export function createProgressReporter(stream: NodeJS.WriteStream, plainEveryMs = 5000) {
  let lastPlain = 0;
  let drawn = false;
  let bar = "";
  return {
    update(p: JobProgress): void {
      if (stream.isTTY) {
        bar = progressLine(p, 24).slice(0, Math.max(20, (stream.columns ?? 120) - 1));
        stream.write(`\r\x1b[2K${bar}`);
        drawn = true;
      } else if (Date.now() - lastPlain >= plainEveryMs) {
        lastPlain = Date.now();
        stream.write(`${progressLine(p, 20)}\n`);
      }
    },
    log(line: string): void {
      const text = line.endsWith("\n") ? line : `${line}\n`;
      if (stream.isTTY && drawn) stream.write(`\r\x1b[2K${text}${bar}`);
      else stream.write(text);
    },
    done(p?: JobProgress): void {
      if (drawn) stream.write("\n");
      else if (p && !stream.isTTY) stream.write(`${progressLine(p, 20)}\n`);
    },
  };
}
