/**
 * The pipeline's guarantees with workers in this process (real SQLite, files and
 * onnxruntime; an injected clock instead of sleeps): duplicate events, fencing of
 * a stale worker, bad records with line numbers, thresholds, dead-lettered
 * partitions and `rerun --failed`, exactly one completion event.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SqliteTaskQueue } from "../src/adapters/local/sqlite-task-queue.ts";
import { StoreUnavailableError } from "../src/core/errors.ts";
import type { JobSpecInput } from "../src/core/job-spec.ts";
import { silentLogger } from "../src/core/log.ts";
import { EVENT_TYPES, objectCreatedEvent } from "../src/pipeline/events.ts";
import { mergeJob } from "../src/pipeline/merger.ts";
import { PartitionWorker } from "../src/pipeline/partition-worker.ts";
import { rerunFailedPartitions } from "../src/pipeline/rerun.ts";
import { splitFromEvent, splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import type { ObjectStore } from "../src/ports/object-store.ts";
import { uploadFile } from "../src/runner/local-runner.ts";
import { type LocalPipeline, openLocalPipeline } from "../src/runner/local-stores.ts";
import { churnModel, customerCsv, readOutputs, tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let n = 0;

before(async () => {
  root = await tempDir();
  descriptor = await churnModel();
});
after(() => root.cleanup());

/** A fresh embedded pipeline whose queue runs on `clock` (so visibility can expire without sleeping). */
function freshPipeline(clock = { now: Date.now() }): LocalPipeline & { clock: { now: number } } {
  const dataDir = path.join(root.dir, `p${++n}`);
  const base = openLocalPipeline(dataDir, { log: silentLogger, now: () => clock.now });
  base.tasks.close();
  const tasks = new SqliteTaskQueue({
    path: base.paths.queueDb,
    queue: "partitions",
    maxDeliveries: 25,
    now: () => clock.now,
  });
  const close = () => {
    base.close();
    tasks.close();
  };
  return { ...base, tasks, queue: tasks, clock, close };
}

function spec(object: string, extra: Partial<JobSpecInput> = {}): JobSpecInput {
  return {
    input: { bucket: "input", object },
    output: { bucket: "output" },
    model: { descriptor },
    partitionBytes: 32 * 1024,
    checkpointEvery: 300,
    batchSize: 128,
    ...extra,
  };
}

function worker(
  p: LocalPipeline,
  id: string,
  extra: Partial<ConstructorParameters<typeof PartitionWorker>[1]> = {},
) {
  return new PartitionWorker(p, {
    workerId: id,
    receiveWaitSeconds: 0,
    scorer: { thread: false },
    ...extra,
  });
}

async function completions(p: LocalPipeline, jobId: string) {
  return p.eventLog.read({ jobId, eventType: EVENT_TYPES.jobCompleted });
}

describe("job creation", () => {
  it("the same upload event delivered twice (and concurrently) creates one job", async () => {
    const p = freshPipeline();
    try {
      const file = await customerCsv(root.dir, 2000, 31);
      const { etag } = await uploadFile(p, "input", "c.csv", file);
      const event = objectCreatedEvent({ bucket: "input", object: "c.csv", etag, eventId: "ev-1" });
      const defaults = {
        output: { bucket: "output" },
        model: { descriptor },
        partitionBytes: 32 * 1024,
      };
      const [a, b] = await Promise.all([
        splitFromEvent(p, event, defaults),
        splitFromEvent(p, event, defaults),
      ]);
      const c = await splitFromEvent(p, { ...event, eventID: "ev-2" }, defaults);
      assert.equal(a.jobId, b.jobId);
      assert.equal(a.jobId, c.jobId);
      assert.equal(
        [a, b, c].filter((r) => r.created).length,
        1,
        "exactly one call creates the job",
      );
      const stats = await p.queue.stats();
      assert.equal(stats.visible, a.partitions, "partitions enqueued once");
      await worker(p, "w1").run({ untilIdle: true });
      assert.equal((await p.checkpoints.getJob(a.jobId))?.value.state, "completed");
      assert.equal((await completions(p, a.jobId)).length, 1);
    } finally {
      p.close();
    }
  });

  it("rejects a bad spec naming the schema path, and a missing object, writing nothing", async () => {
    const p = freshPipeline();
    try {
      await assert.rejects(
        splitJob(p, { ...spec("c.csv"), partitionBytes: 5 }),
        (err: Error & { schemaPath?: string }) => {
          assert.match(err.message, /partitionBytes/);
          assert.equal(err.schemaPath, "#/properties/partitionBytes/minimum");
          return true;
        },
      );
      await assert.rejects(
        splitJob(p, spec("missing.csv")),
        /input object input\/missing.csv does not exist/,
      );
      await assert.rejects(
        splitJob(p, { ...spec("../etc/passwd") }),
        /job spec invalid at \/input\/object/,
      );
      await p.store.put("input", "empty.csv", "");
      await assert.rejects(
        splitJob(p, spec("empty.csv")),
        /input object input\/empty.csv has no records \(0 bytes\)/,
      );
      await p.store.put("input", "header.csv", "customer_id,age\n");
      await assert.rejects(
        splitJob(p, spec("header.csv")),
        /has no records \(16 bytes, a header only\)/,
      );
      assert.equal((await p.checkpoints.listJobs()).length, 0);
      assert.equal((await p.queue.stats()).visible, 0);
    } finally {
      p.close();
    }
  });
});

describe("fencing", () => {
  it("a stalled worker whose partition was taken over cannot commit, and nothing is duplicated", async () => {
    const p = freshPipeline();
    try {
      const file = await customerCsv(root.dir, 3000, 41);
      await uploadFile(p, "input", "f.csv", file);
      // One partition, many chunks.
      const { jobId } = await splitJob(
        p,
        spec("f.csv", { partitionBytes: 10 * 1024 * 1024, visibilitySeconds: 10 }),
      );
      const [msg] = await p.queue.receive({ max: 1, visibilitySeconds: 10 });
      assert.ok(msg);
      let takeover: Promise<void> | undefined;
      const stale = worker(p, "stale", {
        onCommit: async (row) => {
          if (takeover || row.parts.length !== 2) return;
          // Stall past the visibility timeout; another worker gets the message and finishes the partition.
          p.clock.now += 11_000;
          takeover = worker(p, "fresh").run({ untilIdle: true });
          await takeover;
        },
      });
      await stale.handle(msg);
      assert.ok(takeover, "the takeover never ran");
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed");
      const part = (await p.checkpoints.getPartition(jobId, 0))?.value;
      assert.ok(part);
      assert.deepEqual(
        part.attempts.map((a) => [a.worker, a.outcome]),
        [
          ["stale", "lost"],
          ["fresh", "done"],
        ],
      );
      assert.ok(
        part.parts.every((r) => (r.seq < 2 ? r.epoch === 1 : r.epoch === 2)),
        "stale epoch parts after the takeover were not merged",
      );
      const out = await readOutputs(p.paths.dataDir, job ?? (undefined as never));
      const ids = out.rows.map((l) => (JSON.parse(l) as { customer_id: string }).customer_id);
      assert.equal(ids.length, 3000);
      assert.equal(new Set(ids).size, 3000);
      assert.equal((await completions(p, jobId)).length, 1);
    } finally {
      p.close();
    }
  });

  it("two workers finishing the last partitions together merge and announce the job once", async () => {
    const p = freshPipeline();
    try {
      const file = await customerCsv(root.dir, 4000, 43);
      await uploadFile(p, "input", "t.csv", file);
      const { jobId, partitions } = await splitJob(p, spec("t.csv", { partitionBytes: 16 * 1024 }));
      assert.ok(partitions > 10);
      await Promise.all([
        worker(p, "a").run({ untilIdle: true }),
        worker(p, "b").run({ untilIdle: true }),
      ]);
      assert.equal((await p.checkpoints.getJob(jobId))?.value.state, "completed");
      assert.equal((await completions(p, jobId)).length, 1);
      // A redelivered merge task is a no-op.
      await mergeJob(p, jobId);
      assert.equal((await completions(p, jobId)).length, 1);
    } finally {
      p.close();
    }
  });
});

describe("bad records", () => {
  const good = (id: number) => `C${String(id).padStart(8, "0")}`;

  async function badInput(): Promise<{
    file: string;
    header: string;
    expected: { line: number; reason: RegExp }[];
    goodRows: number;
  }> {
    const file = await customerCsv(root.dir, 400, 51);
    const { readFile } = await import("node:fs/promises");
    const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
    const header = lines[0] as string;
    const body = lines.slice(1);
    const out: string[] = [header];
    const expected: { line: number; reason: RegExp }[] = [];
    const cols = header.split(",").length;
    body.forEach((line, i) => {
      if (i === 50) {
        out.push(line.replace(/^(C\d+),\d+,/, "$1,forty,"));
        expected.push({ line: out.length, reason: /column age: "forty" is not a number/ });
        return;
      }
      if (i === 120) {
        out.push("C09999999,1,2,3");
        expected.push({ line: out.length, reason: new RegExp(`expected ${cols} fields, got 4`) });
        return;
      }
      // Last, and the file has no final newline: a quote still open at EOF is cut at its
      // line. (Earlier in the file it would take the lines after it, up to the next quote.)
      if (i === body.length - 1) {
        out.push(`${line.slice(0, 30)},"unterminated`);
        expected.push({ line: out.length, reason: /unterminated quoted field/ });
        return;
      }
      if (i === 250) out.push(""); // blank line: counted as a line, not a record
      out.push(i % 7 === 0 ? `${line}\r` : line); // some CRLF
    });
    const bad = path.join(root.dir, "bad.csv");
    await writeFile(bad, `${out.join("\n")}`); // no final newline
    return { file: bad, header, expected, goodRows: body.length - 3 };
  }

  it("go to the errors output with their line number and reason; the rest is scored", async () => {
    const p = freshPipeline();
    try {
      const { file, expected, goodRows } = await badInput();
      await uploadFile(p, "input", "bad.csv", file);
      const { jobId } = await splitJob(
        p,
        spec("bad.csv", { partitionBytes: 8 * 1024, checkpointEvery: 37 }),
      );
      await worker(p, "w").run({ untilIdle: true });
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed", job?.error);
      const out = await readOutputs(p.paths.dataDir, job ?? (undefined as never));
      assert.equal(out.rows.length, goodRows);
      assert.equal(out.errorRows.length, expected.length);
      out.errorRows.forEach((e, i) => {
        const want = expected[i];
        assert.ok(want);
        assert.equal(e.line, want.line, `error ${i}: ${e.reason}`);
        assert.match(e.reason, want.reason);
      });
      assert.equal(out.errorRows[0]?.key?.customer_id, good(51));
      assert.equal(job?.result?.errors, 3);
      const verified = await verifyJob(p, job ?? (undefined as never));
      assert.ok(verified.ok, JSON.stringify(verified.checks));
      assert.equal(verified.errors, 3);
      assert.equal(verified.scored, goodRows);
    } finally {
      p.close();
    }
  });

  it("past the error threshold the job fails with a message saying so", async () => {
    const p = freshPipeline();
    try {
      const { file } = await badInput();
      await uploadFile(p, "input", "bad.csv", file);
      const { jobId } = await splitJob(p, spec("bad.csv", { errorThreshold: { maxCount: 2 } }));
      await worker(p, "w").run({ untilIdle: true });
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "failed");
      assert.match(job?.error ?? "", /3 bad records exceed errorThreshold.maxCount 2/);
      const [event] = await completions(p, jobId);
      assert.equal(event?.data.status, "failed");
      const q = freshPipeline();
      q.close();
    } finally {
      p.close();
    }
  });
});

describe("failed partitions", () => {
  it("are dead-lettered after maxAttempts, listed in completed_with_errors, and `rerun --failed` completes the job", async () => {
    const p = freshPipeline();
    try {
      const file = await customerCsv(root.dir, 3000, 61);
      await uploadFile(p, "input", "d.csv", file);
      const { jobId, partitions } = await splitJob(
        p,
        spec("d.csv", { partitionBytes: 64 * 1024, maxAttempts: 2 }),
      );
      const job0 = (await p.checkpoints.getJob(jobId))?.value;
      assert.ok(job0 && partitions >= 3);
      const p1 = (await p.checkpoints.getPartition(jobId, 1))?.value;
      assert.ok(p1);
      let broken = true;
      // A store whose reads of one range keep failing (a failure injected at the port).
      const flaky: ObjectStore = {
        ...p.store,
        head: (b, o) => p.store.head(b, o),
        put: (b, o, body, opt) => p.store.put(b, o, body, opt),
        list: (b, opt) => p.store.list(b, opt),
        delete: (b, o) => p.store.delete(b, o),
        read: (b, o, range) => {
          // Partition 1's reads start at its offset - 1 (or a checkpoint inside it).
          if (
            broken &&
            b === "input" &&
            range &&
            range.start >= p1.start - 1 &&
            range.start < p1.end - 1
          ) {
            return Promise.reject(new StoreUnavailableError("injected: disk on fire"));
          }
          return p.store.read(b, o, range);
        },
      };
      const deps = { ...p, store: flaky };
      for (let round = 0; round < 6; round++) {
        await worker(deps as LocalPipeline, `w${round}`).run({ untilIdle: true });
        p.clock.now += 60_000; // let backed-off messages become visible again
        if ((await p.checkpoints.getJob(jobId))?.value.state === "completed_with_errors") break;
      }
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed_with_errors");
      assert.deepEqual(job?.result?.failedPartitions, [1]);
      assert.match(job?.error ?? "", /^partition 1 failed after 2 attempts; /);
      assert.equal((await p.queue.stats()).deadLettered, 1);
      const failedRow = (await p.checkpoints.getPartition(jobId, 1))?.value;
      assert.match(failedRow?.lastError ?? "", /gave up after 2 failed attempts.*disk on fire/);
      const partial = await verifyJob(deps as LocalPipeline, job ?? (undefined as never));
      assert.ok(partial.ok, JSON.stringify(partial.checks));
      assert.ok(partial.inFailedPartitions > 0);
      assert.equal(partial.scored + partial.inFailedPartitions, 3000);

      broken = false;
      // The fix takes an hour: the report must not count that hour as the job's working time.
      p.clock.now += 3_600_000;
      const { partitions: rerun } = await rerunFailedPartitions(p, jobId);
      assert.deepEqual(rerun, [1]);
      await worker(deps as LocalPipeline, "fixed").run({ untilIdle: true });
      const done = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(done?.state, "completed");
      assert.equal(done?.runAttempt, 2);
      const out = await readOutputs(p.paths.dataDir, done ?? (undefined as never));
      const ids = out.rows.map((l) => (JSON.parse(l) as { customer_id: string }).customer_id);
      assert.equal(new Set(ids).size, 3000);
      assert.equal(ids.length, 3000);
      const whole = await verifyJob(p, done ?? (undefined as never));
      assert.ok(
        whole.ok && whole.scored === 3000 && whole.inFailedPartitions === 0,
        JSON.stringify(whole),
      );
      const events = await completions(p, jobId);
      assert.deepEqual(
        events.map((e) => e.data.status),
        ["completed_with_errors", "completed"],
      );
      // Run 2's manifest and report still say partition 1 failed in run 1, and leave out the idle hour.
      const r = done?.result;
      assert.ok(r?.report);
      const manifest = JSON.parse(
        await readFile(path.join(p.paths.buckets, r.manifest.bucket, r.manifest.object), "utf8"),
      ) as { partitions: { index: number; retryFromEpoch?: number }[] };
      assert.deepEqual(
        manifest.partitions.filter((x) => x.retryFromEpoch !== undefined).map((x) => x.index),
        [1],
      );
      const html = await readFile(
        path.join(p.paths.buckets, r.report.bucket, r.report.object),
        "utf8",
      );
      assert.match(html, /data-earlier-failed-partition="1"/);
      const idle = [...html.matchAll(/data-idle-ms="(\d+)"/g)].map((x) => Number(x[1]));
      assert.ok(Math.max(...idle) >= 3_600_000, `idle gaps ${idle}`);
      assert.doesNotMatch(html, /<dt>duration<\/dt><dd><span class="big">1 h/);
    } finally {
      p.close();
    }
  });
});

describe("models that don't fit", () => {
  it("a descriptor whose features don't match the model's input is rejected before anything is written", async () => {
    const p = freshPipeline();
    try {
      const { readFile } = await import("node:fs/promises");
      const d = JSON.parse(await readFile(descriptor, "utf8")) as {
        features: unknown[];
        onnx: string;
      };
      const dir = path.join(root.dir, "wrong-model");
      await mkdir(dir, { recursive: true });
      await writeFile(
        path.join(dir, "descriptor.json"),
        JSON.stringify({
          ...d,
          onnx: path.join(path.dirname(descriptor), d.onnx),
          features: d.features.slice(1),
        }),
      );
      const file = await customerCsv(root.dir, 100, 71);
      await uploadFile(p, "input", "m.csv", file);
      const { openTabularSession } = await import("../src/tasks/tabular/tabular-task.ts");
      await assert.rejects(
        splitJob(
          {
            ...p,
            checkModel: async (m) =>
              (await openTabularSession(m, { thread: false })).session.close(),
          },
          spec("m.csv", { model: { descriptor: path.join(dir, "descriptor.json") } }),
        ),
        /has shape \[batch, \d+\] but the descriptor's \d+ features make \d+ values|does not accept a \[batch, \d+\] float32 "features" tensor/,
      );
      await writeFile(path.join(dir, "not-onnx.onnx"), "this is not a model");
      await writeFile(path.join(dir, "d2.json"), JSON.stringify({ ...d, onnx: "not-onnx.onnx" }));
      await assert.rejects(
        splitJob(
          {
            ...p,
            checkModel: async (m) =>
              (await openTabularSession(m, { thread: false })).session.close(),
          },
          spec("m.csv", { model: { descriptor: path.join(dir, "d2.json") } }),
        ),
        /cannot load ONNX model .*not-onnx.onnx/,
      );
      assert.equal((await p.checkpoints.listJobs()).length, 0);
    } finally {
      p.close();
    }
  });
});

describe("verify", () => {
  it("proves exactly-once for a finished job and catches a duplicated or missing row", async () => {
    const p = freshPipeline();
    try {
      const file = await customerCsv(root.dir, 1500, 111);
      await uploadFile(p, "input", "v.csv", file);
      const { jobId } = await splitJob(p, spec("v.csv"));
      await worker(p, "w").run({ untilIdle: true });
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.ok(job?.result);
      const good = await verifyJob(p, job);
      assert.ok(good.ok, JSON.stringify(good.checks));
      assert.equal(good.scored, 1500);

      const { output } = job.result;
      const rows = (await readOutputs(p.paths.dataDir, job)).rows;
      const tamper = async (lines: string[]) => {
        await p.store.put(output.bucket, output.object, `${lines.join("\n")}\n`);
        return verifyJob(p, job);
      };
      const duplicated = await tamper([
        ...rows.slice(0, 700),
        rows[699] as string,
        ...rows.slice(700),
      ]);
      assert.equal(duplicated.ok, false);
      const dupCheck = duplicated.checks.find((c) => c.name === "every input record exactly once");
      assert.match(dupCheck?.detail ?? "", /does not match the next prediction row/);
      const missing = await tamper([...rows.slice(0, 300), ...rows.slice(301)]);
      assert.equal(
        missing.checks.find((c) => c.name === "every input record exactly once")?.ok,
        false,
      );
      const extra = await tamper([...rows, rows[0] as string]);
      assert.match(
        extra.checks.find((c) => c.name === "every input record exactly once")?.detail ?? "",
        /rows that match no input record/,
      );
    } finally {
      p.close();
    }
  });
});

describe("model descriptor changed under a running job", () => {
  it("refuses to score with a changed imputation (the descriptor is part of the model's identity)", async () => {
    const p = freshPipeline();
    try {
      const d = JSON.parse(await readFile(descriptor, "utf8")) as {
        features: { missing?: number }[];
        onnx: string;
      };
      const dir = path.join(root.dir, "edited-model");
      await mkdir(dir, { recursive: true });
      const own = path.join(dir, "descriptor.json");
      const base = { ...d, onnx: path.join(path.dirname(descriptor), d.onnx) };
      await writeFile(own, JSON.stringify(base));
      await uploadFile(p, "input", "e.csv", await customerCsv(root.dir, 600, 123));
      const { jobId } = await splitJob(
        p,
        spec("e.csv", { maxAttempts: 1, model: { descriptor: own } }),
      );
      const created = (await p.checkpoints.getJob(jobId))?.value;
      assert.match(created?.model.descriptorSha256 ?? "", /^[0-9a-f]{64}$/);
      // Same ONNX bytes, a different imputation value: scores would change.
      const edited = structuredClone(base);
      const first = edited.features[0];
      if (first) first.missing = (first.missing ?? 0) + 10;
      await writeFile(own, JSON.stringify(edited));
      await worker(p, "w0").run({ untilIdle: true });
      const row = (await p.checkpoints.getPartition(jobId, 0))?.value;
      assert.match(row?.lastError ?? "", /descriptor .* changed since job .* was created/);
      assert.equal(row?.records, 0, "nothing scored with the edited descriptor");
    } finally {
      p.close();
    }
  });
});

describe("input changed under a running job", () => {
  it("refuses to score a new version of the input into the old job", async () => {
    const p = freshPipeline();
    try {
      await uploadFile(p, "input", "x.csv", await customerCsv(root.dir, 800, 121));
      const { jobId, partitions } = await splitJob(p, spec("x.csv", { maxAttempts: 1 }));
      // Overwrite the object after the job was created: its etag changes.
      await p.store.put("input", "x.csv", await readFile(await customerCsv(root.dir, 900, 122)));
      for (let round = 0; round < 3; round++) {
        await worker(p, `w${round}`).run({ untilIdle: true });
        p.clock.now += 60_000;
      }
      const job = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(job?.state, "completed_with_errors");
      assert.equal(job?.result?.failedPartitions.length, partitions);
      const row = (await p.checkpoints.getPartition(jobId, 0))?.value;
      assert.match(row?.lastError ?? "", /changed since job .* was created/);
    } finally {
      p.close();
    }
  });
});
