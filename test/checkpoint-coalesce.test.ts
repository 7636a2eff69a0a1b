/**
 * Checkpoints never make scoring wait on storage, within a bound: a checkpoint that
 * falls due while the previous commit is still in flight is deferred and scoring
 * goes on into a larger chunk, up to 4 intervals; past that the worker waits. Shown
 * with a store whose first part write is held open by the test (real SQLite, files
 * and onnxruntime in this process): the chunks committed, what was scored while the
 * write was held, and a job that still verifies record for record.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import { noopObserver } from "../src/metrics/worker-observer.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import type { ObjectStore } from "../src/ports/object-store.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, customerCsv, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
});
after(() => root.cleanup());

describe("checkpoint commits in flight", () => {
  it("defers a due checkpoint while the last commit is in flight, and waits at 4 intervals", async () => {
    const EVERY = 300;
    const ROWS = 3000;
    const p = openLocalPipeline(path.join(root.dir, "coalesce"), { log: silentLogger });
    try {
      const file = await customerCsv(root.dir, ROWS, 5);
      await uploadFile(p, "input", "c.csv", file);
      const { jobId, partitions } = await splitJob(p, {
        input: { bucket: "input", object: "c.csv" },
        output: { bucket: "output" },
        model: { descriptor },
        partitionBytes: 64 * 1024 * 1024,
        checkpointEvery: EVERY,
        batchSize: 50,
      });
      assert.equal(partitions, 1);

      // The first part write is held until the test lets it go.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let partWrites = 0;
      let scored = 0;
      let scoredWhileHeld = -1;
      const store: ObjectStore = {
        head: (b, n) => p.store.head(b, n),
        read: (b, n, r) => p.store.read(b, n, r),
        list: (b, o) => p.store.list(b, o),
        delete: (b, n) => p.store.delete(b, n),
        put: async (b, n, body, o) => {
          if (n.includes("/parts/") && ++partWrites === 1) await held;
          return p.store.put(b, n, body, o);
        },
      };
      const worker = new PartitionWorker(
        { ...p, store },
        {
          workerId: "w",
          receiveWaitSeconds: 0,
          scorer: { thread: false },
          observer: {
            ...noopObserver,
            batchScored: (rows) => {
              scored += rows;
            },
          },
        },
      );
      const running = worker.run({ untilIdle: true });
      // Let the write go once scoring has stood still for a while (the worker is
      // waiting on it), or after 30 s at most (then the bound below fails loudly).
      const deadline = Date.now() + 30_000;
      let last = -1;
      let stillSince = Date.now();
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        if (scored !== last) {
          last = scored;
          stillSince = Date.now();
        } else if (partWrites >= 1 && Date.now() - stillSince >= 400) break;
      }
      scoredWhileHeld = scored;
      release();
      await running;

      // Scored on past the due checkpoint (the first chunk, then 4 more intervals), and no further.
      assert.equal(scoredWhileHeld, EVERY + 4 * EVERY, "scoring went on, up to the bound");
      const part = await p.checkpoints.getPartition(jobId, 0);
      const records = part?.value.parts.map((r) => r.records) ?? [];
      assert.deepEqual(
        records.slice(0, 2),
        [EVERY, 4 * EVERY],
        "the deferred checkpoint came as one larger chunk",
      );
      assert.ok(records.slice(2).every((r) => r >= EVERY || r === records.at(-1)));
      assert.equal(
        records.reduce((a, b) => a + b, 0),
        ROWS,
      );
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed");
      assert.ok(job);
      const report = await verifyJob(p, job);
      assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));
    } finally {
      p.close();
    }
  });
});
