/**
 * The job report's time axis. A job's life may hold long stretches where
 * nothing ran: between a run that ended completed_with_errors and its
 * `rerun --failed`, between a stopped `run` and the next, between `submit` and
 * `resume`. Those *idle gaps* are cut out of the charts (drawn as a narrow
 * break) and out of the active duration the throughput is measured over.
 */
import type { Manifest } from "./manifest.ts";

/** A stretch with no partition in progress longer than this is an idle gap. */
export const IDLE_GAP_MS = 30_000;

/** [t0, t1] in epoch ms. */
export interface Interval {
  t0: number;
  t1: number;
}

/** The job's time as the charts draw it. */
export interface TimeScale {
  /** First and last moment seen. */
  t0: number;
  t1: number;
  /** Stretches with work in progress (or shorter pauses), in order. */
  segments: Interval[];
  /** Idle gaps between segments, cut out of the axis. */
  gaps: Interval[];
  /** Sum of the segments' lengths. */
  activeMs: number;
  /** Sum of the gaps' lengths. */
  idleMs: number;
  /** Where `t` falls across the plot, 0..1 (a gap is a narrow break). */
  pos(t: number): number;
}

/** Display width of one break, as a fraction of the active time. */
const BREAK_SHARE = 0.04;

/** Intervals when something happened: attempts (open ones to the finish), commits, creation, finish. */
function busyIntervals(m: Manifest): Interval[] {
  const created = Date.parse(m.timings.createdAt);
  const finished = Date.parse(m.timings.finishedAt);
  const out: Interval[] = [];
  const point = (t: number) => {
    if (Number.isFinite(t)) out.push({ t0: t, t1: t });
  };
  point(created);
  point(finished);
  for (const p of m.partitions) {
    for (const a of p.attempts) {
      const s = Date.parse(a.startedAt);
      if (!Number.isFinite(s)) continue;
      const e = Date.parse(a.endedAt ?? "");
      const end = Number.isFinite(e) ? e : Number.isFinite(finished) ? finished : s;
      out.push({ t0: s, t1: Math.max(s, end) });
    }
    for (const r of p.parts) point(Date.parse(r.committedAt ?? ""));
  }
  return out.sort((a, b) => a.t0 - b.t0 || a.t1 - b.t1);
}

/** The job's time scale: active segments and the idle gaps between them. */
export function jobTimeScale(m: Manifest, idleGapMs = IDLE_GAP_MS): TimeScale {
  const busy = busyIntervals(m);
  const segments: Interval[] = [];
  for (const b of busy) {
    const last = segments.at(-1);
    if (last && b.t0 - last.t1 <= idleGapMs) last.t1 = Math.max(last.t1, b.t1);
    else segments.push({ ...b });
  }
  if (segments.length === 0) segments.push({ t0: 0, t1: 0 });
  const gaps: Interval[] = [];
  for (let i = 1; i < segments.length; i++) {
    gaps.push({ t0: (segments[i - 1] as Interval).t1, t1: (segments[i] as Interval).t0 });
  }
  const activeMs = segments.reduce((n, s) => n + (s.t1 - s.t0), 0);
  const idleMs = gaps.reduce((n, g) => n + (g.t1 - g.t0), 0);
  const breakU = Math.max(activeMs, 1) * BREAK_SHARE;
  const total = activeMs + gaps.length * breakU;
  // u: display units, active ms plus a fixed width per break.
  const starts: number[] = [];
  let u = 0;
  for (const s of segments) {
    starts.push(u);
    u += s.t1 - s.t0 + breakU;
  }
  const pos = (t: number): number => {
    if (total <= 0) return 0;
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i] as Interval;
      const at = starts[i] as number;
      if (t <= s.t1 || i === segments.length - 1) {
        if (t < s.t0) {
          // Inside the gap before this segment: across the break.
          const g = gaps[i - 1];
          if (!g) return 0;
          const f = g.t1 > g.t0 ? (t - g.t0) / (g.t1 - g.t0) : 1;
          return (at - breakU + f * breakU) / total;
        }
        return Math.min(1, (at + Math.min(t, s.t1) - s.t0) / total);
      }
    }
    return 1;
  };
  return {
    t0: (segments[0] as Interval).t0,
    t1: (segments.at(-1) as Interval).t1,
    segments,
    gaps,
    activeMs,
    idleMs,
    pos,
  };
}

/** Tick spacing for a time axis: a round number of ms, s, min or h giving about `target` ticks. */
const TIME_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000,
  300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
  86_400_000,
];

function timeStep(span: number, target = 10): number {
  return (
    TIME_STEPS.find((s) => s >= span / target) ?? Math.ceil(span / target / 86_400_000) * 86_400_000
  );
}

/** An axis label for `ms` after the start, as precise as the tick spacing needs. */
export function timeLabel(ms: number, step: number): string {
  if (ms === 0) return "0";
  if (step < 1000) return `${(ms / 1000).toFixed(step >= 100 ? 1 : step >= 10 ? 2 : 3)}s`;
  if (step < 60_000 && ms < 60_000) return `${Math.round(ms / 1000)}s`;
  const s = Math.round(ms / 1000);
  if (step < 60_000 && s >= 3600) {
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
    return `${Math.floor(s / 3600)}h${mm}m${String(s % 60).padStart(2, "0")}s`;
  }
  if (step < 60_000) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  if (step < 3_600_000 && m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}`;
}

/**
 * Ticks for the scale: per segment, at round multiples of a step chosen for
 * the active time, labelled as time since `origin` (the job's creation), so a
 * label after a break tells how long the break was.
 */
export function timeTicks(
  scale: TimeScale,
  origin: number,
  target = 10,
): { t: number; label: string }[] {
  const step = timeStep(Math.max(1, scale.activeMs), target);
  const ticks: { t: number; label: string }[] = [];
  for (const s of scale.segments) {
    const first = Math.ceil((s.t0 - origin) / step) * step;
    for (let ms = first; origin + ms <= s.t1 + 1e-9; ms += step) {
      ticks.push({ t: origin + ms, label: timeLabel(ms, step) });
    }
  }
  // A segment too short to hold a round tick still gets its start labelled.
  for (const s of scale.segments) {
    if (!ticks.some((k) => k.t >= s.t0 && k.t <= s.t1)) {
      ticks.push({ t: s.t0, label: timeLabel(s.t0 - origin, Math.min(step, 1000)) });
    }
  }
  return ticks.sort((a, b) => a.t - b.t);
}

/**
 * Records per interval: each committed chunk's records spread evenly over the
 * time its worker spent on them (from the attempt's claim or its previous
 * commit to this commit), so a job of a few large chunks draws a plateau over
 * the work instead of one spike at each commit. Chunks whose attempt is
 * unknown count at their commit time.
 */
export function spreadCommits(
  m: Manifest,
  buckets: Interval[],
): { counts: number[]; dated: number; undated: number; undatedRecords: number } {
  const counts = new Array<number>(buckets.length).fill(0);
  let dated = 0;
  let undated = 0;
  let undatedRecords = 0;
  const add = (t0: number, t1: number, records: number) => {
    if (t1 <= t0) {
      const i = buckets.findIndex((b) => t0 >= b.t0 && t0 <= b.t1);
      const at = i >= 0 ? i : nearest(buckets, t0);
      counts[at] = (counts[at] ?? 0) + records;
      return;
    }
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i] as Interval;
      const overlap = Math.min(t1, b.t1) - Math.max(t0, b.t0);
      if (overlap > 0) counts[i] = (counts[i] ?? 0) + (records * overlap) / (t1 - t0);
    }
  };
  for (const p of m.partitions) {
    const previous = new Map<number, number>();
    for (const r of [...p.parts].sort((a, b) => a.seq - b.seq)) {
      const t = Date.parse(r.committedAt ?? "");
      if (!Number.isFinite(t)) {
        undated++;
        undatedRecords += r.records;
        continue;
      }
      dated++;
      const claim = Date.parse(p.attempts.find((a) => a.epoch === r.epoch)?.startedAt ?? "");
      const from = previous.get(r.epoch) ?? (Number.isFinite(claim) && claim <= t ? claim : t);
      add(from, t, r.records);
      previous.set(r.epoch, t);
    }
  }
  return { counts, dated, undated, undatedRecords };
}

function nearest(buckets: Interval[], t: number): number {
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  buckets.forEach((b, i) => {
    const d = Math.min(Math.abs(t - b.t0), Math.abs(t - b.t1));
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

/** About `n` buckets over the active segments (at least one per segment), never across a gap. */
export function activeBuckets(scale: TimeScale, n = 40): Interval[] {
  const out: Interval[] = [];
  for (const s of scale.segments) {
    const len = s.t1 - s.t0;
    const k = Math.max(1, Math.round((n * len) / Math.max(1, scale.activeMs)));
    for (let i = 0; i < k; i++) {
      out.push({ t0: s.t0 + (len * i) / k, t1: s.t0 + (len * (i + 1)) / k });
    }
  }
  return out;
}
