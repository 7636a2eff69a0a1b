/**
 * The HTML job report: its sections, one bar per attempt coloured and marked by
 * outcome, grouped error reasons, escaping of hostile input, degenerate jobs,
 * and that a real job writes report.html next to its output. (Rendering in a
 * browser is checked by `scripts/check-report.ts`, not here: CI has no Chromium.)
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Manifest } from "../src/pipeline/manifest.ts";
import { ErrorTally, normalizeReason, renderJobReport } from "../src/pipeline/report.ts";
import {
  churnModel,
  customerCsv,
  objectFile,
  readOutputs,
  runJob,
  tempDir,
} from "./helpers/pipeline-fixture.ts";
import {
  HOSTILE_WORKER,
  syntheticReportInput,
  syntheticRerunManifest,
} from "./helpers/report-fixture.ts";

/** Values of `attr` on `<rect` elements that carry it. */
function rectAttr(html: string, attr: string): string[] {
  return [...html.matchAll(new RegExp(`<rect[^>]*\\s${attr}="([^"]*)"`, "g"))].map(
    (m) => m[1] ?? "",
  );
}

describe("job report rendering", () => {
  const input = syntheticReportInput();
  const html = renderJobReport(input);

  it("is one self-contained HTML document with every section", () => {
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<\/html>\s*$/);
    for (const id of ["summary", "throughput", "timeline", "errors"]) {
      assert.match(html, new RegExp(`<section id="${id}"`), `section ${id}`);
    }
    assert.match(html, /Throughput over time/);
    assert.match(html, /Partition timeline per worker/);
    // No scripts, no external assets: nothing is fetched.
    assert.doesNotMatch(html, /<script/i);
    // (Attribute values are blanked first: escaped hostile text may say "src=" inside a title.)
    assert.doesNotMatch(html.replace(/"[^"]*"/g, '""'), /<[a-z][^>]*\s(src)=/i);
    // The only links are to the outputs next to the report (followed by a person, never fetched).
    const hrefs = [...html.matchAll(/<a href="([^"]*)"/g)].map((x) => x[1]);
    assert.deepEqual(hrefs, ["predictions.jsonl", "errors.jsonl", "manifest.json", "errors.jsonl"]);
    assert.equal(html.match(/\shref=/g)?.length, hrefs.length);
    assert.doesNotMatch(html, /url\(/i);
    assert.doesNotMatch(html, /NaN|Infinity|undefined/);
  });

  it("header: id, status badge, input, model, counts, outputs", () => {
    const m = input.manifest;
    assert.match(html, new RegExp(m.jobId));
    assert.match(html, /data-status="completed_with_errors"[^>]*>completed with errors</);
    assert.match(html, /customers &lt;2026&gt;\.csv/);
    assert.match(html, /churn-logreg@1/);
    assert.match(html, /ffffffffffffffff…/);
    assert.match(html, /42,000/);
    assert.match(html, /<strong>3, 5<\/strong>/);
    assert.match(html, /1 m 00 s/);
    assert.match(html, /700<\/span> records\/s overall/);
    assert.ok(html.includes(m.output?.sha256 ?? "-"));
    assert.ok(html.includes(m.errorsOutput.sha256));
    // Outputs are named relative to the report (they share its folder in the bucket and in --output).
    assert.match(html, /<a href="manifest\.json"><code>manifest\.json<\/code><\/a>/);
    assert.match(html, /under <code>output\/jobs\/job-0123456789abcdef01234567\/<\/code>/);
    assert.doesNotMatch(html, /output\/jobs\/job-0123456789abcdef01234567\/predictions/);
  });

  it("draws one bar per attempt, with its outcome and partition", () => {
    const attempts = input.manifest.partitions.flatMap((p) =>
      p.attempts.map((a) => ({ p: p.index, outcome: a.outcome ?? "open" })),
    );
    const outcomes = rectAttr(html, "data-outcome");
    assert.equal(outcomes.length, attempts.length);
    assert.deepEqual(
      [...outcomes].sort(),
      attempts.map((a) => a.outcome).sort(),
      "one bar per attempt, each with its outcome",
    );
    assert.deepEqual(
      rectAttr(html, "data-partition").map(Number).sort(),
      attempts.map((a) => a.p).sort(),
    );
    // One row per worker, the hostile one escaped.
    for (const w of ["w-a", "w-b", "w-c"]) assert.match(html, new RegExp(`class="worker">.*${w}<`));
    assert.ok(html.includes("w-&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"));
    assert.ok(!html.includes(HOSTILE_WORKER));
    // Legend words for every outcome: colour is never the only cue.
    for (const words of ["lost (killed or stalled)", "handed back", "error", "still open at merge"])
      assert.ok(html.includes(words), words);
  });

  it("lists attempts that did not end done, with where they resumed from", () => {
    const rows = [...html.matchAll(/<tr data-outcome="([a-z_]+)">/g)].map((m) => m[1]);
    assert.deepEqual(rows.sort(), ["error", "error", "handed_back", "lost", "lost", "open"]);
    assert.match(html, /3,100,000 <span class="dim">\(10% in\)<\/span>/);
    assert.match(html, /worker stopping \(preemption or scale-down\)/);
  });

  it("throughput: a curve from commit times, undated parts noted, kill markers", () => {
    assert.match(html, /class="area"/);
    assert.equal(rectAttr(html, "data-bucket").length, 40);
    assert.match(html, /1 committed chunks \(2,000 records\) carry no commit time/);
    assert.equal([...html.matchAll(/<g class="event" data-outcome="lost"/g)].length, 2);
  });

  it("error summary: reasons grouped without their values, samples, failed partitions", () => {
    assert.match(
      html,
      /column age: &quot;…&quot; is not a number<\/code><\/td><td class="num">5</,
      "x and y group together",
    );
    assert.match(html, /expected 20 fields, got 3<\/code><\/td><td class="num">4</);
    assert.match(html, /The first 4 bad records/);
    assert.match(html, /<td class="num">43<\/td>/);
    assert.ok(html.includes("C0000042,&lt;script&gt;alert(1)&lt;/script&gt;,yes"));
    assert.ok(html.includes("weird &lt;script&gt;alert(3)&lt;/script&gt; reason"));
    assert.match(html, /data-failed-partition="3"/);
    assert.match(html, /data-failed-partition="5"/);
    assert.ok(html.includes("last error: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert.ok(html.includes("onnxruntime: &lt;b&gt;out of memory&lt;/b&gt;"));
  });

  it("a clean job says so instead of drawing empty tables", () => {
    const m = input.manifest;
    const clean: Manifest = {
      ...m,
      status: "completed",
      counts: { ...m.counts, errors: 0, failedPartitions: [] },
      partitions: m.partitions
        .filter((p) => p.index === 0)
        .map((p) => ({ ...p, state: "done" as const })),
    };
    delete clean.message;
    const out = renderJobReport({ manifest: clean, errorReasons: new Map(), errorSamples: [] });
    assert.match(out, /data-status="completed"/);
    assert.match(out, /No bad records\./);
    assert.match(out, /No partition failed\./);
    assert.match(out, /Every attempt ended done/);
    assert.equal(rectAttr(out, "data-outcome").length, 1);
  });

  it("a zero-duration job, parts without commit times and no attempts render without NaN", () => {
    const m = input.manifest;
    const instant: Manifest = {
      ...m,
      timings: { createdAt: m.timings.createdAt, finishedAt: m.timings.createdAt, durationMs: 0 },
      partitions: m.partitions.map((p) => ({
        ...p,
        attempts: p.attempts.map((a) => ({
          ...a,
          startedAt: m.timings.createdAt,
          endedAt: m.timings.createdAt,
        })),
        parts: p.parts.map((r) => ({ ...r, committedAt: m.timings.createdAt })),
      })),
    };
    const zero = renderJobReport({ manifest: instant, errorReasons: new Map(), errorSamples: [] });
    assert.match(zero, /within the same millisecond/);
    assert.doesNotMatch(zero, /NaN|Infinity/);
    assert.equal(
      rectAttr(zero, "data-outcome").length,
      m.partitions.reduce((n, p) => n + p.attempts.length, 0),
    );

    const bare: Manifest = {
      ...m,
      partitions: m.partitions.map((p) => ({
        ...p,
        attempts: [],
        parts: p.parts.map(({ committedAt: _c, worker: _w, ...r }) => r),
      })),
    };
    const none = renderJobReport({ manifest: bare, errorReasons: new Map(), errorSamples: [] });
    assert.match(none, /No committed chunk has a commit time/);
    assert.match(none, /No partition was ever claimed/);
    assert.doesNotMatch(none, /NaN|Infinity/);
  });

  it("normalizes reasons and bounds what the tally keeps", () => {
    assert.equal(
      normalizeReason('column plan: "pla\\"tinum" is not one of its 3 categories'),
      'column plan: "…" is not one of its 3 categories',
    );
    assert.equal(
      normalizeReason("invalid JSON: Unexpected token } in JSON at position 17"),
      "invalid JSON: Unexpected token } in JSON at position N",
    );
    const tally = new ErrorTally(2);
    for (let i = 0; i < 5; i++) tally.add(i + 2, `column age: "v${i}" is not a number`, `r${i}`);
    assert.deepEqual([...tally.reasons], [['column age: "…" is not a number', 5]]);
    assert.deepEqual(
      tally.samples.map((s) => s.line),
      [2, 3],
    );
  });
});

/** Records/s of each throughput bucket, read back from the chart's tooltips. */
function bucketRates(html: string): number[] {
  return [...html.matchAll(/data-bucket="\d+"><title>[^<]*?\(([\d.]+)(k|M|G)? records\/s\)/g)].map(
    (x) => Number(x[1]) * ({ k: 1e3, M: 1e6, G: 1e9 }[x[2] ?? ""] ?? 1),
  );
}

describe("job report over time: small jobs and reruns", () => {
  const T0 = Date.parse("2026-03-01T12:00:00.000Z");
  const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
  const base = syntheticReportInput().manifest;
  const part = (seq: number, epoch: number, records: number, at: number) => ({
    seq,
    epoch,
    records,
    bytes: records * 60,
    sha256: "ab".repeat(32),
    committedAt: iso(at),
    worker: "w-a",
  });

  it("a small job (one chunk per partition) draws a plateau over the work, not one spike", () => {
    const small: Manifest = {
      ...base,
      status: "completed",
      counts: { ...base.counts, records: 3000, errors: 0, partitions: 2, failedPartitions: [] },
      timings: { createdAt: iso(0), finishedAt: iso(2.2), durationMs: 2200 },
      partitions: [0, 1].map((index) => ({
        index,
        start: index * 1000,
        end: (index + 1) * 1000,
        state: "done" as const,
        records: 1500,
        errors: 0,
        lines: 1500,
        attempts: [
          {
            epoch: 1,
            worker: `w-${index}`,
            startedAt: iso(0.1),
            endedAt: iso(2),
            outcome: "done" as const,
            fromOffset: index * 1000,
          },
        ],
        parts: [part(0, 1, 1500, 2)],
      })),
    };
    delete small.message;
    const html = renderJobReport({ manifest: small, errorReasons: new Map(), errorSamples: [] });
    const rates = bucketRates(html);
    assert.equal(rates.length, 40);
    // Both chunks were worked on from 0.1 s to 2 s: every bucket in there has the same rate.
    const busy = rates.filter((r) => r > 0);
    assert.ok(busy.length >= 30, `buckets with work: ${busy.length}`);
    // Inside the span (edge buckets overlap it only in part): 3,000 records over 1.9 s.
    for (const r of busy.slice(1, -1)) assert.ok(Math.abs(r - 3000 / 1.9) < 20, `rate ${r}`);
    assert.doesNotMatch(html, /NaN|Infinity/);
  });

  it("after a rerun: the idle gap is cut from the axis, the duration and the throughput; run 1's failure is listed", () => {
    const rerun = syntheticRerunManifest();
    const html = renderJobReport({ manifest: rerun, errorReasons: new Map(), errorSamples: [] });
    // About 15.5 s of work, not an hour; 20,000 records over it.
    assert.match(html, /<dt>duration<\/dt><dd><span class="big">15\.5 s<\/span>/);
    assert.match(html, /<dt>idle<\/dt><dd>1 h 00 m with no partition in progress/);
    assert.match(html, /<span class="big">1\.29k<\/span> records\/s overall/);
    // One break on each time axis (throughput and timeline), for the idle hour.
    const gaps = [...html.matchAll(/<g class="gap" data-idle-ms="(\d+)"/g)].map((x) =>
      Number(x[1]),
    );
    assert.deepEqual(gaps, [3_600_000, 3_600_000]);
    // Every bar and bucket lies on the chart, none squeezed into the break.
    const bars = [...html.matchAll(/<rect x="([\d.]+)"[^>]*width="([\d.]+)"[^>]*class="bar"/g)];
    assert.equal(bars.length, 4);
    for (const b of bars) assert.ok(Number(b[2]) >= 2, `bar width ${b[2]}`);
    assert.equal(bucketRates(html).filter((r) => r > 0).length >= 30, true);
    // Run 1's failure is still told, with how its last attempt ended.
    assert.match(html, /Failed in an earlier run, then rerun/);
    assert.match(
      html,
      /<tr data-earlier-failed-partition="1"><td class="num">1<\/td><td class="num">1,000–2,000<\/td><td class="num">2<\/td><td class="wrap">STORE_UNAVAILABLE: disk on fire<\/td><td>done<\/td><\/tr>/,
    );
    assert.match(html, /failed in an earlier run and rerun: 1/);
    assert.doesNotMatch(html, /NaN|Infinity/);
  });
});

describe("job report from a real job", () => {
  let root: Awaited<ReturnType<typeof tempDir>>;
  let descriptor: string;
  before(async () => {
    root = await tempDir();
    descriptor = await churnModel();
  });
  after(() => root.cleanup());

  it("the merger writes report.html next to the output, with the job's bad records", async () => {
    const clean = await customerCsv(root.dir, 3000);
    const lines = (await readFile(clean, "utf8")).split("\n");
    // Two bad ages and one hostile record: the report groups the first two and escapes the third.
    for (const [i, age] of [
      [10, "forty"],
      [20, "fifty"],
      [30, "<script>alert(1)</script>"],
    ] as const) {
      lines[i] = (lines[i] ?? "").replace(/^(C\d+),\d+,/, `$1,${age},`);
    }
    const input = path.join(root.dir, "with-bad.csv");
    await writeFile(input, lines.join("\n"));
    const dataDir = path.join(root.dir, "state");
    const { job } = await runJob({
      dataDir,
      inputFile: input,
      descriptor,
      spec: { partitionBytes: 64 * 1024, checkpointEvery: 500, batchSize: 256 },
    });
    assert.equal(job.state, "completed", job.error);
    const r = job.result;
    assert.ok(r?.report, "the job result names its report");
    assert.equal(path.dirname(r.report.object), path.dirname(r.output.object));
    assert.equal(path.basename(r.report.object), "report.html");
    const file = objectFile(dataDir, r.report.bucket, r.report.object);
    assert.ok(existsSync(file), file);
    const html = await readFile(file, "utf8");
    assert.ok(html.includes(job.jobId));
    assert.match(html, /data-status="completed"/);
    assert.match(html, /class="area"/, "parts carry commit times: a throughput curve");
    const partitions = html.match(/<rect[^>]*data-outcome="done"/g)?.length ?? 0;
    assert.ok(partitions >= 2, `a bar per attempt (${partitions})`);
    assert.match(html, /column age: &quot;…&quot; is not a number<\/code><\/td><td class="num">3</);
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.doesNotMatch(html, /<script/i);
    // The samples carry the errors output's line numbers (the header is line 1).
    const { errorRows } = await readOutputs(dataDir, job);
    assert.deepEqual(
      errorRows.map((e) => e.line),
      [11, 21, 31],
    );
    for (const e of errorRows) assert.match(html, new RegExp(`<td class="num">${e.line}</td>`));
  });
});
