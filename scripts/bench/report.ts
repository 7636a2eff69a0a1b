/** The bench's summary: each figure with its anchor, the target and whether it is met. */
import { fmtInt, pad, times } from "./format.ts";

/** One figure of the summary. */
export interface Figure {
  name: string;
  /** Our rows/s and the anchor's, for ratio figures. */
  ours?: number;
  anchor?: number;
  /** What the target is checked against: a ratio, or a value in the target's unit. */
  ratio?: number;
  /** The same ratio by the job's durationMs instead of wall clock. */
  byJob?: number;
  /** The most the ratio can be on this machine (ceilings.ts): the mandatory work alone. */
  ceiling?: number;
  /** A non-ratio figure as printed (e.g. "+3.1%", "212 MB"). */
  value?: string;
  detail?: string;
  /** The target: ratio >= min, or value <= max (< max when strict). */
  target?: { min?: number; max?: number; unit?: string; strict?: boolean };
  /** The "today" figure, for comparison. */
  today?: string;
  /** Why the figure is absent. */
  missing?: string;
}

/** MET / NOT MET / not measured / "—" (no target). */
export function status(f: Figure): string {
  if (f.missing || f.ratio === undefined || Number.isNaN(f.ratio)) return "not measured";
  const t = f.target;
  if (!t) return "—";
  if (t.min !== undefined) return f.ratio >= t.min ? "MET" : "NOT MET";
  if (t.max !== undefined) {
    const ok = t.strict ? f.ratio < t.max : f.ratio <= t.max;
    return ok ? "MET" : "NOT MET";
  }
  return "—";
}

function targetText(f: Figure): string {
  const t = f.target;
  if (!t) return "—";
  if (t.min !== undefined) return `≥ ${t.min}×`;
  if (t.max !== undefined) return `${t.strict ? "<" : "≤"} ${t.max}${t.unit ?? ""}`;
  return "—";
}

function valueText(f: Figure): string {
  if (f.missing) return f.missing;
  if (f.value !== undefined) return f.value;
  if (f.ratio === undefined) return "?";
  return times(f.ratio);
}

function anchorText(f: Figure): string {
  if (f.missing || f.ours === undefined || f.anchor === undefined) return f.detail ?? "";
  const job = f.byJob !== undefined ? ` (by job ${times(f.byJob)})` : "";
  return `${fmtInt(f.ours)} vs ${fmtInt(f.anchor)} rows/s${job}`;
}

/** Print the figures as a table; returns its lines (for results.json). */
export function printFigures(figures: Figure[]): string[] {
  const rows = figures.map((f) => [
    f.name,
    valueText(f),
    targetText(f),
    f.ceiling !== undefined && !f.missing ? `≤ ${times(f.ceiling)}` : "",
    f.today ?? "",
    status(f),
    anchorText(f),
  ]);
  const head = [
    "figure",
    "value",
    "target",
    "ceiling here",
    "issue's today",
    "status",
    "ours vs anchor / detail",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const lines = [line(head), ...rows.map(line)];
  console.log(`\n${lines.join("\n")}`);
  return lines;
}
