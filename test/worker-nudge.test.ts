/**
 * A worker waiting on the SQLite queue re-checks it at an interval; the local runner
 * nudges its workers once it has enqueued a job, so the first claim does not wait for
 * the next poll. Here the poll is a minute apart: only the nudge can start the work.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { SqliteTaskQueue } from "../src/adapters/local/sqlite-task-queue.ts";
import { silentLogger } from "../src/core/log.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { LOCAL_MAX_DELIVERIES, openLocalPipeline } from "../src/runner/local-stores.ts";
import { numericCsv, numericModel, pollUntil } from "./helpers/chaos.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

const cleanups: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

describe("a worker nudged after a job is enqueued", () => {
  it("claims at once instead of at its next poll of the queue", async () => {
    const t = await tempDir("bi-nudge-");
    cleanups.push(t.cleanup);
    const p = openLocalPipeline(t.dir, { log: silentLogger });
    const slowQueue = new SqliteTaskQueue({
      path: p.paths.queueDb,
      queue: "partitions",
      maxDeliveries: LOCAL_MAX_DELIVERIES,
      pollIntervalMs: 60_000,
    });
    const claims: number[] = [];
    const worker = new PartitionWorker(
      { ...p, queue: slowQueue },
      {
        workerId: "w",
        receiveWaitSeconds: 20,
        scorer: { thread: false },
        onClaim: (c) => {
          if (c?.partition !== undefined) claims.push(c.partition);
        },
      },
    );
    const running = worker.run();
    try {
      // The worker is waiting: its receive found nothing and sleeps until the next poll.
      await new Promise((r) => setTimeout(r, 300));
      await uploadFile(p, "input", "data.csv", await numericCsv(200, 5));
      await splitJob(p, {
        input: { bucket: "input", object: "data.csv" },
        output: { bucket: "output" },
        model: { descriptor: await numericModel(7) },
      });
      assert.deepEqual(claims, [], "no claim before the nudge (the next poll is a minute away)");
      worker.nudge();
      await pollUntil(
        "the nudged worker to claim the partition",
        () => (claims.length > 0 ? true : undefined),
        { timeoutMs: 10_000 },
      );
      assert.deepEqual(claims, [0]);
    } finally {
      worker.stop();
      await running;
      slowQueue.close();
      p.close();
    }
  });
});
