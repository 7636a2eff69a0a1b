/**
 * Check that a job report renders in a real browser: render (or find) a job's
 * report.html and take a headless Chromium screenshot of it.
 *
 *   tsx scripts/check-report.ts                                # a fresh small demo job (bad records, a kill, a hand-back)
 *   tsx scripts/check-report.ts --data-dir .batch-infer --job JOB_ID
 *   tsx scripts/check-report.ts --synthetic                    # the test suite's synthetic job (failed partitions, hostile strings)
 *   tsx scripts/check-report.ts --synthetic-rerun              # a job rerun after an idle hour (the gap cut, run 1's failure listed)
 *   options: --install (apt-get install chromium if missing), --out DIR, --rows N, --workers N
 *
 * Prints the report's and the screenshot's paths. Exits 1 when Chromium fails to
 * render; without Chromium (and without --install) it says so and exits 0, since
 * the report itself was still written. The test suite never needs Chromium.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { writeDataset } from "../src/model/datasets.ts";
import { jobLayout } from "../src/pipeline/layout.ts";
import type { Manifest } from "../src/pipeline/manifest.ts";
import { ErrorTally, renderJobReport } from "../src/pipeline/report.ts";
import { runLocalJob } from "../src/runner/local-runner.ts";
import { type LocalPipeline, localPaths, openLocalPipeline } from "../src/runner/local-stores.ts";
import type { ProcessPool } from "../src/runner/process-pool.ts";
import { syntheticReportInput, syntheticRerunManifest } from "../test/helpers/report-fixture.ts";
import { trainChurnModel } from "./train-model.ts";

const CHROMIUM = "/usr/bin/chromium";

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string" },
    job: { type: "string" },
    synthetic: { type: "boolean", default: false },
    "synthetic-rerun": { type: "boolean", default: false },
    install: { type: "boolean", default: false },
    out: { type: "string" },
    rows: { type: "string", default: "60000" },
    workers: { type: "string", default: "3" },
  },
});

const outDir = values.out
  ? path.resolve(values.out)
  : await mkdtemp(path.join(os.tmpdir(), "bi-report-check-"));
await mkdir(outDir, { recursive: true });

async function readObject(p: LocalPipeline, bucket: string, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await p.store.read(bucket, name)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The report of an existing job: the merger's report.html, or one rendered now from its manifest and errors. */
async function reportOfJob(dataDir: string, jobId: string): Promise<string> {
  const p = openLocalPipeline(dataDir);
  try {
    const row = await p.checkpoints.getJob(jobId);
    if (!row) throw new Error(`no job ${jobId} in ${path.resolve(dataDir)}`);
    const layout = jobLayout(row.value);
    if (await p.store.head(layout.bucket, layout.report)) {
      return path.join(localPaths(dataDir).buckets, layout.bucket, layout.report);
    }
    // A job merged before reports existed: render one from what it left behind.
    if (!(await p.store.head(layout.bucket, layout.manifest))) {
      throw new Error(`job ${jobId} has no manifest yet (state ${row.value.state})`);
    }
    const manifest = JSON.parse(await readObject(p, layout.bucket, layout.manifest)) as Manifest;
    const tally = new ErrorTally();
    if (await p.store.head(layout.bucket, layout.errors)) {
      const lines = createInterface({ input: await p.store.read(layout.bucket, layout.errors) });
      for await (const line of lines) {
        if (!line) continue;
        const e = JSON.parse(line) as { line: number; reason: string; record: unknown };
        tally.add(e.line, e.reason, typeof e.record === "string" ? e.record : null);
      }
    }
    const file = path.join(outDir, `report-${jobId}.html`);
    await writeFile(
      file,
      renderJobReport({ manifest, errorReasons: tally.reasons, errorSamples: tally.samples }),
    );
    return file;
  } finally {
    p.close();
  }
}

/**
 * A small demo job with something to show: bad records spread through the input
 * (one of them markup), and mid-run one worker is killed (SIGKILL: its attempt is
 * lost) and another stopped (SIGTERM: it hands its partition back).
 */
async function demoReport(): Promise<string> {
  const rows = Number(values.rows);
  const dir = path.join(outDir, "demo");
  await mkdir(dir, { recursive: true });
  const modelDir = path.join(dir, "model");
  if (!existsSync(path.join(modelDir, "descriptor.json"))) {
    await trainChurnModel({ outDir: modelDir, rows: 8000, seed: 3 });
  }
  const clean = path.join(dir, "clean.csv");
  await writeDataset({ kind: "customers", rows, seed: 2027, format: "csv", out: clean });
  const lines = (await readFile(clean, "utf8")).split("\n");
  const words = ["forty", "n/a", "fifty-two", "?", "unknown"];
  for (let i = 37, k = 0; i < lines.length - 1; i += 997, k++) {
    const age = i === 37 ? "<script>alert(1)</script>" : (words[k % words.length] ?? "x");
    lines[i] = (lines[i] ?? "").replace(/^(C\d+),\d+,/, `$1,${age},`);
  }
  // A few short lines: a second kind of bad record.
  for (let i = 5003; i < lines.length - 1; i += 9001) lines[i] = `${lines[i]?.split(",")[0]},1,2`;
  const input = path.join(dir, "customers.csv");
  await writeFile(input, lines.join("\n"));
  await rm(clean);

  const dataDir = path.join(dir, "state");
  let pool: ProcessPool | undefined;
  const signalled: string[] = [];
  const result = await runLocalJob({
    dataDir,
    inputFile: input,
    descriptor: path.join(modelDir, "descriptor.json"),
    workers: Number(values.workers),
    spec: { partitionBytes: 256 * 1024, checkpointEvery: 500, batchSize: 256 },
    log: createLogger({ level: "error" }),
    progressIntervalMs: 25,
    onPool: (p) => {
      pool = p;
    },
    onProgress: (p) => {
      const next = signalled.length === 0 ? 0.3 : signalled.length === 1 ? 0.6 : 2;
      if (!pool || p.records < rows * next) return;
      const busy = pool
        .list()
        .find((m) => m.busy && m.committed && !m.committed.done && !signalled.includes(m.id));
      if (!busy) return;
      signalled.push(busy.id);
      pool.signal(busy.id, signalled.length === 1 ? "SIGKILL" : "SIGTERM");
    },
  });
  const job: JobRecord = result.job;
  console.log(
    `demo job ${job.jobId} ${job.state}: ${job.result?.records ?? 0} records, ${job.result?.errors ?? 0} bad; signalled ${signalled.length} workers`,
  );
  const report = job.result?.report;
  if (!report) throw new Error(`job ${job.jobId} has no report (state ${job.state})`);
  return path.join(localPaths(dataDir).buckets, report.bucket, report.object);
}

async function syntheticReport(): Promise<string> {
  const file = path.join(outDir, "report-synthetic.html");
  await writeFile(file, renderJobReport(syntheticReportInput()));
  return file;
}

async function syntheticRerunReport(): Promise<string> {
  const file = path.join(outDir, "report-synthetic-rerun.html");
  await writeFile(
    file,
    renderJobReport({
      manifest: syntheticRerunManifest(),
      errorReasons: new Map(),
      errorSamples: [],
    }),
  );
  return file;
}

function ensureChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (!values.install) return false;
  console.log("installing Debian's chromium (apt-get install -y chromium)");
  const opts = {
    stdio: "inherit" as const,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  };
  if (spawnSync("apt-get", ["install", "-y", "chromium"], opts).status !== 0) {
    // A fresh image may have no package lists yet.
    spawnSync("apt-get", ["update"], opts);
    spawnSync("apt-get", ["install", "-y", "chromium"], opts);
  }
  return existsSync(CHROMIUM);
}

/** Run headless Chromium on `html` with a fresh profile and `extra` flags. */
async function chromium(html: string, extra: string[]) {
  const profile = await mkdtemp(path.join(os.tmpdir(), "bi-chromium-"));
  try {
    return spawnSync(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--window-size=1280,2400",
        "--hide-scrollbars",
        ...extra,
        `file://${html}`,
      ],
      { encoding: "utf8", timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
    );
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/**
 * Screenshot `html` with headless Chromium; the PNG's path, or an error saying
 * what went wrong. Chromium screenshots its own error page for a file it can't
 * load, so the DOM it built is checked for the report's sections first.
 */
async function screenshot(html: string): Promise<string> {
  const dom = await chromium(html, ["--dump-dom"]);
  const missing = ["summary", "throughput", "timeline", "errors"].filter(
    (id) => !(dom.stdout ?? "").includes(`<section id="${id}"`),
  );
  if (dom.status !== 0 || missing.length > 0) {
    throw new Error(
      `chromium did not load ${html} as a job report (exit ${dom.status ?? dom.signal ?? dom.error?.message}; sections missing from its DOM: ${missing.join(", ") || "none"})\n${(dom.stderr ?? "").slice(-2000)}`,
    );
  }
  const png = path.join(outDir, `${path.basename(html, ".html")}.png`);
  await rm(png, { force: true });
  const run = await chromium(html, [`--screenshot=${png}`]);
  const size = existsSync(png) ? (await stat(png)).size : 0;
  const magic = size > 8 ? (await readFile(png)).subarray(1, 4).toString("latin1") : "";
  if (run.status !== 0 || size === 0 || magic !== "PNG") {
    throw new Error(
      `chromium did not render ${html} (exit ${run.status ?? run.signal ?? run.error?.message}, png ${size} bytes)\n${(run.stderr ?? "").slice(-2000)}`,
    );
  }
  return png;
}

try {
  const html = values.job
    ? await reportOfJob(values["data-dir"] ?? ".batch-infer", values.job)
    : values.synthetic
      ? await syntheticReport()
      : values["synthetic-rerun"]
        ? await syntheticRerunReport()
        : await demoReport();
  console.log(`report      ${html}`);
  if (!ensureChromium()) {
    console.log(
      `no ${CHROMIUM}: not checked in a browser (run with --install to apt-get install chromium)`,
    );
    process.exit(0);
  }
  console.log(`screenshot  ${await screenshot(path.resolve(html))}`);
} catch (err) {
  console.error(`check-report: ${(err as Error).message}`);
  process.exit(1);
}
