/**
 * The job report's charts, inline SVG: throughput over time and the partition
 * timeline per worker, on the report's time scale (idle gaps cut out), with each
 * attempt's outcome in a colour-blind-safe fill, a symbol and words.
 */
import type { Attempt } from "../core/records.ts";
import type { Manifest } from "./manifest.ts";
import { at, compact, duration, esc, int, niceStep } from "./report-format.ts";
import {
  activeBuckets,
  type Interval,
  spreadCommits,
  type TimeScale,
  timeTicks,
} from "./report-time.ts";

// ---------------------------------------------------------------------------
// Outcomes: colour-blind-safe fills, each with a symbol and words, so colour is never the only cue.

/** How an attempt ended, or "open" when it had not when the job was merged. */
export type OutcomeKey = NonNullable<Attempt["outcome"]> | "open";

/** Each outcome's words, fill, ink and symbol. */
export const OUTCOMES: Record<
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

/** The outcome of an attempt ({@link OutcomeKey}). */
export function outcomeOf(a: Attempt): OutcomeKey {
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

/** Records committed per time bucket, as an SVG bar chart on the report's time scale. */
export function throughputChart(m: Manifest, scale: TimeScale): string {
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

/** Every partition attempt as a bar in its worker's lane, coloured by outcome, as SVG. */
export function timeline(m: Manifest, scale: TimeScale): string {
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
