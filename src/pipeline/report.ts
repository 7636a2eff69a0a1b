/**
 * The job report: one self-contained HTML file written next to a job's output
 * (`<prefix>/<jobId>/report.html`) for a person to look at instead of reading
 * the manifest: the job's identity and counts, throughput over time, the
 * partition timeline per worker (where kills, hand-backs and retries happened)
 * and the error summary.
 *
 * It is a pure function of the manifest and an error summary. No scripts and no
 * external assets (inline CSS and SVG only), so it renders from a bucket, an
 * e-mail attachment or an air-gapped laptop alike; a Content-Security-Policy
 * forbids scripts as a second line of defence behind escaping, since record
 * text in it comes from arbitrary input files.
 */
import { thousands } from "../core/numbers.ts";
import type { Attempt } from "../core/records.ts";
import { jobLayout } from "./layout.ts";
import type { Manifest } from "./manifest.ts";
import {
  activeBuckets,
  type Interval,
  jobTimeScale,
  spreadCommits,
  type TimeScale,
  timeTicks,
} from "./report-time.ts";

/** One bad record shown in the report, with its line number in the input. */
export interface ErrorSample {
  line: number;
  reason: string;
  record: string | null;
}

/** What `renderJobReport` needs: the manifest and a summary of the errors output. */
export interface JobReportInput {
  manifest: Manifest;
  /** Bad records per reason (normalized or not: the report normalizes again). */
  errorReasons: Map<string, number>;
  /** The first bad records (about 20), in input order. */
  errorSamples: ErrorSample[];
}

/** Samples the merger keeps for the report. */
export const REPORT_ERROR_SAMPLES = 20;
/** Distinct reasons counted before the rest are lumped together (a bound on memory). */
const MAX_REASONS = 500;
const OTHER_REASONS = "(other reasons)";

/**
 * A reason with its data taken out, so bad records of one kind group together:
 * `column age: "x" is not a number` and `column age: "y" is not a number` both
 * become `column age: "…" is not a number`. Quoted values are JSON strings (the
 * featurizer quotes with JSON.stringify), so escaped quotes inside are handled.
 */
export function normalizeReason(reason: string): string {
  return reason
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\bposition \d+/g, "position N")
    .replace(/\(line \d+ column \d+\)/g, "(line N column N)")
    .slice(0, 300);
}

/**
 * Counts bad records by normalized reason and keeps the first samples, while the
 * merger streams the errors output (so it is read once, never held in memory).
 */
export class ErrorTally {
  /** Normalized reason → count. */
  readonly reasons = new Map<string, number>();
  /** The first bad records, in the order added. */
  readonly samples: ErrorSample[] = [];

  constructor(private readonly maxSamples = REPORT_ERROR_SAMPLES) {}

  /** Count one bad record. */
  add(line: number, reason: string, record: string | null): void {
    let key = normalizeReason(reason);
    if (!this.reasons.has(key) && this.reasons.size >= MAX_REASONS) key = OTHER_REASONS;
    this.reasons.set(key, (this.reasons.get(key) ?? 0) + 1);
    if (this.samples.length < this.maxSamples) this.samples.push({ line, reason, record });
  }
}

// ---------------------------------------------------------------------------
// Formatting

/** Escape text for HTML element content and double- or single-quoted attributes. */
function esc(value: unknown): string {
  return String(value)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const int = thousands;

function compact(n: number): string {
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

function bytes(n: number): string {
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
function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trim(ms / 1000)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
}

/** A moment as time since the job was created, for tooltips and tables. */
function at(ms: number): string {
  return ms <= 0 ? "+0 s" : `+${duration(ms)}`;
}

function utc(iso: string | undefined): string {
  if (!iso) return "—";
  const t = Date.parse(iso);
  return Number.isFinite(t)
    ? `${new Date(t).toISOString().replace("T", " ").slice(0, 19)} UTC`
    : iso;
}

/** A round step (1, 2 or 5 × 10^k) giving about `target` ticks up to `max`. */
function niceStep(max: number, target = 4): number {
  const raw = max / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

// ---------------------------------------------------------------------------
// Outcomes: colour-blind-safe fills, each with a symbol and words, so colour is never the only cue.

type OutcomeKey = NonNullable<Attempt["outcome"]> | "open";

const OUTCOMES: Record<
  OutcomeKey,
  { label: string; short: string; fill: string; ink: string; mark: string }
> = {
  done: { label: "done", short: "done", fill: "#1b7837", ink: "#ffffff", mark: "✓" },
  handed_back: {
    label: "handed back (preempted or scaled down)",
    short: "handed back",
    fill: "#2166ac",
    ink: "#ffffff",
    mark: "↩",
  },
  lost: {
    label: "lost (killed or stalled)",
    short: "lost",
    fill: "#b35806",
    ink: "#ffffff",
    mark: "✕",
  },
  error: { label: "error", short: "error", fill: "#762a83", ink: "#ffffff", mark: "!" },
  failed: { label: "failed", short: "failed", fill: "#b2182b", ink: "#ffffff", mark: "✖" },
  open: {
    label: "still open at merge",
    short: "open",
    fill: "#c4c4c4",
    ink: "#1a1a1a",
    mark: "…",
  },
};

function outcomeOf(a: Attempt): OutcomeKey {
  return a.outcome ?? "open";
}

// ---------------------------------------------------------------------------
// Charts

const CHART_W = 1152;
const PLOT_LEFT = 72;
const PLOT_RIGHT = 28;

/** Ticks at round times since the job's creation, and a break marker for each idle gap. */
function timeAxis(
  m: Manifest,
  scale: TimeScale,
  x: (t: number) => number,
  top: number,
  bottom: number,
): string {
  const origin = Date.parse(m.timings.createdAt);
  let out = "";
  // Labels closer than this collide (the last tick before a break and the first after it):
  // the one after the break wins, since it tells how long the break was.
  const MIN_LABEL_PX = 52;
  const labels: { px: number; label: string }[] = [];
  for (const k of timeTicks(scale, Number.isFinite(origin) ? origin : scale.t0)) {
    const px = x(k.t);
    out += `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${top}" y2="${bottom}" class="grid"/>`;
    const prev = labels.at(-1);
    if (prev && px - prev.px < MIN_LABEL_PX) {
      if (scale.gaps.some((g) => x(g.t0) >= prev.px - 1 && x(g.t1) <= px + 1)) labels.pop();
      else continue;
    }
    labels.push({ px, label: k.label });
  }
  for (const l of labels) {
    out += `<text x="${l.px.toFixed(1)}" y="${bottom + 16}" text-anchor="middle" class="tick">${esc(l.label)}</text>`;
  }
  for (const g of scale.gaps) {
    const xa = x(g.t0);
    const xb = x(g.t1);
    const mid = (xa + xb) / 2;
    out += `<g class="gap" data-idle-ms="${Math.round(g.t1 - g.t0)}"><title>${esc(`idle for ${duration(g.t1 - g.t0)}: no partition in progress (e.g. between a run and its rerun); cut out of the axis`)}</title><rect x="${xa.toFixed(1)}" y="${top}" width="${Math.max(2, xb - xa).toFixed(1)}" height="${bottom - top}" class="gapband"/>`;
    out += `<path d="M${(mid - 5).toFixed(1)},${bottom + 4} l5,-8 l5,8" class="gapmark"/>`;
    out += `<text x="${mid.toFixed(1)}" y="${top + 14}" text-anchor="middle" class="gaplabel">${esc(`idle ${duration(g.t1 - g.t0)}`)}</text></g>`;
  }
  return out;
}

function throughputChart(m: Manifest, scale: TimeScale): string {
  const buckets: Interval[] = activeBuckets(scale);
  const { counts, dated, undated, undatedRecords } = spreadCommits(m, buckets);
  const note =
    undated > 0
      ? `<p class="note">${int(undated)} committed chunks (${int(undatedRecords)} records) carry no commit time (written by an older worker) and are left out of the chart.</p>`
      : "";
  if (dated === 0) {
    return `<p class="empty">No committed chunk has a commit time, so there is no throughput curve to draw.</p>${note}`;
  }
  if (scale.activeMs <= 0) {
    const total = counts.reduce((n, c) => n + c, 0);
    return `<p class="empty">The job started and finished within the same millisecond (${int(total)} records): nothing to draw over time.</p>${note}`;
  }

  // Records/s within each bucket; the buckets cover the active time only.
  const rates = counts.map((c, i) => {
    const b = buckets[i] as Interval;
    return b.t1 > b.t0 ? c / ((b.t1 - b.t0) / 1000) : 0;
  });
  const peak = Math.max(...rates);
  const yStep = niceStep(peak > 0 ? peak : 1);
  const yMax = Math.max(yStep, Math.ceil(peak / yStep) * yStep);

  const H = 300;
  const top = 28;
  const bottom = H - 40;
  const plotW = CHART_W - PLOT_LEFT - PLOT_RIGHT;
  const x = (t: number) => PLOT_LEFT + scale.pos(t) * plotW;
  const y = (v: number) => bottom - (v / yMax) * (bottom - top);

  let svg = "";
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const py = y(v).toFixed(1);
    svg += `<line x1="${PLOT_LEFT}" x2="${CHART_W - PLOT_RIGHT}" y1="${py}" y2="${py}" class="grid"/>`;
    svg += `<text x="${PLOT_LEFT - 8}" y="${py}" dy="4" text-anchor="end" class="tick">${esc(compact(v))}</text>`;
  }
  svg += timeAxis(m, scale, x, top, bottom);

  // A step curve per active segment (each bucket's rate is flat across it); a break between segments.
  const origin = Date.parse(m.timings.createdAt);
  const since = (t: number) => t - (Number.isFinite(origin) ? origin : scale.t0);
  const base = y(0).toFixed(1);
  for (const seg of scale.segments) {
    const pts: string[] = [];
    buckets.forEach((b, i) => {
      if (b.t0 < seg.t0 || b.t1 > seg.t1) return;
      const r = rates[i] ?? 0;
      pts.push(
        `${x(b.t0).toFixed(1)},${y(r).toFixed(1)}`,
        `${x(b.t1).toFixed(1)},${y(r).toFixed(1)}`,
      );
    });
    if (pts.length === 0) continue;
    svg += `<path d="M${x(seg.t0).toFixed(1)},${base} L${pts.join(" L")} L${x(seg.t1).toFixed(1)},${base} Z" class="area"/>`;
    svg += `<path d="M${pts.join(" L")}" class="line"/>`;
  }
  buckets.forEach((b, i) => {
    const xa = x(b.t0);
    const xb = x(b.t1);
    svg += `<rect x="${xa.toFixed(1)}" y="${top}" width="${Math.max(0, xb - xa).toFixed(1)}" height="${bottom - top}" class="hit" data-bucket="${i}"><title>${esc(`${at(since(b.t0))} to ${at(since(b.t1))}: ${int(counts[i] ?? 0)} records (${compact(rates[i] ?? 0)} records/s)`)}</title></rect>`;
  });

  // Where attempts ended badly: a marker on the time axis, so dips line up with their cause.
  for (const p of m.partitions) {
    for (const a of p.attempts) {
      const k = outcomeOf(a);
      if (k === "done" || k === "open" || !a.endedAt) continue;
      const t = Date.parse(a.endedAt);
      if (!Number.isFinite(t)) continue;
      const o = OUTCOMES[k];
      const px = x(t).toFixed(1);
      svg += `<g class="event" data-outcome="${k}"><line x1="${px}" x2="${px}" y1="${top}" y2="${bottom}" stroke="${o.fill}" class="marker"/>`;
      svg += `<text x="${px}" y="${top - 8}" text-anchor="middle" fill="${o.fill}" class="mark">${esc(o.mark)}</text>`;
      svg += `<title>${esc(`partition ${p.index}, ${a.worker} (epoch ${a.epoch}): ${o.label} at ${at(since(t))}`)}</title></g>`;
    }
  }
  svg += `<text x="14" y="${(top + bottom) / 2}" transform="rotate(-90 14 ${(top + bottom) / 2})" text-anchor="middle" class="axis">records / s</text>`;
  svg += `<text x="${PLOT_LEFT + plotW / 2}" y="${H - 4}" text-anchor="middle" class="axis">time since the job was created</text>`;

  const total = counts.reduce((n, c) => n + c, 0);
  const width = scale.activeMs / buckets.length;
  const idle =
    scale.gaps.length > 0
      ? ` Idle stretches with no partition in progress (${esc(duration(scale.idleMs))} in all, e.g. between a run and its rerun) are cut out of the axis and marked.`
      : "";
  return `<figure><svg role="img" aria-labelledby="tp-title" viewBox="0 0 ${CHART_W} ${H}" width="${CHART_W}" height="${H}" class="chart"><title id="tp-title">${esc(`Records scored per second over time, in ${buckets.length} intervals of about ${duration(width)}; peak ${compact(peak)} records/s`)}</title>${svg}</svg>
<figcaption>Records scored per second, in ${buckets.length} intervals of about ${esc(duration(width))} (${int(total)} records in ${int(dated)} chunks; each chunk's records are spread over the time its worker spent on them, from its claim or previous checkpoint to its commit).${idle} Markers above the chart: where an attempt ended other than done (${legendInline(["lost", "handed_back", "error", "failed"])}).</figcaption></figure>${note}`;
}

function legendInline(keys: OutcomeKey[]): string {
  return keys
    .map(
      (k) =>
        `<span style="color:${OUTCOMES[k].fill}">${esc(OUTCOMES[k].mark)}</span> ${esc(OUTCOMES[k].label)}`,
    )
    .join(", ");
}

interface Bar {
  partition: number;
  attempt: Attempt;
  start: number;
  end: number;
  outcome: OutcomeKey;
}

function timeline(m: Manifest, scale: TimeScale): string {
  const finish = Date.parse(m.timings.finishedAt);
  const rows = new Map<string, Bar[]>();
  for (const p of m.partitions) {
    for (const a of p.attempts) {
      const start = Date.parse(a.startedAt);
      if (!Number.isFinite(start)) continue;
      // An attempt still open at merge time (its worker vanished) is drawn up to the job's finish.
      const endRaw = Date.parse(a.endedAt ?? "");
      const end = Number.isFinite(endRaw) ? endRaw : Number.isFinite(finish) ? finish : start;
      const bars = rows.get(a.worker) ?? [];
      bars.push({
        partition: p.index,
        attempt: a,
        start,
        end: Math.max(start, end),
        outcome: outcomeOf(a),
      });
      rows.set(a.worker, bars);
    }
  }
  if (rows.size === 0) return `<p class="empty">No partition was ever claimed by a worker.</p>`;
  const workers = [...rows.entries()].sort(
    (a, b) => Math.min(...a[1].map((x) => x.start)) - Math.min(...b[1].map((x) => x.start)),
  );

  const LABEL_W = 190;
  const ROW_H = 30;
  const BAR_H = 22;
  const top = 10;
  const H = top + workers.length * ROW_H + 40;
  const bottom = top + workers.length * ROW_H;
  const plotW = CHART_W - LABEL_W - PLOT_RIGHT;
  const x = (t: number) => LABEL_W + scale.pos(t) * plotW;
  const origin = Date.parse(m.timings.createdAt);
  const since = (t: number) => t - (Number.isFinite(origin) ? origin : scale.t0);

  let svg = "";
  workers.forEach((_, r) => {
    if (r % 2 === 1)
      svg += `<rect x="0" y="${top + r * ROW_H}" width="${CHART_W}" height="${ROW_H}" class="band"/>`;
  });
  svg += timeAxis(m, scale, x, top, bottom);
  workers.forEach(([worker, bars], r) => {
    const yRow = top + r * ROW_H;
    const name = worker.length > 22 ? `${worker.slice(0, 21)}…` : worker;
    svg += `<text x="${LABEL_W - 10}" y="${yRow + ROW_H / 2}" dy="4" text-anchor="end" class="worker"><title>${esc(worker)}</title>${esc(name)}</text>`;
    for (const b of bars.sort((p, q) => p.start - q.start)) {
      const o = OUTCOMES[b.outcome];
      const xa = x(b.start);
      const w = Math.max(2, x(b.end) - xa);
      const yb = yRow + (ROW_H - BAR_H) / 2;
      const label = b.outcome === "done" ? `p${b.partition}` : `p${b.partition} ${o.mark}`;
      const a = b.attempt;
      const tip = `partition ${b.partition} · ${worker} · epoch ${a.epoch} · ${o.label} · ${at(since(b.start))} to ${at(since(b.end))} (${duration(b.end - b.start)}) · from offset ${int(a.fromOffset)}${a.detail ? ` · ${a.detail}` : ""}`;
      svg += `<g><title>${esc(tip)}</title><rect x="${xa.toFixed(1)}" y="${yb}" width="${w.toFixed(1)}" height="${BAR_H}" rx="3" fill="${o.fill}" class="bar" data-outcome="${b.outcome}" data-partition="${b.partition}" data-epoch="${a.epoch}"/>`;
      // A label only where it fits (≈7 px a character); the tooltip and the table below carry the rest.
      if (w >= label.length * 7.5 + 6) {
        svg += `<text x="${(xa + w / 2).toFixed(1)}" y="${yb + BAR_H / 2}" dy="4" text-anchor="middle" fill="${o.ink}" class="barlabel">${esc(label)}</text>`;
      } else if (b.outcome !== "done") {
        // Too narrow for words, but a bad ending must not hide: label it just right of the bar.
        // (Its worker usually died or left, so nothing follows it on that row.)
        svg += `<text x="${(xa + w + 4).toFixed(1)}" y="${yb + BAR_H / 2}" dy="4" fill="${o.fill}" class="barlabel outside">${esc(label)}</text>`;
      }
      svg += "</g>";
    }
  });
  svg += `<text x="${LABEL_W + plotW / 2}" y="${H - 4}" text-anchor="middle" class="axis">time since the job was created</text>`;

  const used = new Set<OutcomeKey>();
  for (const [, bars] of workers) for (const b of bars) used.add(b.outcome);
  const legend = (Object.keys(OUTCOMES) as OutcomeKey[])
    .map(
      (k) =>
        `<li${used.has(k) ? "" : ' class="unused"'}><span class="swatch" style="background:${OUTCOMES[k].fill};color:${OUTCOMES[k].ink}">${esc(OUTCOMES[k].mark)}</span>${esc(OUTCOMES[k].label)}</li>`,
    )
    .join("");
  return `<ul class="legend" aria-label="Bar colours">${legend}</ul>
<figure><svg role="img" aria-labelledby="tl-title" viewBox="0 0 ${CHART_W} ${H}" width="${CHART_W}" height="${H}" class="chart"><title id="tl-title">${esc(`Partition attempts per worker over time: ${workers.length} workers`)}</title>${svg}</svg>
<figcaption>One row per worker, one bar per attempt at a partition (labelled p&lt;partition&gt;), from its claim to its end; an attempt never ended is drawn to the job's finish.</figcaption></figure>`;
}

// ---------------------------------------------------------------------------
// Tables

function troubleTable(m: Manifest): string {
  const rows: { p: Manifest["partitions"][number]; a: Attempt }[] = [];
  for (const p of m.partitions)
    for (const a of p.attempts) if (a.outcome !== "done") rows.push({ p, a });
  if (rows.length === 0)
    return `<p class="empty">Every attempt ended done: no kills, hand-backs or retries.</p>`;
  rows.sort((x, y) => Date.parse(x.a.startedAt) - Date.parse(y.a.startedAt));
  const t0 = Date.parse(m.timings.createdAt);
  const body = rows
    .map(({ p, a }) => {
      const o = OUTCOMES[outcomeOf(a)];
      const into = p.end > p.start ? ((a.fromOffset - p.start) / (p.end - p.start)) * 100 : 0;
      const resumed =
        a.fromOffset > p.start
          ? `${int(a.fromOffset)} <span class="dim">(${into.toFixed(0)}% in)</span>`
          : `${int(a.fromOffset)} <span class="dim">(start)</span>`;
      const next = p.attempts.find((n) => n.epoch > a.epoch);
      const retried = next
        ? `<code title="${esc(next.worker)}">${esc(next.worker)}</code><br>from ${int(next.fromOffset)}${next.fromOffset > a.fromOffset ? ` <span class="dim">(+${int(next.fromOffset - a.fromOffset)} bytes)</span>` : ""}`
        : `<span class="dim">none</span>`;
      const started = Date.parse(a.startedAt);
      const ended = Date.parse(a.endedAt ?? "");
      return `<tr data-outcome="${outcomeOf(a)}"><td class="num">${p.index}</td><td class="worker-cell"><code title="${esc(a.worker)}">${esc(a.worker)}</code></td><td class="num">${a.epoch}</td><td><span class="pill" style="background:${o.fill};color:${o.ink}">${esc(o.mark)} ${esc(o.short)}</span></td><td class="num">${Number.isFinite(started) ? esc(at(started - t0)) : "—"}</td><td class="num">${Number.isFinite(ended) ? esc(duration(ended - started)) : "—"}</td><td class="num">${resumed}</td><td class="wrap">${esc(a.detail ?? "")}</td><td class="worker-cell">${retried}</td></tr>`;
    })
    .join("\n");
  return `<table><thead><tr><th class="num">partition</th><th>worker</th><th class="num">epoch</th><th>outcome</th><th class="num">started</th><th class="num">lasted</th><th class="num">resumed from offset</th><th>detail</th><th>next attempt</th></tr></thead><tbody>
${body}</tbody></table>`;
}

function errorSection(input: JobReportInput): string {
  const m = input.manifest;
  const grouped = new Map<string, number>();
  for (const [reason, n] of input.errorReasons) {
    const k = normalizeReason(reason);
    grouped.set(k, (grouped.get(k) ?? 0) + n);
  }
  const total = [...grouped.values()].reduce((a, b) => a + b, 0);
  let html = "";
  if (m.counts.errors === 0 && total === 0) {
    html += `<p class="empty">No bad records.</p>`;
  } else {
    const rows = [...grouped.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([reason, n]) => {
        const pct = total > 0 ? (n / total) * 100 : 0;
        return `<tr data-reason-count="${n}"><td class="wrap"><code>${esc(reason)}</code></td><td class="num">${int(n)}</td><td class="num">${pct.toFixed(1)}%</td><td class="barcell"><span class="hbar" style="width:${pct.toFixed(1)}%"></span></td></tr>`;
      })
      .join("\n");
    html += `<h3>Bad records by reason</h3>
<p>${int(m.counts.errors)} bad records in ${int(m.counts.records + m.counts.errors)} (${(m.counts.records + m.counts.errors > 0 ? (m.counts.errors / (m.counts.records + m.counts.errors)) * 100 : 0).toFixed(3)}%). Quoted values are replaced by "…" so records failing the same way group together; every one is in ${sibling(m.errorsOutput.object)}, next to this report.</p>
<table><thead><tr><th>reason</th><th class="num">bad records</th><th class="num">share</th><th class="barcell"><span class="sr">share bar</span></th></tr></thead><tbody>
${rows}</tbody></table>`;
    if (input.errorSamples.length > 0) {
      const samples = input.errorSamples
        .map((s) => {
          const rec =
            s.record === null
              ? `<span class="dim">(not shown: line too long or not text)</span>`
              : `<code>${esc(s.record.length > 240 ? `${s.record.slice(0, 240)}…` : s.record)}</code>`;
          return `<tr><td class="num">${int(s.line)}</td><td class="wrap">${esc(s.reason)}</td><td class="wrap record">${rec}</td></tr>`;
        })
        .join("\n");
      html += `<h3>The first ${input.errorSamples.length} bad records</h3>
<table class="samples"><thead><tr><th class="num">line</th><th>reason</th><th>record</th></tr></thead><tbody>
${samples}</tbody></table>`;
    }
  }
  const failed = m.partitions.filter((p) => p.state === "failed");
  html += `<h3>Failed partitions</h3>`;
  if (failed.length === 0) {
    html += m.partitions.some((p) => p.retryFromEpoch !== undefined)
      ? `<p class="empty">No partition is failed now.</p>`
      : `<p class="empty">No partition failed.</p>`;
  } else {
    const rows = failed
      .map(
        (p) =>
          `<tr data-failed-partition="${p.index}"><td class="num">${p.index}</td><td class="num">${int(p.start)}–${int(p.end)}</td><td class="num">${int(p.records)}</td><td class="num">${p.attempts.length}</td><td class="wrap">${esc(p.lastError ?? "")}</td></tr>`,
      )
      .join("\n");
    html += `<p>Their records are in neither output. Fix the cause, then <code>batch-infer rerun ${esc(m.jobId)} --failed</code> resumes them from their last checkpoint.</p>
<table><thead><tr><th class="num">partition</th><th class="num">byte range</th><th class="num">records committed</th><th class="num">attempts</th><th>last error</th></tr></thead><tbody>
${rows}</tbody></table>`;
  }
  html += earlierFailures(m);
  return html;
}

/** Partitions that failed in an earlier run and were put back by `rerun --failed`. */
function earlierFailures(m: Manifest): string {
  const rerun = m.partitions.filter((p) => p.retryFromEpoch !== undefined);
  if (rerun.length === 0) return "";
  const rows = rerun
    .map((p) => {
      const before = p.attempts.filter((a) => a.epoch <= (p.retryFromEpoch ?? 0));
      const last = before.at(-1);
      const now = p.state === "done" ? "done" : p.state === "failed" ? "failed again" : p.state;
      return `<tr data-earlier-failed-partition="${p.index}"><td class="num">${p.index}</td><td class="num">${int(p.start)}–${int(p.end)}</td><td class="num">${before.length}</td><td class="wrap">${esc(last?.detail ?? last?.outcome ?? "")}</td><td>${esc(now)}</td></tr>`;
    })
    .join("\n");
  return `<h3>Failed in an earlier run, then rerun</h3>
<p>These partitions had failed when <code>rerun ${esc(m.jobId)} --failed</code> put them back (this is run ${m.runAttempt}); they resumed from their last checkpoint.</p>
<table><thead><tr><th class="num">partition</th><th class="num">byte range</th><th class="num">attempts before the rerun</th><th>how the last one ended</th><th>now</th></tr></thead><tbody>
${rows}</tbody></table>`;
}

// ---------------------------------------------------------------------------
// The document

const STATUS_STYLE: Record<string, { bg: string; fg: string; border: string }> = {
  completed: { bg: "#e3f1e6", fg: "#14532d", border: "#1b7837" },
  completed_with_errors: { bg: "#fff3df", fg: "#6b3a00", border: "#b35806" },
  failed: { bg: "#fde8e8", fg: "#7f1d1d", border: "#b2182b" },
};

const CSS = `
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1a1a1a;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid #e5e5e5}
h3{font-size:15px;margin:20px 0 6px}
a code{text-decoration:underline}
code{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;border:1.5px solid;font-weight:600;font-size:13px;vertical-align:middle;margin-left:8px}
.message{margin:8px 0 0;padding:8px 12px;border-left:4px solid;border-radius:2px}
.facts{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:12px;margin:16px 0 0}
.card{border:1px solid #dedede;border-radius:6px;padding:10px 12px}
.card h3{margin:0 0 6px;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#555}
dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:2px 10px}
dt{color:#555}
dd{margin:0;overflow-wrap:anywhere}
.big{font-size:20px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0 0}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e5e5e5;vertical-align:top}
th{background:#f4f4f4;font-weight:600;font-size:13px}
tbody tr:nth-child(even){background:#fafafa}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.wrap{overflow-wrap:anywhere}
.worker-cell{white-space:nowrap}
.worker-cell code{display:inline-block;max-width:13em;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom}
.record code{white-space:pre-wrap;word-break:break-all}
.samples td:nth-child(2){width:30%}
.dim{color:#666}
.empty{color:#444;font-style:italic}
.note{color:#555;font-size:13px}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12.5px;white-space:nowrap}
.barcell{width:22%}
.hbar{display:block;height:12px;background:#6b6b6b;border-radius:2px;min-width:1px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
figure{margin:8px 0 0}
figcaption{color:#444;font-size:13px;margin-top:4px}
.chart{display:block;max-width:100%;height:auto;font-family:system-ui,"DejaVu Sans",sans-serif}
.chart .grid{stroke:#e3e3e3;stroke-width:1}
.chart .tick{font-size:11px;fill:#444}
.chart .axis{font-size:12px;fill:#333}
.chart .area{fill:#2166ac;fill-opacity:.18}
.chart .line{fill:none;stroke:#2166ac;stroke-width:2}
.chart .hit{fill:transparent}
.chart .gapband{fill:#f3f3f3}
.chart .gapmark{fill:none;stroke:#666;stroke-width:1.5}
.chart .gaplabel{font-size:11px;fill:#555}
.chart .marker{stroke-width:1.5;stroke-dasharray:4 3}
.chart .mark{font-size:14px;font-weight:700}
.chart .outside{font-weight:700;paint-order:stroke;stroke:#fff;stroke-width:3px}
.chart .band{fill:#f6f6f6}
.chart .worker{font-size:12px;fill:#222;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.chart .bar{stroke:#fff;stroke-width:1}
.chart .barlabel{font-size:11.5px;font-weight:600}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 18px;padding:0;margin:4px 0 8px}
.legend li{display:flex;align-items:center;gap:6px}
.legend li.unused{color:#888}
.swatch{display:inline-block;width:22px;height:16px;border-radius:3px;text-align:center;font-size:12px;line-height:16px;font-weight:700}
footer{margin-top:36px;color:#666;font-size:12px;border-top:1px solid #e5e5e5;padding-top:8px}
`;

/** An output named relative to the report (they share a folder), linked so it opens from it. */
function sibling(object: string): string {
  const name = object.slice(object.lastIndexOf("/") + 1);
  return `<a href="${esc(encodeURIComponent(name))}"><code>${esc(name)}</code></a>`;
}

function card(title: string, rows: [string, string][]): string {
  return `<div class="card"><h3>${esc(title)}</h3><dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl></div>`;
}

/**
 * Render a job's report as one self-contained HTML document (inline CSS and
 * SVG, no scripts, no external assets). Every string from data (record text,
 * reasons, names, worker ids) is escaped.
 */
export function renderJobReport(input: JobReportInput): string {
  const m = input.manifest;
  const layout = jobLayout(m);
  const scale = jobTimeScale(m);
  const style = STATUS_STYLE[m.status] ?? { bg: "#eee", fg: "#222", border: "#666" };
  // Idle gaps (between runs) are not the job's working time: duration and throughput leave them out.
  const activeMs = scale.gaps.length > 0 ? scale.activeMs : m.timings.durationMs;
  const secs = activeMs / 1000;
  const rate = secs > 0 ? m.counts.records / secs : 0;
  const rerun = m.partitions.filter((p) => p.retryFromEpoch !== undefined);
  const failed = m.counts.failedPartitions;
  const attempts = m.partitions.reduce((n, p) => n + p.attempts.length, 0);
  const retried = m.partitions.filter((p) => p.attempts.length > 1).length;
  const workerCount = new Set(m.partitions.flatMap((p) => p.attempts.map((a) => a.worker))).size;

  const header = `<header>
<h1>Job report <span class="badge" data-status="${esc(m.status)}" style="background:${style.bg};color:${style.fg};border-color:${style.border}">${esc(m.status.replaceAll("_", " "))}</span></h1>
<div><code>${esc(m.jobId)}</code>${m.runAttempt > 1 ? ` <span class="dim">run ${m.runAttempt}</span>` : ""}</div>
${m.message ? `<p class="message" style="background:${style.bg};color:${style.fg};border-color:${style.border}">${esc(m.message)}</p>` : ""}
</header>`;

  const facts = `<section id="summary" aria-label="Summary"><div class="facts">
${card("Records", [
  ["scored", `<span class="big">${int(m.counts.records)}</span>`],
  ["bad records", `<span class="big">${int(m.counts.errors)}</span>`],
  [
    "partitions",
    `${int(m.counts.partitions)} (${int(attempts)} attempts, ${int(retried)} retried, ${int(workerCount)} workers)`,
  ],
  [
    "failed partitions",
    `${failed.length === 0 ? "none" : `<strong>${esc(failed.join(", "))}</strong>`}${rerun.length > 0 ? ` <span class="dim">(failed in an earlier run and rerun: ${esc(rerun.map((p) => p.index).join(", "))})</span>` : ""}`,
  ],
])}
${card("Time", [
  ["duration", `<span class="big">${esc(duration(activeMs))}</span>`],
  ...(scale.gaps.length > 0
    ? ([
        [
          "idle",
          `${esc(duration(scale.idleMs))} with no partition in progress (e.g. between runs), not counted`,
        ],
      ] as [string, string][])
    : []),
  ["throughput", `<span class="big">${esc(compact(rate))}</span> records/s overall`],
  ["created", esc(utc(m.timings.createdAt))],
  ["finished", esc(utc(m.timings.finishedAt))],
])}
${card("Input and model", [
  ["input", `<code>${esc(`${m.input.bucket}/${m.input.object}`)}</code>`],
  ["size", esc(`${bytes(m.input.size)}, ${m.input.format}`)],
  ["etag", `<code>${esc(m.input.etag)}</code>`],
  ["model", `<code>${esc(`${m.model.name}@${m.model.version}`)}</code>`],
  [
    "model sha256",
    `<code title="${esc(m.model.sha256)}">${esc(m.model.sha256.slice(0, 16))}…</code>`,
  ],
])}
</div>
${card("Outputs", [
  [
    "predictions",
    m.output
      ? `${sibling(m.output.object)} · ${esc(bytes(m.output.bytes))} · sha256 <code>${esc(m.output.sha256)}</code>`
      : `<span class="dim">not written (the job failed)</span>`,
  ],
  [
    "errors",
    `${sibling(m.errorsOutput.object)} · ${esc(bytes(m.errorsOutput.bytes))} · sha256 <code>${esc(m.errorsOutput.sha256)}</code>`,
  ],
  ["manifest", sibling(layout.manifest)],
])}
<p class="note">The outputs sit next to this report, wherever it is: in the output bucket under <code>${esc(`${layout.bucket}/${layout.root}/`)}</code>, and in the directory <code>run --output DIR</code> placed them in.</p>
</section>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(`Job report: ${m.jobId} (${m.status})`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${header}
${facts}
<section id="throughput"><h2>Throughput over time</h2>
${throughputChart(m, scale)}
</section>
<section id="timeline"><h2>Partition timeline per worker</h2>
${timeline(m, scale)}
<h3>Attempts that did not end done</h3>
${troubleTable(m)}
</section>
<section id="errors"><h2>Errors</h2>
${errorSection(input)}
</section>
<footer>Written by the merger when the job finished (${esc(utc(m.timings.finishedAt))}). Input ${esc(`${m.input.bucket}/${m.input.object}`)}, partitions of ${esc(bytes(m.spec.partitionBytes))}, a checkpoint every ${int(m.spec.checkpointEvery)} records, at most ${int(m.spec.maxAttempts)} attempts per partition.</footer>
</main>
</body>
</html>
`;
}
