import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobRecord, PartitionRecord } from "../../src/core/records.ts";
import type { CheckpointStore } from "../../src/ports/checkpoint-store.ts";

/** A store for one test (tests use random job ids, so a shared table works). */
export interface CheckpointStoreFixture {
  store: CheckpointStore;
  cleanup(): Promise<void>;
}

/** A complete, valid job row for tests. */
export function sampleJob(jobId: string, overrides: Partial<JobRecord> = {}): JobRecord {
  const now = new Date().toISOString();
  return {
    jobId,
    state: "splitting",
    spec: {
      input: { bucket: "in", object: "data.csv", format: "csv" },
      output: { bucket: "out", prefix: "results", format: "jsonl" },
      model: { descriptor: "models/m.json" },
      partitionBytes: 1024 * 1024,
      checkpointEvery: 100,
      batchSize: 32,
      errorThreshold: { maxFraction: 0.01 },
      maxAttempts: 3,
      visibilitySeconds: 60,
    },
    input: {
      bucket: "in",
      object: "data.csv",
      etag: "etag-1",
      size: 4096,
      format: "csv",
      columns: ["id", "x"],
      dataStart: 5,
    },
    model: { name: "m", version: "1", descriptor: "models/m.json", sha256: "0".repeat(64) },
    outputColumns: ["id", "score"],
    keyNames: ["id"],
    partitionCount: 4,
    createdAt: now,
    updatedAt: now,
    runAttempt: 1,
    ...overrides,
  };
}

/** A complete, valid partition row for tests. */
export function samplePartition(
  jobId: string,
  index: number,
  overrides: Partial<PartitionRecord> = {},
): PartitionRecord {
  return {
    jobId,
    index,
    start: index * 1000,
    end: (index + 1) * 1000,
    state: "pending",
    epoch: 0,
    offset: index * 1000,
    records: 0,
    errors: 0,
    lines: 0,
    parts: [],
    attempts: [],
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function rejectsWithCode(promise: Promise<unknown>, codes: string | string[]): Promise<void> {
  const allowed = Array.isArray(codes) ? codes : [codes];
  await assert.rejects(promise, (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    assert.ok(
      typeof code === "string" && allowed.includes(code),
      `expected ${allowed.join("|")}, got ${String(err)}`,
    );
    return true;
  });
}

/** Register the CheckpointStore contract tests under `describe(label)`. */
export function checkpointStoreConformance(
  label: string,
  setup: () => Promise<CheckpointStoreFixture>,
): void {
  const withStore =
    (fn: (store: CheckpointStore, jobId: string) => Promise<void>) => async (): Promise<void> => {
      const fixture = await setup();
      try {
        await fn(fixture.store, `job-conformance-${randomBytes(8).toString("hex")}`);
      } finally {
        await fixture.cleanup();
      }
    };

  describe(label, () => {
    it(
      "creates a job once; a second create returns the stored row unchanged",
      withStore(async (store, jobId) => {
        assert.equal(await store.getJob(jobId), undefined);
        const job = sampleJob(jobId);
        const first = await store.createJob(job);
        assert.equal(first.created, true);
        assert.equal(typeof first.row.version, "string");
        assert.deepEqual(first.row.value, job);
        const second = await store.createJob(sampleJob(jobId, { state: "failed", runAttempt: 9 }));
        assert.equal(second.created, false);
        assert.equal(second.row.version, first.row.version);
        assert.deepEqual(second.row.value, first.row.value);
        assert.deepEqual(await store.getJob(jobId), first.row);
      }),
    );

    it(
      "updates a job by compare-and-set: current version wins, stale is CONFLICT",
      withStore(async (store, jobId) => {
        const { row } = await store.createJob(sampleJob(jobId));
        const next = await store.updateJob(jobId, { ...row.value, state: "running" }, row.version);
        assert.notEqual(next.version, row.version);
        assert.equal(next.value.state, "running");
        assert.deepEqual(await store.getJob(jobId), next);
        await rejectsWithCode(
          store.updateJob(jobId, { ...row.value, state: "failed" }, row.version),
          "CONFLICT",
        );
        assert.deepEqual(await store.getJob(jobId), next);
        const after = await store.updateJob(
          jobId,
          { ...next.value, state: "merging" },
          next.version,
        );
        assert.equal(after.value.state, "merging");
      }),
    );

    it(
      "refuses to update a job that does not exist",
      withStore(async (store, jobId) => {
        await rejectsWithCode(store.updateJob(jobId, sampleJob(jobId), "1"), [
          "NOT_FOUND",
          "CONFLICT",
        ]);
        assert.equal(await store.getJob(jobId), undefined);
      }),
    );

    it(
      "lets exactly one of two concurrent updates from the same version win",
      withStore(async (store, jobId) => {
        const { row } = await store.createJob(sampleJob(jobId));
        const results = await Promise.allSettled([
          store.updateJob(jobId, { ...row.value, state: "running" }, row.version),
          store.updateJob(jobId, { ...row.value, state: "failed" }, row.version),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1);
        assert.equal(lost.length, 1);
        assert.equal(
          ((lost[0] as PromiseRejectedResult).reason as { code?: unknown }).code,
          "CONFLICT",
        );
        const winner = (won[0] as PromiseFulfilledResult<{ value: JobRecord; version: string }>)
          .value;
        assert.deepEqual(await store.getJob(jobId), winner);

        await store.createPartitions([samplePartition(jobId, 0)]);
        const p = await store.getPartition(jobId, 0);
        assert.ok(p);
        const partResults = await Promise.allSettled([
          store.updatePartition({ ...p.value, state: "running", owner: "w1" }, p.version),
          store.updatePartition({ ...p.value, state: "running", owner: "w2" }, p.version),
        ]);
        assert.equal(partResults.filter((r) => r.status === "fulfilled").length, 1);
      }),
    );

    it(
      "creates partitions idempotently, leaving existing rows untouched",
      withStore(async (store, jobId) => {
        await store.createJob(sampleJob(jobId));
        await store.createPartitions([0, 1, 2].map((i) => samplePartition(jobId, i)));
        const p1 = await store.getPartition(jobId, 1);
        assert.ok(p1);
        const claimed = await store.updatePartition(
          { ...p1.value, state: "running", epoch: 1, owner: "worker-a" },
          p1.version,
        );
        await store.createPartitions(
          [0, 1, 2, 3].map((i) => samplePartition(jobId, i, { lastError: "should not overwrite" })),
        );
        assert.deepEqual(await store.getPartition(jobId, 1), claimed);
        assert.equal((await store.getPartition(jobId, 0))?.value.lastError, undefined);
        assert.equal((await store.getPartition(jobId, 3))?.value.lastError, "should not overwrite");
        assert.equal((await store.listPartitions(jobId)).length, 4);
        await store.createPartitions([]);
      }),
    );

    it(
      "lists a job's partitions by index",
      withStore(async (store, jobId) => {
        await store.createPartitions([10, 2, 0, 1].map((i) => samplePartition(jobId, i)));
        await store.createPartitions([samplePartition(`${jobId}-other`, 5)]);
        const rows = await store.listPartitions(jobId);
        assert.deepEqual(
          rows.map((r) => r.value.index),
          [0, 1, 2, 10],
        );
        assert.ok(rows.every((r) => r.value.jobId === jobId && typeof r.version === "string"));
        assert.deepEqual(await store.listPartitions(`${jobId}-none`), []);
        assert.equal(await store.getPartition(jobId, 3), undefined);
        // The unversioned snapshot holds the same rows, including the latest update.
        const first = rows[0];
        assert.ok(first);
        await store.updatePartition({ ...first.value, offset: 99, records: 7 }, first.version);
        const snapshot = await store.readPartitions(jobId);
        assert.deepEqual(
          snapshot,
          (await store.listPartitions(jobId)).map((r) => r.value),
        );
        assert.equal(snapshot[0]?.records, 7);
        assert.deepEqual(await store.readPartitions(`${jobId}-none`), []);
      }),
    );

    it(
      "updates a partition by compare-and-set: stale version is CONFLICT",
      withStore(async (store, jobId) => {
        await store.createPartitions([samplePartition(jobId, 0)]);
        const p = await store.getPartition(jobId, 0);
        assert.ok(p);
        const next = await store.updatePartition({ ...p.value, offset: 123 }, p.version);
        assert.equal(next.value.offset, 123);
        assert.notEqual(next.version, p.version);
        await rejectsWithCode(
          store.updatePartition({ ...p.value, offset: 999 }, p.version),
          "CONFLICT",
        );
        assert.deepEqual(await store.getPartition(jobId, 0), next);
        await rejectsWithCode(store.updatePartition(samplePartition(jobId, 7), "1"), [
          "NOT_FOUND",
          "CONFLICT",
        ]);
      }),
    );

    it(
      "lists jobs newest first, honouring limit",
      withStore(async (store, jobId) => {
        const ids = [`${jobId}-a`, `${jobId}-b`, `${jobId}-c`];
        for (const id of ids) {
          await store.createJob(sampleJob(id, { createdAt: new Date().toISOString() }));
          await sleep(5); // distinct creation times even for a millisecond clock
        }
        const listed = (await store.listJobs({ limit: 1000 }))
          .map((r) => r.value.jobId)
          .filter((id) => ids.includes(id));
        assert.deepEqual(listed, [...ids].reverse());
        assert.equal((await store.listJobs({ limit: 1 })).length, 1);
      }),
    );
  });
}
