/**
 * Chaos during an embedding refresh on the embedded default (`refresh --corpus DIR`
 * through the real worker pool): workers SIGKILLed mid-partition and one preempted,
 * a worker SIGKILLed while the job's merge writes the generation, a burst of
 * duplicate refresh requests and a document changed while the refresh runs — all at
 * states of the work, never at times. Every document of the corpus ends up exactly
 * once in the final embedding set with the vector of its current bytes; each
 * corpus state made one job, each generation one completion event.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../src/core/log.ts";
import type { JobRecord } from "../src/core/records.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { REFRESH_COMPLETED } from "../src/refresh/events.ts";
import { type LocalRefreshOptions, refreshLocal } from "../src/refresh/local-refresh.ts";
import { type RefreshOutcome, requestRefresh } from "../src/refresh/refresh.ts";
import { openLocalPipeline } from "../src/runner/local-stores.ts";
import { readBytes } from "../src/sources/read-bytes.ts";
import { documentsBlock, EmbeddingRowCollector } from "../src/tasks/text-embedding/collect-rows.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { partsTile } from "./helpers/chaos.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";
import { corpusTexts, cos, jsonRows, textModel } from "./helpers/text-fixture.ts";

const DOCS = 160;
// Checkpoints due while one is in flight are deferred up to 4 intervals: a worker
// stopped at its first commit meets that bound at 2 + 8 and 10 + 8 documents, short
// of the partition's 20, so the stop always lands mid-partition.
const JOB = { partitionRecords: 20, checkpointEvery: 2, maxAttempts: 5 };
/** Generation 2's job: what its partitions' first workers do to themselves. */
const CHAOS = {
  generation: 2,
  partitions: { 0: "kill-at-commit", 1: "kill-after-commit", 2: "term" },
  killInFinish: true,
};

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;
let corpus: string;

before(async () => {
  root = await tempDir("bi-refresh-chaos-");
  descriptor = await textModel(path.join(root.dir, "model"));
  corpus = path.join(root.dir, "corpus");
  await mkdir(corpus, { recursive: true });
  for (const [id, text] of corpusTexts(DOCS, 21))
    await writeFile(path.join(corpus, `${id}.txt`), text);
});
after(() => root?.cleanup());

/** The kit's in-process vectors for the files now in the corpus. */
async function reference(files: Map<string, string>) {
  const model = await loadTextModel({ descriptorPath: descriptor });
  const scorer = await createFeedsScorer(model.onnxBytes, { thread: false });
  try {
    const sink = new EmbeddingRowCollector();
    await embedInProcess(
      model,
      scorer,
      [documentsBlock([...files].map(([id, text]) => ({ id, text })))],
      sink,
    );
    return new Map(sink.rows.map((r) => [r.id, r.vector]));
  } finally {
    await scorer.close();
  }
}

describe("chaos during an embedding refresh", () => {
  it("kills mid-partition and mid-finish, a burst of duplicate requests, a change mid-run: every document exactly once", async (t) => {
    const dataDir = path.join(root.dir, "state");
    const options: LocalRefreshOptions = {
      dataDir,
      corpus,
      descriptor,
      job: JOB,
      workers: 2,
      log: silentLogger,
      progressIntervalMs: 50,
    };
    const first = await refreshLocal(options);
    assert.equal(first.head?.generation, 1);
    assert.equal(first.head?.current?.documents, DOCS);

    // Change 40 documents, add 20, delete 10.
    const names = (await readdir(corpus)).sort();
    for (const [i, name] of names.entries()) {
      if (i % 4 === 1) await writeFile(path.join(corpus, name), `Rewritten ${i}: cup final, goal.`);
      if (i % 16 === 3) await rm(path.join(corpus, name));
    }
    for (let i = 0; i < 20; i++) {
      await writeFile(path.join(corpus, `added-${i}.txt`), `Added ${i}: a garlic broth recipe.`);
    }
    // An unchanged document, changed in place while generation 2 runs (the burst below).
    const lateName = names.find((_n, i) => i % 4 === 0 && i % 16 !== 3) as string;

    process.env.REFRESH_CHAOS = JSON.stringify(CHAOS);
    const exits: (NodeJS.Signals | null)[] = [];
    let burst: Promise<RefreshOutcome[]> | undefined;
    const side = openLocalPipeline(dataDir, { log: silentLogger });
    let second: Awaited<ReturnType<typeof refreshLocal>>;
    try {
      second = await refreshLocal({
        ...options,
        workerCommand: {
          modulePath: fileURLToPath(new URL("./helpers/refresh-chaos-worker.ts", import.meta.url)),
          execArgv: ["--import", "tsx"],
        },
        onWorkerExit: (_m, _code, signal) => {
          exits.push(signal);
          // The first kill (partition 0 at its first checkpoint, so generation 2 is
          // still running): now the burst of requests, and a late change.
          if (burst || signal !== "SIGKILL") return;
          burst = (async () => {
            await writeFile(path.join(corpus, lateName), "Changed during the refresh: olive oil.");
            return Promise.all(
              Array.from({ length: 25 }, () => requestRefresh(side, first.settings)),
            );
          })();
        },
      });
    } finally {
      delete process.env.REFRESH_CHAOS;
    }
    const answered = await burst;
    side.close();
    assert.ok(answered, "the burst ran while generation 2's job was scored");
    assert.ok(
      answered.every((a) => a.action === "coalesced"),
      answered.map((a) => a.action).join(","),
    );
    assert.equal(second.interrupted, false);
    assert.ok(existsSync(path.join(dataDir, "killed-in-finish")), "a worker died mid-finish");
    assert.ok(exits.filter((s) => s === "SIGKILL").length >= 3, JSON.stringify(exits));

    const head = second.head;
    assert.ok(head?.current);
    assert.equal(head.generation, 3, "the burst made exactly one more refresh");
    assert.equal(head.active, undefined);
    assert.equal(head.dirty, false);
    assert.deepEqual(head.current.counts, {
      new: 0,
      changed: 1,
      unchanged: DOCS - 10 + 20 - 1,
      deleted: 0,
      failed: 0,
    });

    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      const jobs = (await p.checkpoints.listJobs({ limit: 50 })).map((r) => r.value);
      assert.equal(jobs.length, 3, "one job per corpus state");
      for (const job of jobs) {
        assert.equal(job.state, "completed");
        // A refresh keeps the plans (its jobs' inputs) of the last two generations.
        if ((job.refresh?.generation ?? 0) < 2) continue;
        const report = await verifyJob(p, job);
        assert.ok(report.ok, JSON.stringify(report.checks, null, 1));
      }
      const chaosJob = jobs.find((j) => j.refresh?.generation === 2) as JobRecord;
      assert.equal(chaosJob.result?.records, 40 + 20);
      const parts = (await p.checkpoints.listPartitions(chaosJob.jobId)).map((r) => r.value);
      for (const part of parts) {
        assert.equal(partsTile(part), undefined);
        const planned = CHAOS.partitions[part.index as 0 | 1 | 2];
        if (!planned) continue;
        assert.equal(part.attempts[0]?.outcome, planned === "term" ? "handed_back" : "lost");
        assert.ok(
          (part.attempts[1]?.fromOffset ?? 0) > part.start,
          `partition ${part.index} resumed`,
        );
      }
      const events = await p.eventLog.read({ eventType: REFRESH_COMPLETED });
      assert.deepEqual(
        events.map((e) => (e.data as { generation: number }).generation),
        [1, 2, 3],
        "one completion event per generation",
      );
      const gen2 = events[1]?.data as { counts: unknown };
      assert.deepEqual(gen2.counts, {
        new: 20,
        changed: 40,
        unchanged: 110,
        deleted: 10,
        failed: 0,
      });

      // The final set: every file of the corpus exactly once, with its current bytes' vector.
      const files = new Map<string, string>();
      const prefix = first.settings.corpus.prefix;
      for (const name of (await readdir(corpus)).sort()) {
        files.set(`${prefix}${name}`, await readFile(path.join(corpus, name), "utf8"));
      }
      const set = jsonRows(
        (await readBytes(p.store, "output", head.current.embeddings)).toString("utf8"),
      );
      assert.deepEqual(
        set.map((r) => r.id),
        [...files.keys()],
      );
      const ref = await reference(files);
      for (const r of set) {
        assert.equal(
          r.sha256,
          createHash("sha256")
            .update(files.get(r.id) as string)
            .digest("hex"),
        );
        assert.ok(cos(r.embedding, ref.get(r.id) as Float32Array) >= 0.99999, r.id);
      }
    } finally {
      p.close();
    }
    t.diagnostic(
      `${DOCS} documents; generation 2 embedded 60 under 3 SIGKILLs (2 mid-partition, 1 mid-finish) and a SIGTERM, 25 duplicate requests coalesced into generation 3`,
    );
  });
});
