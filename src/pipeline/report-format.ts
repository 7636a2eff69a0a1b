/** Text for the job report: HTML escaping, and numbers, sizes, durations and times as a person reads them. */
import { thousands } from "../core/numbers.ts";

/** Escape text for HTML element content and double- or single-quoted attributes. */
export function esc(value: unknown): string {
  return String(value)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** An integer with thousands separators (1,234,567). */
export const int = thousands;

/** A count in a few characters: 950, 12.3k, 4.5M, 1.2G. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e3) return `${trim(n / 1e3)}k`;
  return trim(n);
}

function trim(n: number): string {
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return String(Number(n.toFixed(digits)));
}

/** A size in binary units with the exact byte count: 3.2 MiB (3,355,443 bytes). */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${int(n)} B` : `${trim(v)} ${units[u]} (${int(n)} bytes)`;
}

/** A duration in words a person reads at a glance: 850 ms, 12.3 s, 4 m 05 s, 1 h 02 m. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trim(ms / 1000)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
}

/** A moment as time since the job was created, for tooltips and tables. */
export function at(ms: number): string {
  return ms <= 0 ? "+0 s" : `+${duration(ms)}`;
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS UTC` (— when absent; the text itself when unparseable). */
export function utc(iso: string | undefined): string {
  if (!iso) return "—";
  const t = Date.parse(iso);
  return Number.isFinite(t)
    ? `${new Date(t).toISOString().replace("T", " ").slice(0, 19)} UTC`
    : iso;
}

/** A round step (1, 2 or 5 × 10^k) giving about `target` ticks up to `max`. */
export function niceStep(max: number, target = 4): number {
  const raw = max / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
