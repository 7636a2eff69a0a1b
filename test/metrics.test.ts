/**
 * Worker metrics: the figures an operator scrapes from `/metrics` move as a
 * job runs. In process (a real PartitionWorker fed through the callback bridge,
 * scraped over HTTP mid-partition while the worker waits in onCommit), and as
 * real worker processes (worker-main with METRICS_PORT) whose scrapes, and the
 * pool's IPC aggregation of them, add up to the job's records.
 */
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { appendFile, copyFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../src/core/log.ts";
import { type JobRecord, TERMINAL_JOB_STATES } from "../src/core/records.ts";
import {
  aggregateMetrics,
  type MetricsJson,
  metricsPortFromEnv,
  noopObserver,
  requestWorkerMetrics,
  startMetricsServer,
  startWorkerMetrics,
  WorkerMetrics,
} from "../src/metrics/index.ts";
import { finalMetricsOf } from "../src/metrics/ipc-messages.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { type LocalPipeline, openLocalPipeline } from "../src/runner/local-stores.ts";
import { numericCsv, numericModel, pollUntil } from "./helpers/chaos.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

const WORKER_MAIN = fileURLToPath(new URL("../src/runner/worker-main.ts", import.meta.url));
const BAD_LINES = ["bad-1,x,y", "bad-2,not-a-number", "bad-3"];

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let input: string;
let good: number;
let seq = 0;

before(async () => {
  root = await tempDir("bi-metrics-");
  descriptor = await numericModel(7);
  good = 6000;
  input = path.join(root.dir, "input.csv");
  await copyFile(await numericCsv(good, 3), input);
  // Bad records in the last partition, so they are counted like any other.
  await appendFile(input, `${BAD_LINES.join("\n")}\n`);
});
after(() => root.cleanup());

/** Samples of `name` in exposition `text` whose labels include `labels`. */
function samples(text: string, name: string, labels: Record<string, string> = {}): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map(
      [...(m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) out.push(Number(m[4]));
  }
  return out;
}
/** The one sample of `name` with `labels`; fails when absent or ambiguous. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const found = samples(text, name, labels);
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0] as number;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function createJob(p: LocalPipeline): Promise<string> {
  await uploadFile(p, "input", "data.csv", input);
  const { jobId } = await splitJob(p, {
    input: { bucket: "input", object: "data.csv" },
    output: { bucket: "output" },
    model: { descriptor },
    partitionBytes: 512 * 1024,
    checkpointEvery: 1000,
    batchSize: 256,
  });
  return jobId;
}

function finished(p: LocalPipeline, jobId: string): Promise<JobRecord> {
  return pollUntil(
    `job ${jobId} to finish`,
    async () => {
      const row = await p.checkpoints.getJob(jobId);
      return row && TERMINAL_JOB_STATES.includes(row.value.state) ? row.value : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

describe("METRICS_PORT and the server", () => {
  it("reads METRICS_PORT, rejecting what is not a port", () => {
    assert.equal(metricsPortFromEnv({}), undefined);
    assert.equal(metricsPortFromEnv({ METRICS_PORT: "" }), undefined);
    assert.equal(metricsPortFromEnv({ METRICS_PORT: "9464" }), 9464);
    assert.equal(metricsPortFromEnv({ METRICS_PORT: "0" }), 0);
    for (const bad of ["http", "70000", "-1", "9464.5"]) {
      assert.throws(() => metricsPortFromEnv({ METRICS_PORT: bad }), /METRICS_PORT must be a port/);
    }
  });

  it("starts nothing without METRICS_PORT or BATCH_INFER_METRICS_IPC", async () => {
    const identity = { workerId: "w", backend: "local", providers: "cpu" };
    const none = await startWorkerMetrics({}, identity, silentLogger);
    assert.equal(none.observer, noopObserver);
    assert.equal(none.port, undefined);
    const ipc = await startWorkerMetrics({ BATCH_INFER_METRICS_IPC: "1" }, identity, silentLogger);
    try {
      assert.ok(ipc.observer instanceof WorkerMetrics, "IPC-only metrics are collected");
      assert.equal(ipc.port, undefined, "and no port is opened");
    } finally {
      await ipc.close();
    }
    await assert.rejects(
      startWorkerMetrics({ METRICS_PORT: "x" }, identity, silentLogger),
      /METRICS_PORT/,
    );
  });

  it("answers GET /metrics only", async () => {
    const server = await startMetricsServer({
      port: 0,
      host: "127.0.0.1",
      render: async () => "x 1\n",
    });
    try {
      assert.equal(await scrape(server.port), "x 1\n");
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/`)).status, 404);
      const post = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" });
      assert.equal(post.status, 404);
    } finally {
      await server.close();
    }
  });
});

describe("a worker's metrics move as it works (in process)", () => {
  it("records, bad records, checkpoints, attempts, queue waits and the partition in hand", async () => {
    const p = openLocalPipeline(path.join(root.dir, `inproc-${++seq}`), { log: silentLogger });
    const metrics = new WorkerMetrics({ workerId: "w-test", backend: "local", providers: "cpu" });
    const server = await startMetricsServer({
      port: 0,
      host: "127.0.0.1",
      render: () => metrics.metrics(),
    });
    try {
      const idle = await scrape(server.port);
      assert.equal(value(idle, "batch_infer_records_scored_total"), 0);
      assert.equal(value(idle, "batch_infer_worker_busy"), 0);
      assert.equal(
        value(idle, "batch_infer_worker_info", { worker: "w-test", providers: "cpu" }),
        1,
      );
      assert.ok(samples(idle, "process_resident_memory_bytes").length === 1, "process metrics");

      const jobId = await createJob(p);
      let mid: { partition: number; records: number; text: string } | undefined;
      const worker = new PartitionWorker(p, {
        workerId: "w-test",
        receiveWaitSeconds: 0,
        scorer: { thread: false },
        observer: metrics,
        onCommit: async (row) => {
          // The worker waits here: a scrape now sees it mid-partition.
          if (!mid)
            mid = { partition: row.index, records: row.records, text: await scrape(server.port) };
        },
      });
      for (let i = 0; i < 5; i++) {
        await worker.run({ untilIdle: true });
        const row = await p.checkpoints.getJob(jobId);
        if (row && TERMINAL_JOB_STATES.includes(row.value.state)) break;
      }
      const job = await finished(p, jobId);
      assert.equal(job.state, "completed");
      assert.equal(job.result?.errors, BAD_LINES.length);

      assert.ok(mid, "a commit was observed");
      assert.equal(value(mid.text, "batch_infer_records_scored_total"), mid.records);
      assert.equal(value(mid.text, "batch_infer_worker_busy"), 1);
      assert.equal(
        value(mid.text, "batch_infer_partition_in_hand", {
          job_id: jobId,
          partition: String(mid.partition),
        }),
        1,
      );

      const end = await scrape(server.port);
      assert.equal(value(end, "batch_infer_records_scored_total"), good);
      assert.equal(value(end, "batch_infer_bad_records_total"), BAD_LINES.length);
      assert.equal(
        value(end, "batch_infer_partition_attempts_total", { outcome: "done" }),
        job.partitionCount,
      );
      assert.equal(value(end, "batch_infer_partition_attempts_total", { outcome: "lost" }), 0);
      const parts = (await p.checkpoints.readPartitions(jobId)).reduce(
        (n, x) => n + x.parts.length,
        0,
      );
      assert.equal(value(end, "batch_infer_checkpoints_total"), parts);
      // One wait per task taken: every partition, and the merge.
      assert.equal(value(end, "batch_infer_queue_wait_seconds_count"), job.partitionCount + 1);
      assert.equal(value(end, "batch_infer_worker_busy"), 0);
      assert.equal(samples(end, "batch_infer_partition_in_hand").length, 0, "nothing in hand");
    } finally {
      await server.close();
      p.close();
    }
  });
});

describe("worker processes serve /metrics (METRICS_PORT) and the pool sums them", () => {
  let dataDir: string;
  let children: ChildProcess[] = [];
  const ports: number[] = [];

  before(async () => {
    dataDir = path.join(root.dir, `procs-${++seq}`);
    children = ["w-a", "w-b"].map((id) =>
      fork(WORKER_MAIN, [], {
        execArgv: ["--import", "tsx"],
        env: {
          ...process.env,
          BATCH_INFER_DATA_DIR: dataDir,
          WORKER_ID: id,
          METRICS_PORT: "0",
          LOG_LEVEL: "error",
        },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    );
    // A worker tells its metrics port before it asks for work.
    const listening = (child: ChildProcess) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no metrics port in 30 s")), 30_000);
        child.on("message", (msg: { type?: string; port?: number }) => {
          if (msg?.type !== "metrics-listening") return;
          clearTimeout(timer);
          resolve(msg.port as number);
        });
      });
    ports.push(...(await Promise.all(children.map(listening))));
  });
  after(async () => {
    await Promise.all(
      children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, "exit");
        c.kill("SIGTERM");
        await exited;
      }),
    );
  });

  it("each worker's scrape and the pool's sum add up to the job's records", async () => {
    const before0 = await Promise.all(ports.map(scrape));
    for (const text of before0) assert.equal(value(text, "batch_infer_records_scored_total"), 0);

    const p = openLocalPipeline(dataDir, { log: silentLogger });
    let job: JobRecord;
    try {
      job = await finished(p, await createJob(p));
    } finally {
      p.close();
    }
    assert.equal(job.state, "completed");
    assert.equal(job.result?.errors, BAD_LINES.length);

    const texts = await Promise.all(ports.map(scrape));
    const sum = (name: string, labels?: Record<string, string>) =>
      texts.reduce((n, t) => n + value(t, name, labels), 0);
    assert.equal(sum("batch_infer_records_scored_total"), good);
    assert.equal(sum("batch_infer_bad_records_total"), BAD_LINES.length);
    assert.equal(
      sum("batch_infer_partition_attempts_total", { outcome: "done" }),
      job.partitionCount,
    );
    assert.equal(value(texts[0] ?? "", "batch_infer_worker_info", { worker: "w-a" }), 1);

    const pool = await aggregateMetrics(
      await Promise.all(children.map((c) => requestWorkerMetrics(c))),
    );
    assert.equal(value(pool, "batch_infer_pool_workers_scraped"), 2);
    assert.equal(value(pool, "batch_infer_records_scored_total"), good);
    assert.equal(value(pool, "batch_infer_bad_records_total"), BAD_LINES.length);
    // Per-worker series stay apart in the sum.
    assert.equal(samples(pool, "batch_infer_worker_info").length, 2);
  });

  it("batch latency and size, commit latency and the execution provider move", {}, async () => {
    const texts = await Promise.all(ports.map(scrape));
    const sum = (name: string) => texts.reduce((n, t) => n + value(t, name), 0);
    assert.ok(sum("batch_infer_batch_duration_seconds_count") > 0);
    assert.ok(sum("batch_infer_batch_size_records_sum") >= good);
    assert.ok(sum("batch_infer_checkpoint_duration_seconds_count") > 0);
    for (const t of texts) {
      assert.equal(value(t, "batch_infer_execution_provider", { provider: "cpu" }), 1);
    }
  });

  it("a worker that leaves sends its last figures, and the pool's sum keeps their counters", async () => {
    const [stay, leave] = children;
    assert.ok(stay && leave);
    const totals = await aggregateMetrics(
      await Promise.all(children.map((c) => requestWorkerMetrics(c))),
    );
    const final = new Promise<MetricsJson>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no last figures within 30 s")), 30_000);
      leave.on("message", (m: unknown) => {
        const figures = finalMetricsOf(m);
        if (!figures) return;
        clearTimeout(timer);
        resolve(figures);
      });
    });
    const exited = once(leave, "exit");
    leave.kill("SIGTERM");
    const [last] = await Promise.all([final, exited]);

    const pool = await aggregateMetrics([await requestWorkerMetrics(stay)], [last]);
    for (const name of [
      "batch_infer_records_scored_total",
      "batch_infer_bad_records_total",
      "batch_infer_checkpoints_total",
      "batch_infer_batch_duration_seconds_count",
    ]) {
      assert.equal(value(pool, name), value(totals, name), name);
    }
    assert.ok(value(pool, "batch_infer_records_scored_total") > 0);
    assert.equal(value(pool, "batch_infer_pool_workers_scraped"), 1);
    // What a worker holds now is not kept for one that left: only the live one's info.
    assert.equal(samples(pool, "batch_infer_worker_info").length, 1);
    assert.equal(value(pool, "batch_infer_worker_info", { worker: "w-a" }), 1);
  });
});

describe("the embedded default's pool metrics (run --metrics-port)", () => {
  it("serve the sum of the workers' metrics while the job runs", async () => {
    const { startCli } = await import("./helpers/cli.ts");
    const dataDir = path.join(root.dir, `pool-${++seq}`);
    const rows = 30_000;
    const run = startCli([
      "run",
      "--input",
      await numericCsv(rows, 5),
      "--model",
      descriptor,
      "--data-dir",
      dataDir,
      "--partition-size",
      "16KiB",
      // Small partitions, checkpoints and batches: the job runs long enough (seconds)
      // to be scraped many times mid-way.
      "--checkpoint-every",
      "10",
      "--batch-size",
      "4",
      "--metrics-port",
      "0",
    ]);
    const port = await pollUntil("the metrics port in the CLI's log", () => {
      const m = /metrics on :(\d+)\/metrics/.exec(run.stderr());
      return m ? Number(m[1]) : undefined;
    });
    // Scraped while the workers run: the sum moves as checkpoints commit. A scrape while
    // workers boot (or wait, held until the run's checks pass) answers at once, without
    // them; so the scrapes come every few milliseconds all through the run.
    const seen: number[] = [];
    let exited = false;
    void run.done.then(() => {
      exited = true;
    });
    const deadline = Date.now() + 180_000;
    while (!exited) {
      assert.ok(Date.now() < deadline, "the run did not end within 3 minutes");
      const text = await scrape(port).catch(() => undefined); // undefined: the run just ended
      const [scored] = text ? samples(text, "batch_infer_records_scored_total", {}) : [];
      if (scored !== undefined) seen.push(scored);
      await new Promise((r) => setTimeout(r, 10));
    }
    const shown = `${seen.length} scrapes, from ${seen[0]} to ${seen.at(-1)}`;
    assert.ok(
      seen.some((n) => n > 0 && n < rows),
      `a scrape while the job ran, with some records committed: ${shown}`,
    );
    // Counters never go down, not even as workers leave at the end (their last figures stay).
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1] ?? 0, seen[i] ?? 0];
      assert.ok(b >= a, `records scored went down from ${a} to ${b} (${shown})`);
    }
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
  });
});
