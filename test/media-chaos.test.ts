/**
 * Chaos on an image job: worker processes SIGKILLed mid-partition (at a checkpoint,
 * and mid-chunk with images decoded and batches on the inference thread) and one
 * preempted (SIGTERM), at states of the work rather than times, so the run is the
 * same under any load. Every object of the library must come out exactly once —
 * in the predictions or the errors — byte for byte as in a clean run.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { EVENT_TYPES } from "../src/pipeline/events.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { partsTile } from "./helpers/chaos.ts";
import { shapeLibrary, shapesModelDir } from "./helpers/media-fixture.ts";
import { objectFile, runJob, tempDir } from "./helpers/pipeline-fixture.ts";

const IMAGES = 200;
// A checkpoint due while the last commit is in flight is deferred, up to 4 intervals
// (src/pipeline/score-partition.ts): a worker told to stop at its first commit meets
// that bound at 5 + 20 and 25 + 20 records, short of the partition's 50, so the stop
// always lands mid-partition.
const SPEC = { partitionRecords: 50, checkpointEvery: 5, maxAttempts: 5 };
/** Partition → what its first attempt's worker does to itself after its first commit. */
const PLAN = { 0: "kill-at-commit", 1: "kill-after-commit", 2: "kill-after-commit", 3: "term" };

let root: { dir: string; cleanup(): Promise<void> };
let library: string;
let descriptor: string;

before(async () => {
  root = await tempDir("bi-media-chaos-");
  descriptor = path.join(await shapesModelDir(), "shapes.json");
  library = path.join(root.dir, "library");
  await shapeLibrary(library, { count: IMAGES, seed: 33, bad: true });
});
after(() => root?.cleanup());

async function sha256Of(dataDir: string, job: JobRecord, which: "output" | "errorsOutput") {
  const r = job.result;
  assert.ok(r, `job ${job.jobId} has no result`);
  const file = objectFile(dataDir, r[which].bucket, r[which].object);
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

describe("chaos on an image job", () => {
  it("workers killed mid-partition and preempted: every object exactly once, as in a clean run", async (t) => {
    const cleanDir = path.join(root.dir, "clean");
    const clean = await runJob({ dataDir: cleanDir, inputFile: library, descriptor, spec: SPEC });
    assert.equal(clean.job.state, "completed", clean.job.error);

    const dataDir = path.join(root.dir, "chaos");
    process.env.MEDIA_CHAOS = JSON.stringify(PLAN);
    const exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
    const chaos = await runJob({
      dataDir,
      inputFile: library,
      descriptor,
      spec: SPEC,
      workerCommand: {
        modulePath: fileURLToPath(new URL("./helpers/media-chaos-worker.ts", import.meta.url)),
        execArgv: ["--import", "tsx"],
      },
      onWorkerExit: (_m, code, signal) => {
        exits.push({ code, signal });
      },
    }).finally(() => {
      delete process.env.MEDIA_CHAOS;
    });
    const job = chaos.job;
    assert.equal(job.state, "completed", job.error);
    assert.equal(job.partitionCount, 5);
    assert.equal(exits.filter((e) => e.signal === "SIGKILL").length, 3, JSON.stringify(exits));

    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      const report = await verifyJob(p, job);
      assert.ok(report.ok, JSON.stringify(report.checks, null, 1));
      assert.deepEqual(
        [report.inputRecords, report.scored, report.errors],
        [IMAGES + 5, IMAGES, 5],
      );
      const partitions = (await p.checkpoints.listPartitions(job.jobId)).map((r) => r.value);
      for (const part of partitions) {
        assert.equal(partsTile(part), undefined);
        const planned = PLAN[part.index as keyof typeof PLAN];
        const first = part.attempts[0];
        if (!planned) {
          assert.equal(part.attempts.length, 1, `partition ${part.index} ran once`);
          continue;
        }
        assert.equal(
          first?.outcome,
          planned === "term" ? "handed_back" : "lost",
          `partition ${part.index}`,
        );
        const next = part.attempts[1];
        assert.ok(next && next.fromOffset > part.start, `partition ${part.index} resumed mid-way`);
      }
      const completions = await p.eventLog.read({
        jobId: job.jobId,
        eventType: EVENT_TYPES.jobCompleted,
      });
      assert.equal(completions.length, 1);
    } finally {
      p.close();
    }
    assert.equal(
      await sha256Of(dataDir, job, "output"),
      await sha256Of(cleanDir, clean.job, "output"),
      "predictions equal the clean run's",
    );
    assert.equal(
      await sha256Of(dataDir, job, "errorsOutput"),
      await sha256Of(cleanDir, clean.job, "errorsOutput"),
      "errors equal the clean run's (reasons included)",
    );
    t.diagnostic(
      `${IMAGES + 5} objects in 5 partitions; 3 SIGKILLs and 1 SIGTERM mid-partition; verified exactly once`,
    );
  });
});
