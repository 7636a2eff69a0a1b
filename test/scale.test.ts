/**
 * Cost stays linear in the number of partitions: one job run in process with
 * counting ports at P = 100 and P = 1,000 tiny partitions; for every service,
 * requests and billed items (NoSQL rows read and written, queue messages,
 * objects, events) at P = 1,000 must stay within 11 × those at P = 100. A job
 * whose completion check reads every partition row on each completion is
 * O(P²) in NoSQL rows read and fails here.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { countingPort, emptyCounts, totals } from "../scripts/scale/counting-ports.ts";
import { type SimResult, simulateJob } from "../scripts/scale/simulate.ts";
import { SqliteCheckpointStore } from "../src/adapters/local/sqlite-checkpoint-store.ts";
import { sampleJob } from "./conformance/checkpoint-store.conformance.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

/** 10 × the partitions: linear growth is ~10 × the requests (fixed per-job costs make it a little less). */
const MAX_GROWTH = 11;

let root: { dir: string; cleanup(): Promise<void> };
before(async () => {
  root = await tempDir("bi-scale-");
});
after(() => root.cleanup());

describe("counting ports", () => {
  it("count calls and the rows each call reads or writes", async () => {
    const store = new SqliteCheckpointStore({ path: path.join(root.dir, "count.db") });
    try {
      const counts = emptyCounts();
      const counted = countingPort("nosql", store, counts);
      const job = sampleJob("job-0123456789abcdef01234567");
      await counted.createJob(job);
      await counted.createPartitions(
        [0, 1, 2].map((index) => ({
          jobId: job.jobId,
          index,
          start: index * 10,
          end: index * 10 + 10,
          state: "pending" as const,
          epoch: 0,
          offset: index * 10,
          records: 0,
          errors: 0,
          lines: 0,
          parts: [],
          attempts: [],
          updatedAt: job.updatedAt,
        })),
      );
      await counted.readPartitions(job.jobId);
      await counted.readPartitions(job.jobId);
      assert.equal(await counted.getPartition(job.jobId, 99), undefined);
      assert.deepEqual(counts.nosql.readPartitions, { calls: 2, itemsRead: 6, itemsWritten: 0 });
      assert.deepEqual(counts.nosql.createPartitions, {
        calls: 1,
        itemsRead: 0,
        itemsWritten: 3,
      });
      assert.deepEqual(counts.nosql.getPartition, { calls: 1, itemsRead: 0, itemsWritten: 0 });
      assert.deepEqual(totals(counts).nosql, { calls: 5, itemsRead: 6, itemsWritten: 4 });
    } finally {
      store.close();
    }
  });
});

describe("requests per job grow linearly with the partitions", () => {
  let small: SimResult;
  let large: SimResult;
  before(async () => {
    const cacheDir = path.join(root.dir, "cache");
    small = await simulateJob({ partitions: 100, workDir: path.join(root.dir, "p100"), cacheDir });
    large = await simulateJob({
      partitions: 1000,
      workDir: path.join(root.dir, "p1000"),
      cacheDir,
    });
  });

  for (const service of ["nosql", "queue", "objectStorage", "streaming"] as const) {
    it(`${service}: requests and billed items at P=1,000 are within ${MAX_GROWTH} × P=100`, () => {
      const a = small.totals[service];
      const b = large.totals[service];
      // Every partition costs each service at least one request: a zero means nothing was counted.
      assert.ok(a.calls >= small.partitions, `${service}: ${a.calls} calls for 100 partitions`);
      const detail = (m: "calls" | "itemsRead" | "itemsWritten") => {
        const byMethod = Object.entries(large.counts[service])
          .map(([k, v]) => `${k} ${v[m]} (P=100: ${small.counts[service][k]?.[m] ?? 0})`)
          .join(", ");
        return `${service} ${m}: ${a[m]} at P=100, ${b[m]} at P=1,000 (${(b[m] / Math.max(1, a[m])).toFixed(1)}×); by method at P=1,000: ${byMethod}`;
      };
      for (const m of ["calls", "itemsRead", "itemsWritten"] as const) {
        assert.ok(b[m] <= MAX_GROWTH * Math.max(1, a[m]), detail(m));
      }
    });
  }
});
