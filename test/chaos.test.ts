/**
 * Seeded chaos on the embedded default: a 1,000,000-record job scored by several
 * workers while a seeded plan kills them (SIGKILL), preempts them (SIGTERM),
 * stops and restarts the whole local pipeline, stalls a worker past its lease
 * while another takes its partition over, delivers the upload event twice,
 * three times and out of order, and fails the stores at their ports. After each
 * run: the job completes, `verifyJob` proves every record exactly once, the
 * predictions equal a clean run's byte for byte, and exactly one completion
 * event was published. The figures (re-processed records, injections, time
 * lost) are printed as diagnostics.
 *
 * The seed is printed; `CHAOS_SEED=<n>` replays a plan. The seed fixes what is
 * injected and when (in records committed, or in calls to a port); which worker
 * happens to be busy at that moment still depends on scheduling.
 */
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { JobSpecInput } from "../src/core/job-spec.ts";
import { silentLogger } from "../src/core/log.ts";
import { type JobRecord, type PartitionRecord, TERMINAL_JOB_STATES } from "../src/core/records.ts";
import { EVENT_TYPES, objectCreatedEvent } from "../src/pipeline/events.ts";
import { PartitionWorker, type WorkerOptions } from "../src/pipeline/partition-worker.ts";
import { COALESCE_LIMIT } from "../src/pipeline/score-partition.ts";
import { splitFromEvent, splitJob } from "../src/pipeline/splitter.ts";
import { verifyJob } from "../src/pipeline/verify.ts";
import { type JobProgress, uploadFile } from "../src/runner/local-runner.ts";
import { type LocalPipeline, openLocalPipeline } from "../src/runner/local-stores.ts";
import type { PoolMember, ProcessPool } from "../src/runner/process-pool.ts";
import {
  attemptFigures,
  chaosSeed,
  clockedPipeline,
  describeJob,
  FaultInjector,
  numericCsv,
  numericModel,
  type PlannedSignal,
  partsTile,
  planSignals,
  pollUntil,
  rngFor,
  sha256File,
  uncommittedEstimate,
} from "./helpers/chaos.ts";
import { objectFile, runJob, tempDir } from "./helpers/pipeline-fixture.ts";

const ROWS = 1_000_000;
const DATA_SEED = 7;
const WORKERS = 3;
/** About 19 partitions of ~52k records, 13 checkpoints each: plenty of mid-partition moments. */
const SPEC = {
  partitionBytes: 16 * 1024 * 1024,
  checkpointEvery: 4_000,
  batchSize: 2048,
  // Chaos makes attempts fail by design; the cap must not turn that into failed partitions.
  maxAttempts: 10,
} satisfies Partial<JobSpecInput>;
/** The most records one chunk holds (a due checkpoint may wait for the last commit). */
const MAX_CHUNK = COALESCE_LIMIT * SPEC.checkpointEvery;
/** A partition is killed at most this often, so the kills alone never reach maxAttempts. */
const MAX_KILLS_PER_PARTITION = 3;
/** A part object's name (src/pipeline/layout.ts): partition, chunk sequence, epoch. */
const PART_NAME = /\/parts\/p(\d+)\/c(\d+)-e(\d+)\.jsonl$/;

const seed = chaosSeed();
const replay = `replay with CHAOS_SEED=${seed}`;

let root: { dir: string; cleanup(): Promise<void> };
let input: string;
let descriptor: string;
let clean: { sha256: string; wallMs: number };

before(async () => {
  root = await tempDir("bi-chaos-");
  input = await numericCsv(ROWS, DATA_SEED);
  descriptor = await numericModel(DATA_SEED);
  const dataDir = path.join(root.dir, "clean");
  const started = Date.now();
  const { job } = await runJob({
    dataDir,
    inputFile: input,
    descriptor,
    workers: WORKERS,
    spec: SPEC,
  });
  const wallMs = Date.now() - started;
  assert.equal(job.state, "completed", describeJob(job));
  clean = { sha256: await predictionsSha(dataDir, job), wallMs };
});
after(() => root?.cleanup());

async function predictionsSha(dataDir: string, job: JobRecord): Promise<string> {
  const out = job.result?.output;
  assert.ok(out, `${describeJob(job)}: no output`);
  return sha256File(objectFile(dataDir, out.bucket, out.object));
}

/**
 * What must hold after any chaos run: completed, exactly once per verify, the
 * clean run's bytes, one completion event, every partition done with parts that
 * tile its range.
 */
async function assertExactlyOnce(
  p: LocalPipeline,
  jobId: string,
): Promise<{ job: JobRecord; partitions: PartitionRecord[] }> {
  const job = (await p.checkpoints.getJob(jobId))?.value;
  assert.ok(job, `job ${jobId} missing (${replay})`);
  assert.equal(job.state, "completed", `${describeJob(job)} (${replay})`);
  const verified = await verifyJob(p, job);
  assert.ok(verified.ok, `verify failed (${replay}): ${JSON.stringify(verified.checks)}`);
  assert.equal(verified.inputRecords, ROWS);
  assert.equal(verified.scored, ROWS);
  assert.equal(
    await predictionsSha(p.paths.dataDir, job),
    clean.sha256,
    `predictions differ from the clean run (${replay})`,
  );
  const completions = await p.eventLog.read({ jobId, eventType: EVENT_TYPES.jobCompleted });
  assert.equal(completions.length, 1, `completion events: ${completions.length} (${replay})`);
  const partitions = (await p.checkpoints.listPartitions(jobId)).map((r) => r.value);
  for (const part of partitions) {
    assert.equal(part.state, "done", `partition ${part.index} is ${part.state} (${replay})`);
    assert.equal(partsTile(part), undefined, replay);
  }
  return { job, partitions };
}

/**
 * Drive a job with in-process workers in rounds: each round runs `WORKERS`
 * workers until the queue has nothing visible (plus any worker the round
 * started on the side), then, with every worker idle and so no live lease to
 * lapse, moves the queue clock a minute on so that dropped deliveries and retry
 * backoffs come due. Returns the rounds it took.
 */
async function driveRounds(
  p: LocalPipeline,
  jobId: string,
  clock: { skew: number },
  makeWorker: (id: string) => PartitionWorker,
  sideWorkers: Promise<void>[] = [],
): Promise<number> {
  for (let round = 1; ; round++) {
    assert.ok(round <= 40, `job not finished after 40 rounds (${replay})`);
    await Promise.all(
      Array.from({ length: WORKERS }, (_, i) =>
        makeWorker(`w${i + 1}.r${round}`).run({ untilIdle: true }),
      ),
    );
    while (sideWorkers.length > 0) await sideWorkers.shift();
    const row = (await p.checkpoints.getJob(jobId))?.value;
    if (row && TERMINAL_JOB_STATES.includes(row.state) && row.completionPublished) return round;
    clock.skew += 61_000;
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The same job with in-process workers and no faults: the baseline for time lost (its bytes must match too). */
async function cleanInProcessRun(): Promise<number> {
  const clock = { skew: 0 };
  const p = clockedPipeline(path.join(root.dir, "in-process-clean"), () => Date.now() + clock.skew);
  try {
    await uploadFile(p, "input", "numeric.csv", input);
    const { jobId } = await splitJob(p, {
      input: { bucket: "input", object: "numeric.csv" },
      output: { bucket: "output" },
      model: { descriptor },
      ...SPEC,
    });
    const started = Date.now();
    await driveRounds(p, jobId, clock, (id) => inProcessWorker(p, id));
    const ms = Date.now() - started;
    // No full verify here (the chaos runs have theirs): completed, with the clean run's bytes.
    const job = (await p.checkpoints.getJob(jobId))?.value;
    assert.equal(job?.state, "completed", describeJob(job));
    assert.equal(await predictionsSha(p.paths.dataDir, job), clean.sha256);
    return ms;
  } finally {
    p.close();
  }
}

/** A worker in this process, scoring on the main thread (the suite controls every step it takes). */
function inProcessWorker(
  deps: LocalPipeline,
  id: string,
  hooks: Pick<WorkerOptions, "onClaim" | "onCommit"> = {},
): PartitionWorker {
  return new PartitionWorker(deps, {
    workerId: id,
    receiveWaitSeconds: 0,
    scorer: { thread: false },
    ...hooks,
  });
}

/** A signal the suite sent, and what the victim had committed then. */
interface Fired {
  action: PlannedSignal["action"];
  at: number;
  phase: number;
  atMs: number;
  records: number;
  worker?: string;
  partition?: number;
  committedOffset?: number;
}

describe(`chaos on the embedded default (CHAOS_SEED=${seed})`, () => {
  it("worker processes SIGKILLed and SIGTERMed mid-partition, and the whole pipeline stopped and restarted", async (t) => {
    const rng = rngFor(seed, "processes");
    const plan = planSignals(rng, { kills: [6, 10], terms: [2, 4], first: 0.03, last: 0.7 });
    t.diagnostic(
      `CHAOS_SEED=${seed}; plan: ${plan.map((s) => `${s.action}@${(s.at * 100).toFixed(0)}%`).join(" ")}`,
    );
    const dataDir = path.join(root.dir, "processes");
    // A victim's partition must have enough left when its row is read just before the
    // signal that the signal lands mid-partition: a worker scores on while its last commit
    // is written, up to COALESCE_LIMIT chunks past its row, and then some of the next.
    const minLeft =
      ((COALESCE_LIMIT + 1.5) * SPEC.checkpointEvery * (await stat(input)).size) / ROWS;
    const fired: Fired[] = [];
    const killsPerPartition = new Map<number, number>();
    let signalled = new Set<string>();
    let pool: ProcessPool | undefined;
    let phase = 1;
    const stop = new AbortController();

    const eligible = (m: PoolMember): boolean => {
      const c = m.committed;
      const partition = m.claim?.partition;
      return (
        m.busy &&
        !m.stopping &&
        !signalled.has(m.id) &&
        partition !== undefined &&
        c !== undefined &&
        !c.done &&
        c.partition === partition &&
        (killsPerPartition.get(partition) ?? 0) < MAX_KILLS_PER_PARTITION
      );
    };
    // Reads the partition rows just before a signal: the pool's view of commits can lag.
    let rows: LocalPipeline | undefined;
    const inject = async (progress: JobProgress): Promise<void> => {
      for (;;) {
        const step = plan[fired.length];
        if (!pool || !step || progress.records < step.at * ROWS) return;
        if (phase === 1 && stop.signal.aborted) return; // shutting down: the rest goes to the restarted run
        if (step.action === "restart") {
          fired.push({ ...step, phase, atMs: Date.now(), records: progress.records });
          stop.abort();
          return;
        }
        const victims = pool.list().filter(eligible);
        const victim = victims[rng.int(victims.length)];
        const partition = victim?.claim?.partition;
        // Nobody mid-partition right now: try again on the next progress tick.
        if (!victim || partition === undefined) return;
        const worker = `${victim.id}-${process.pid}`; // its id in the partition's attempts
        rows ??= openLocalPipeline(dataDir, { log: silentLogger });
        const row = (await rows.checkpoints.getPartition(progress.jobId, partition))?.value;
        if (row?.state !== "running" || row.owner !== worker || row.end - row.offset < minLeft) {
          return;
        }
        if (!pool.signal(victim.id, step.action)) return;
        signalled.add(victim.id);
        if (step.action === "SIGKILL")
          killsPerPartition.set(partition, (killsPerPartition.get(partition) ?? 0) + 1);
        fired.push({
          ...step,
          phase,
          atMs: Date.now(),
          records: progress.records,
          worker,
          partition,
          committedOffset: row.offset,
        });
      }
    };
    // One injection pass at a time; the runner doesn't wait for it, so the suite does.
    let pending: Promise<void> | undefined;
    let injectError: unknown;
    const onProgress = (progress: JobProgress): void => {
      if (pending) return;
      pending = inject(progress)
        .catch((err: unknown) => {
          injectError ??= err;
        })
        .finally(() => {
          pending = undefined;
        });
    };
    const settle = async (): Promise<void> => {
      await pending;
      rows?.close();
      rows = undefined;
      if (injectError) throw injectError;
    };
    const options = {
      dataDir,
      inputFile: input,
      descriptor,
      workers: WORKERS,
      spec: SPEC,
      onPool: (p: ProcessPool) => {
        pool = p;
        // Pool ids restart at w1 in a new pool.
        signalled = new Set();
      },
      onProgress,
    };

    const started = Date.now();
    const first = await runJob({ ...options, signal: stop.signal }).finally(settle);
    const firstMs = Date.now() - started;
    assert.equal(first.interrupted, true, `the restart never fired (${replay})`);
    assert.equal(first.split.created, true);
    assert.equal(first.job.state, "running", describeJob(first.job));
    {
      // A graceful stop leaves nothing leased: the restarted run waits for no visibility timeout.
      const p = openLocalPipeline(dataDir, { log: silentLogger });
      try {
        assert.equal((await p.queue.stats()).inFlight, 0, `messages still leased (${replay})`);
      } finally {
        p.close();
      }
    }
    phase = 2;
    const restartedAt = Date.now();
    const second = await runJob(options).finally(settle);
    const chaosMs = firstMs + (Date.now() - restartedAt);
    assert.equal(second.split.jobId, first.split.jobId, "the restart must continue the same job");
    assert.equal(second.split.created, false, "the restart must not create a job");
    assert.equal(
      fired.length,
      plan.length,
      `only ${fired.length} of ${plan.length} injections found a worker mid-partition (${replay})`,
    );

    const p = openLocalPipeline(dataDir, { log: silentLogger });
    try {
      const { partitions } = await assertExactlyOnce(p, first.split.jobId);
      const byIndex = new Map(partitions.map((x) => [x.index, x]));
      let estimate = 0;
      for (const f of fired) {
        if (f.action === "restart") continue;
        const part = byIndex.get(f.partition ?? -1);
        assert.ok(part, `partition ${f.partition} missing`);
        const attempts = [...part.attempts].sort((a, b) => a.epoch - b.epoch);
        // The victim's attempt: the last one of its worker id begun before the signal.
        const i = attempts.findLastIndex(
          (a) => a.worker === f.worker && Date.parse(a.startedAt) <= f.atMs,
        );
        const victim = attempts[i];
        const expected = f.action === "SIGKILL" ? "lost" : "handed_back";
        assert.equal(
          victim?.outcome,
          expected,
          `${f.action} of ${f.worker} on partition ${f.partition}: ${JSON.stringify(attempts)} (${replay})`,
        );
        // The next attempt resumed from the victim's last checkpoint, not the partition start.
        const next = attempts[i + 1];
        assert.ok(
          next && next.fromOffset >= (f.committedOffset ?? 0) && next.fromOffset > part.start,
          `after ${f.action} partition ${f.partition} did not resume from its checkpoint ${f.committedOffset}: ${JSON.stringify(attempts)} (${replay})`,
        );
        if (f.action === "SIGKILL") {
          estimate += uncommittedEstimate(part, victim.epoch, f.atMs, MAX_CHUNK) ?? 0;
        }
      }
      const kills = fired.filter((f) => f.action === "SIGKILL").length;
      const terms = fired.filter((f) => f.action === "SIGTERM").length;
      assert.ok(kills >= 6 && terms >= 2, `kills ${kills}, terms ${terms}`);
      const figures = attemptFigures(partitions, MAX_CHUNK);
      const restart = fired.find((f) => f.action === "restart");
      t.diagnostic(
        `injected: ${kills} SIGKILL, ${terms} SIGTERM, restart at ${restart?.records.toLocaleString("en")} records committed`,
      );
      t.diagnostic(
        `attempts: ${figures.attempts} on ${partitions.length} partitions; ${figures.lost} lost, ${figures.handedBack} handed back, ${figures.resumed} resumed from a checkpoint`,
      );
      t.diagnostic(
        `records re-processed: about ${estimate.toLocaleString("en")} (the killed workers' commit rates × time since their last commit), at most ${figures.reprocessedAtMost.toLocaleString("en")} (${((figures.reprocessedAtMost / ROWS) * 100).toFixed(2)}% of ${ROWS.toLocaleString("en")}; see attemptFigures)`,
      );
      t.diagnostic(
        `time: clean ${seconds(clean.wallMs)}, chaos ${seconds(chaosMs)} (before restart ${seconds(firstMs)}), lost ${seconds(chaosMs - clean.wallMs)}`,
      );
    } finally {
      p.close();
    }
  });

  it("store failures at the ports, a stalled worker fenced out, and duplicate and out-of-order upload events (in-process workers)", async (t) => {
    const rng = rngFor(seed, "in-process");
    const faults = new FaultInjector(rngFor(seed, "faults"), {
      // Attempt-ending failures (puts, checkpoint writes) plus the stall stay below maxAttempts.
      put: { count: 3, within: 80 },
      checkpoint: { count: 4, within: 100 },
      receive: { count: 3, within: 20 },
    });
    t.diagnostic(`CHAOS_SEED=${seed}`);
    // The queue's clock: moved ahead only while every worker is idle, to let lapsed
    // deliveries and retry backoffs come due without sleeping.
    const clock = { skew: 0 };
    const now = () => Date.now() + clock.skew;
    const baselineMs = await cleanInProcessRun();
    const p = clockedPipeline(path.join(root.dir, "in-process"), now);
    try {
      // Two versions of one object: an older, small one, then the 1M-record one.
      const older = await numericCsv(2000, DATA_SEED + 1);
      const v1 = await uploadFile(p, "input", "numeric.csv", older);
      const v2 = await uploadFile(p, "input", "numeric.csv", input);
      assert.notEqual(v1.etag, v2.etag);
      const event = (etag: string, id: string) =>
        objectCreatedEvent({ bucket: "input", object: "numeric.csv", etag, eventId: id });
      const oldEvent = event(v1.etag, "ev-old");
      const newEvent = event(v2.etag, "ev-new");
      const defaults = { output: { bucket: "output" }, model: { descriptor }, ...SPEC };
      // The newer event first; then, in seeded order and two at once, the newer one twice
      // more (3 deliveries) and the older one twice (late, out of order).
      const late = [newEvent, newEvent, oldEvent, oldEvent];
      for (let i = late.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [late[i], late[j]] = [late[j] as typeof newEvent, late[i] as typeof newEvent];
      }
      const results = [await splitFromEvent(p, newEvent, defaults)];
      results.push(
        ...(await Promise.all(late.slice(0, 2).map((e) => splitFromEvent(p, e, defaults)))),
      );
      for (const e of late.slice(2)) results.push(await splitFromEvent(p, e, defaults));
      const jobId = results[0]?.jobId as string;
      assert.ok(
        results.every((r) => r.jobId === jobId),
        "every delivery names the same job",
      );
      assert.deepEqual(
        results.map((r) => r.created),
        [true, false, false, false, false],
        "only the first delivery creates the job",
      );
      const created = (await p.checkpoints.getJob(jobId))?.value;
      assert.equal(created?.input.etag, v2.etag, "the job scores the current version");
      assert.equal((await p.checkpoints.listJobs()).length, 1, "no job for the stale version");
      const partitionCount = results[0]?.partitions ?? 0;
      assert.equal((await p.queue.stats()).visible, partitionCount, "partitions enqueued once");
      const announcedJobs = await p.eventLog.read({ jobId, eventType: EVENT_TYPES.jobCreated });
      assert.equal(announcedJobs.length, 1, "job.created published once");

      // Workers in this process, on ports that fail as planned.
      const frozen = new Set<string>();
      const claims = new Map<string, string>();
      const stalePuts: { name: string; records: number }[] = [];
      let stall:
        | { worker: string; partition: number; epoch: number; seq: number; takeoverEpoch?: number }
        | undefined;
      let stallError: unknown;
      const stallAfter = 15 + rng.int(30); // the commit (counted across workers) that stalls
      let commits = 0;
      const deps: LocalPipeline = {
        ...p,
        store: faults.objectStore(p.store, (_bucket, name, body) => {
          // Parts the stalled worker writes under its stale epoch after the stall point.
          const m = PART_NAME.exec(name);
          if (!stall || !m || (typeof body !== "string" && !Buffer.isBuffer(body))) return;
          const [partition, seq, epoch] = [Number(m[1]), Number(m[2]), Number(m[3])];
          if (partition !== stall.partition || epoch !== stall.epoch || seq < stall.seq) return;
          const text = typeof body === "string" ? body : body.toString("utf8");
          stalePuts.push({ name, records: text.split("\n").filter(Boolean).length });
        }),
        checkpoints: faults.checkpointStore(p.checkpoints),
        queue: faults.taskQueue(p.queue, frozen),
      };
      const extras: Promise<void>[] = [];
      const makeWorker = (id: string): PartitionWorker =>
        inProcessWorker(deps, id, {
          onClaim: (c) => (c ? claims.set(id, c.receipt) : claims.delete(id)),
          onCommit: async (row) => {
            commits++;
            if (stall || commits < stallAfter || row.state === "done") return;
            // Stall only with most of the partition left: it must wake with work to commit.
            if (row.end - row.offset < (row.end - row.start) / 2) return;
            const receipt = claims.get(id);
            if (!receipt) {
              stallError = new Error(`${id} committed without a claim`);
              return;
            }
            stall = { worker: id, partition: row.index, epoch: row.epoch, seq: row.parts.length };
            // Frozen: no heartbeats, and its delivery lapses (as after visibilitySeconds without
            // one). Stores behave meanwhile, so nothing delays the takeover.
            faults.paused = true;
            frozen.add(receipt);
            await p.queue.changeVisibility(receipt, 0);
            extras.push(makeWorker(`takeover-${id}`).run({ untilIdle: true }));
            const s = stall;
            try {
              s.takeoverEpoch = await pollUntil(
                `a takeover of partition ${row.index}`,
                async () => {
                  const now = (await p.checkpoints.getPartition(jobId, row.index))?.value;
                  return now && now.epoch > s.epoch ? now.epoch : undefined;
                },
                { timeoutMs: 60_000 },
              );
            } catch (err) {
              // Thrown here it would only fail this worker's attempt; the suite reports it.
              stallError = err;
            }
            faults.paused = false;
            // Wake up: the next commit of the stale epoch must be refused.
          },
        });

      const started = Date.now();
      const rounds = await driveRounds(p, jobId, clock, makeWorker, extras);
      const chaosMs = Date.now() - started;

      const { partitions } = await assertExactlyOnce(p, jobId);
      // The stalled worker woke, tried to commit its stale epoch, and was fenced out.
      assert.equal(stallError, undefined, replay);
      assert.ok(stall?.takeoverEpoch, `the stall never happened (${replay})`);
      const stalled = partitions.find((x) => x.index === stall?.partition);
      assert.ok(stalled);
      const staleAttempt = stalled.attempts.find((a) => a.epoch === stall?.epoch);
      assert.equal(staleAttempt?.worker, stall.worker);
      assert.equal(staleAttempt?.outcome, "lost", JSON.stringify(stalled.attempts));
      assert.ok(
        stalePuts.length > 0,
        `the stalled worker never tried to commit after waking (${replay})`,
      );
      assert.ok(
        stalled.parts.every((r) => r.epoch !== stall?.epoch || r.seq < (stall?.seq ?? 0)),
        `a part written after the takeover by the stale epoch was committed: ${JSON.stringify(stalled.parts)}`,
      );
      // Every kind of store failure happened and the job still completed exactly once.
      for (const kind of ["put", "checkpoint", "receive", "merge-put"] as const) {
        assert.ok(faults.count(kind) > 0, `no ${kind} failure was injected (${replay})`);
      }

      const figures = attemptFigures(partitions, MAX_CHUNK);
      const doneEvents = await p.eventLog.read({ jobId, eventType: EVENT_TYPES.partitionDone });
      const announced = new Set(doneEvents.map((e) => e.data.partition));
      const unannounced = partitions.filter((x) => !announced.has(x.index)).map((x) => x.index);
      const faultSummary = (kind: "put" | "checkpoint" | "receive" | "merge-put") =>
        `${faults.count(kind)} ${kind} (${faults.count(kind, "before")} before, ${faults.count(kind, "after")} after)`;
      t.diagnostic(
        `upload events: 5 deliveries (new ×3, old ×2, old after new) → 1 job, ${partitionCount} partitions enqueued once`,
      );
      t.diagnostic(
        `store failures: ${faultSummary("put")}, ${faultSummary("checkpoint")}, ${faultSummary("receive")}, ${faultSummary("merge-put")}`,
      );
      for (const f of faults.injected) t.diagnostic(`  ${f.kind} #${f.call} ${f.mode}: ${f.what}`);
      t.diagnostic(
        `stall: at commit ${stallAfter} or later, ${stall.worker} on partition ${stall.partition} (epoch ${stall.epoch}) taken over at epoch ${stall.takeoverEpoch}; it woke and wrote ${stalePuts.reduce((n, s) => n + s.records, 0).toLocaleString("en")} records under the stale epoch, never merged`,
      );
      t.diagnostic(
        `attempts: ${figures.attempts} on ${partitions.length} partitions; ${figures.lost} lost, ${figures.errored} errored, ${figures.resumed} resumed; partition.done events ${doneEvents.length}/${partitions.length}${unannounced.length > 0 ? ` (missing for partition ${unannounced.join(", ")})` : ""}`,
      );
      assert.deepEqual(
        unannounced,
        [],
        "every finished partition is announced once, even after a lost reply",
      );
      t.diagnostic(
        `records re-processed: at most ${figures.reprocessedAtMost.toLocaleString("en")} (${((figures.reprocessedAtMost / ROWS) * 100).toFixed(2)}%; see attemptFigures), of which the fenced worker's stale chunk ${stalePuts.reduce((n, s) => n + s.records, 0).toLocaleString("en")}`,
      );
      t.diagnostic(
        `time (scoring, after the split): clean ${seconds(baselineMs)}, chaos ${seconds(chaosMs)} in ${rounds} rounds (queue clock moved ${seconds(clock.skew)}), lost ${seconds(chaosMs - baselineMs)}`,
      );
    } finally {
      p.close();
    }
  });
});
