/**
 * The embedded pool's metrics sum over workers that come and go: a scrape asks only
 * the workers that are up, and the counters of a worker that leaves (scaled down,
 * or killed) stay in the sum, so the pool's counters never go down. Real worker
 * processes (worker-main over IPC) score a real job.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import { TERMINAL_JOB_STATES } from "../src/core/records.ts";
import { aggregateMetrics, requestWorkerMetrics } from "../src/metrics/index.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { ProcessPool } from "../src/runner/process-pool.ts";
import { numericCsv, numericModel, pollUntil } from "./helpers/chaos.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

const ROWS = 4000;
let root: { dir: string; cleanup(): Promise<void> };
before(async () => {
  root = await tempDir("bi-pool-metrics-");
});
after(() => root.cleanup());

/** The one unlabelled sample of `name` in exposition `text` (0 when absent). */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** A pool of 2 real workers that have scored a job of ROWS records in `name`'s data dir. */
async function scoredPool(name: string) {
  const dataDir = path.join(root.dir, name);
  const p = openLocalPipeline(dataDir, { log: silentLogger });
  const pool = new ProcessPool({
    env: {
      ...process.env,
      BATCH_INFER_DATA_DIR: dataDir,
      BATCH_INFER_METRICS_IPC: "1",
      LOG_LEVEL: "error",
    },
    queue: p.queue,
    log: silentLogger,
  });
  const scrape = async (ask = (c: ChildProcess) => requestWorkerMetrics(c)) => {
    const { live, departed } = await pool.collectMetrics(ask);
    return aggregateMetrics(live, departed);
  };
  const close = async () => {
    await pool.close();
    p.close();
  };
  try {
    // Before any worker is up, a scrape answers at once, with none of them.
    assert.equal(sample(await scrape(), "batch_infer_pool_workers_scraped"), 0);
    await uploadFile(p, "input", "data.csv", await numericCsv(ROWS, 11));
    const { jobId } = await splitJob(p, {
      input: { bucket: "input", object: "data.csv" },
      output: { bucket: "output" },
      model: { descriptor: await numericModel(7) },
      partitionBytes: 64 * 1024,
      checkpointEvery: 100,
      batchSize: 64,
    });
    await pool.scaleTo(2);
    await pollUntil(
      `job ${jobId} to finish`,
      async () => {
        const row = await p.checkpoints.getJob(jobId);
        return row && TERMINAL_JOB_STATES.includes(row.value.state) ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
    await pollUntil("both workers to answer metrics", async () =>
      sample(await scrape(), "batch_infer_pool_workers_scraped") === 2 ? true : undefined,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { pool, scrape, close };
}

describe("the embedded pool's metrics as workers leave", () => {
  it("keep the counters of a worker scaled down and of one killed outright", async () => {
    const { pool, scrape, close } = await scoredPool("leave");
    try {
      const all = await scrape();
      assert.equal(sample(all, "batch_infer_records_scored_total"), ROWS);
      assert.equal(sample(all, "batch_infer_pool_workers_scraped"), 2);

      // One scaled down: it sends its last figures as it leaves.
      await pool.scaleTo(1);
      await pollUntil("one worker to leave", () => (pool.list().length === 1 ? true : undefined));
      const afterScaleDown = await scrape();
      assert.equal(sample(afterScaleDown, "batch_infer_records_scored_total"), ROWS);
      assert.equal(sample(afterScaleDown, "batch_infer_pool_workers_scraped"), 1);

      // The other killed outright: the figures of its last scrape stay. (The pool starts
      // a replacement, with nothing scored.)
      const [killed] = pool.list();
      assert.ok(killed);
      assert.ok(pool.signal(killed.id, "SIGKILL"));
      await pollUntil("the killed worker to exit", () =>
        pool.list().some((m) => m.id === killed.id) ? undefined : true,
      );
      assert.equal(sample(await scrape(), "batch_infer_records_scored_total"), ROWS);

      await pool.scaleTo(0);
      await pollUntil("the pool to empty", () => (pool.list().length === 0 ? true : undefined));
      const none = await scrape();
      assert.equal(sample(none, "batch_infer_records_scored_total"), ROWS);
      assert.equal(sample(none, "batch_infer_pool_workers_scraped"), 0);
      // What a worker holds now leaves with it.
      assert.equal(sample(none, "batch_infer_worker_busy"), 0);
      assert.ok(!none.includes("batch_infer_worker_info{"), "no live worker's info");
    } finally {
      await close();
    }
  });

  it("count a worker that leaves while it is asked once, by its last figures", async () => {
    const { pool, scrape, close } = await scoredPool("race");
    try {
      const [leaving] = pool.list();
      assert.ok(leaving);
      // (The pool starts a replacement, not asked in this scrape.) Its answer comes back after it has sent its last figures and exited.
      const text = await scrape(async (c) => {
        const got = await requestWorkerMetrics(c);
        if (c.pid === leaving.pid) {
          assert.ok(pool.signal(leaving.id, "SIGTERM"));
          await pollUntil("the asked worker to leave", () =>
            pool.list().some((m) => m.id === leaving.id) ? undefined : true,
          );
        }
        return got;
      });
      assert.equal(sample(text, "batch_infer_records_scored_total"), ROWS);
      assert.equal(sample(text, "batch_infer_pool_workers_scraped"), 1);
    } finally {
      await close();
    }
  });
});
