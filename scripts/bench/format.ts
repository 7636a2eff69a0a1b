/** Number formatting for the bench's lines and table. */

/** 1,234,567 */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
/** 305 MB (decimal megabytes) */
export function fmtMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(0)} MB`;
}
/** 1.2s */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
/** +12.3% */
export function pct(x: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
}
/** 0.57× (three digits under 0.1) */
export function times(x: number): string {
  return `${x.toFixed(x < 0.1 ? 3 : 2)}×`;
}
/** Pad left (`right` = false) or right-align. */
export function pad(s: string, width: number, right = false): string {
  return right ? s.padStart(width) : s.padEnd(width);
}

/** The middle run (odd counts) or the slower of the middle two, by `key` ascending. */
export function median<T>(runs: T[], key: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  const mid = sorted[Math.floor(sorted.length / 2)];
  if (mid === undefined) throw new Error("median of no runs");
  return mid;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function medianValue(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  if (sorted.length === 0) throw new Error("median of no values");
  return Number.isInteger(mid)
    ? ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
    : (sorted[Math.floor(mid)] as number);
}
