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
import type { Attempt } from "../core/records.ts";
import { jobLayout } from "./layout.ts";
import type { Manifest } from "./manifest.ts";
import { OUTCOMES, outcomeOf, throughputChart, timeline } from "./report-charts.ts";
import { at, bytes, compact, duration, esc, int, utc } from "./report-format.ts";
import { jobTimeScale } from "./report-time.ts";

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
