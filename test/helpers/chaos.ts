/**
 * Helpers for the chaos suite: a seeded plan of injected failures, fault-injecting
 * wrappers around the ports (object store, checkpoint store, task queue), cached
 * 1M-row fixtures, and the figures the suite prints.
 */
import { createHash, randomInt } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { writeNumericLogisticModel } from "../../scripts/train-model.ts";
import { SqliteTaskQueue } from "../../src/adapters/local/sqlite-task-queue.ts";
import { StoreUnavailableError } from "../../src/core/errors.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { JobRecord, PartitionRecord } from "../../src/core/records.ts";
import { Rng, writeDataset } from "../../src/model/datasets.ts";
import type { CheckpointStore } from "../../src/ports/checkpoint-store.ts";
import type { ObjectStore } from "../../src/ports/object-store.ts";
import type { QueueMessage, TaskQueue } from "../../src/ports/task-queue.ts";
import {
  LOCAL_MAX_DELIVERIES,
  type LocalPipeline,
  openLocalPipeline,
} from "../../src/runner/local-stores.ts";

const FIXTURE_ROOT = path.join(os.tmpdir(), "bi-test-fixtures");

/**
 * The suite's seed: `CHAOS_SEED` when set (to replay a failure), else a fresh
 * random one. Printed by the suite so any run can be replayed.
 */
export function chaosSeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CHAOS_SEED;
  if (raw === undefined || raw === "") return randomInt(1, 2 ** 31);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`CHAOS_SEED must be an integer, got "${raw}"`);
  return seed;
}

/**
 * An independent PRNG stream per concern, derived from the suite seed, so adding
 * an injection to one stream does not shift the choices of the others.
 */
export function rngFor(seed: number, stream: string): Rng {
  // FNV-1a over "seed:stream": unrelated 32-bit seeds for unrelated streams.
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${stream}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return new Rng(h);
}

/** Build a cached fixture once per machine: write to a temp name, then rename into place. */
async function cached(
  target: string,
  build: (tmp: string) => Promise<void>,
  isDir = false,
): Promise<string> {
  if (existsSync(target)) return target;
  await mkdir(FIXTURE_ROOT, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  if (isDir) await mkdir(tmp, { recursive: true });
  await build(tmp);
  // Another test process may have won the race; its file is identical (same seed).
  await rename(tmp, target).catch(() => rm(tmp, { recursive: true, force: true }));
  return target;
}

/** A generated numeric CSV (`id,f0..f31`), deterministic by rows and seed, cached in the OS temp dir. */
export function numericCsv(rows: number, seed: number): Promise<string> {
  return cached(path.join(FIXTURE_ROOT, `numeric-${rows}-${seed}.csv`), async (tmp) => {
    await writeDataset({ kind: "numeric", rows, seed, format: "csv", out: tmp });
  });
}

/** The cheap numeric logistic model (32 features → "score"), cached; returns its descriptor path. */
export async function numericModel(seed: number): Promise<string> {
  const dir = await cached(
    path.join(FIXTURE_ROOT, `numeric-logreg-${seed}`),
    async (tmp) => {
      await writeNumericLogisticModel({ outDir: tmp, seed });
    },
    true,
  );
  return path.join(dir, "descriptor.json");
}

/** sha256 of a file, streamed (predictions of 1M rows are tens of MB). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Poll `check` until it returns a value other than undefined, at most `timeoutMs`
 * (state changes elsewhere: another worker, a child process); throws saying what
 * never happened.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}

/**
 * The embedded pipeline over `dataDir` with its queue on `now` (so the suite can
 * let visibility lapse and retry backoffs pass without sleeping).
 */
export function clockedPipeline(dataDir: string, now: () => number): LocalPipeline {
  const base = openLocalPipeline(dataDir, { log: silentLogger, now });
  base.tasks.close();
  const tasks = new SqliteTaskQueue({
    path: base.paths.queueDb,
    queue: "partitions",
    maxDeliveries: LOCAL_MAX_DELIVERIES,
    now,
  });
  return {
    ...base,
    tasks,
    queue: tasks,
    close() {
      base.close();
      tasks.close();
    },
  };
}

/** One injection of the process-level plan, fired once committed records pass `at`. */
export interface PlannedSignal {
  /** Fraction of the job's records committed when it fires. */
  at: number;
  action: "SIGKILL" | "SIGTERM" | "restart";
}

/**
 * The process-level chaos plan for one job: `kills` SIGKILLs, `terms` SIGTERMs
 * and one stop-and-restart of the whole local pipeline, at seeded fractions of
 * the records committed. The fractions stay below `last` so every injection
 * lands while partitions are still in flight.
 */
export function planSignals(
  rng: Rng,
  options: { kills: [number, number]; terms: [number, number]; first: number; last: number },
): PlannedSignal[] {
  const between = ([lo, hi]: [number, number]) => lo + rng.int(hi - lo + 1);
  const actions: PlannedSignal["action"][] = [
    ...Array<"SIGKILL">(between(options.kills)).fill("SIGKILL"),
    ...Array<"SIGTERM">(between(options.terms)).fill("SIGTERM"),
    "restart",
  ];
  return actions
    .map((action) => ({ action, at: rng.uniform(options.first, options.last) }))
    .sort((a, b) => a.at - b.at);
}

/** The ports the injector can fail. */
export type FaultKind = "put" | "checkpoint" | "receive";

/** How many failures of each kind to inject, and within how many calls of that kind. */
export type FaultPlan = Record<FaultKind, { count: number; within: number }>;

/** One injected failure. */
export interface InjectedFault {
  kind: FaultKind | "merge-put";
  /**
   * before: the call fails and nothing happens. after: the operation takes effect,
   * then the call fails (a lost acknowledgement; for a receive, a client-side
   * timeout after the server handed out the message).
   */
  mode: "before" | "after";
  /** The call of that kind (1-based) that failed. */
  call: number;
  what: string;
}

/**
 * Seeded store failures injected at the ports. For each kind the seed picks
 * `count` distinct calls among the first `within` (each call fails with
 * probability count/within, and exactly `count` fail, so the job still
 * completes and every kind is exercised); failure modes alternate between
 * before and after the real operation. While `paused` calls pass untouched and
 * are not counted, so a pause postpones the plan rather than dropping it.
 */
export class FaultInjector {
  readonly injected: InjectedFault[] = [];
  paused = false;
  private readonly schedule: Record<FaultKind, Map<number, "before" | "after">>;
  private readonly calls: Record<FaultKind, number> = { put: 0, checkpoint: 0, receive: 0 };
  private predictionsFailed = false;

  constructor(
    rng: Rng,
    plan: FaultPlan,
    /** Also fail the first put of a job's merged predictions, after writing it (the merge must be redone). */
    private readonly failMergePut = true,
  ) {
    const pick = ({ count, within }: { count: number; within: number }) => {
      const calls = new Set<number>();
      while (calls.size < Math.min(count, within)) calls.add(1 + rng.int(within));
      let after = rng.bernoulli(0.5);
      const modes = new Map<number, "before" | "after">();
      for (const call of [...calls].sort((a, b) => a - b)) {
        modes.set(call, after ? "after" : "before");
        after = !after;
      }
      return modes;
    };
    this.schedule = {
      put: pick(plan.put),
      checkpoint: pick(plan.checkpoint),
      receive: pick(plan.receive),
    };
  }

  /** Injected failures of one kind. */
  count(kind: InjectedFault["kind"], mode?: InjectedFault["mode"]): number {
    return this.injected.filter((f) => f.kind === kind && (mode === undefined || f.mode === mode))
      .length;
  }

  private decide(kind: FaultKind, what: string): "none" | "before" | "after" {
    if (this.paused) return "none";
    const call = ++this.calls[kind];
    const mode = this.schedule[kind].get(call);
    if (!mode) return "none";
    this.injected.push({ kind, mode, call, what });
    return mode;
  }

  /** An ObjectStore whose puts fail as planned with StoreUnavailableError. */
  objectStore(
    inner: ObjectStore,
    onPut?: (bucket: string, name: string, body: Buffer | string | Readable) => void,
  ): ObjectStore {
    return {
      head: (b, o) => inner.head(b, o),
      read: (b, o, range) => inner.read(b, o, range),
      list: (b, options) => inner.list(b, options),
      delete: (b, o) => inner.delete(b, o),
      put: async (bucket, name, body, options) => {
        onPut?.(bucket, name, body);
        let fault: "none" | "before" | "after";
        if (
          this.failMergePut &&
          !this.paused &&
          !this.predictionsFailed &&
          /\/predictions\.[a-z]+$/.test(name)
        ) {
          this.predictionsFailed = true;
          this.injected.push({ kind: "merge-put", mode: "after", call: 1, what: name });
          fault = "after";
        } else {
          fault = this.decide("put", name);
        }
        if (fault === "before") {
          throw new StoreUnavailableError(`injected: put ${bucket}/${name} failed`);
        }
        const result = await inner.put(bucket, name, body, options);
        if (fault === "after") {
          throw new StoreUnavailableError(`injected: put ${bucket}/${name} lost its response`);
        }
        return result;
      },
    };
  }

  /** A CheckpointStore whose row updates (checkpoint commits, claims, job transitions) fail as planned. */
  checkpointStore(inner: CheckpointStore): CheckpointStore {
    const write = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
      const fault = this.decide("checkpoint", what);
      if (fault === "before") throw new StoreUnavailableError(`injected: ${what} failed`);
      const result = await op();
      if (fault === "after") throw new StoreUnavailableError(`injected: ${what} lost its response`);
      return result;
    };
    return {
      createJob: (job) => inner.createJob(job),
      getJob: (id) => inner.getJob(id),
      listJobs: (options) => inner.listJobs(options),
      createPartitions: (parts) => inner.createPartitions(parts),
      getPartition: (id, index) => inner.getPartition(id, index),
      listPartitions: (id) => inner.listPartitions(id),
      readPartitions: (id) => inner.readPartitions(id),
      updateJob: (id, value, version) =>
        write(`update of job ${id} to ${value.state}`, () => inner.updateJob(id, value, version)),
      updatePartition: (value, version) =>
        write(`update of partition ${value.index} (epoch ${value.epoch})`, () =>
          inner.updatePartition(value, version),
        ),
    };
  }

  /**
   * A TaskQueue whose receives fail as planned: at once, or after claiming (the
   * claimed messages stay invisible until their visibility lapses). Heartbeats of
   * the receipts in `frozen` are swallowed, as if their worker were stalled.
   */
  taskQueue(inner: TaskQueue, frozen: ReadonlySet<string>): TaskQueue {
    return {
      send: (messages) => inner.send(messages),
      stats: () => inner.stats(),
      delete: (receipt) => inner.delete(receipt),
      deadLetter: (receipt, reason) => inner.deadLetter(receipt, reason),
      changeVisibility: async (receipt, seconds) => {
        if (frozen.has(receipt)) return;
        await inner.changeVisibility(receipt, seconds);
      },
      receive: async (options): Promise<QueueMessage[]> => {
        const fault = this.decide("receive", "receive");
        if (fault === "before") throw new StoreUnavailableError("injected: queue receive failed");
        const messages = await inner.receive(options);
        if (fault === "after") {
          throw new StoreUnavailableError(
            `injected: queue receive timed out (${messages.length} message(s) claimed and dropped)`,
          );
        }
        return messages;
      },
    };
  }
}

/** Figures about the attempts of a finished job. */
export interface AttemptFigures {
  attempts: number;
  lost: number;
  handedBack: number;
  errored: number;
  /** Attempts that resumed from a checkpoint inside their partition (not from its start). */
  resumed: number;
  /**
   * Records scored more than once, at most: see {@link attemptFigures}. Exact
   * for hand-backs (0: a preempted worker commits what it has before leaving).
   */
  reprocessedAtMost: number;
}

/**
 * Attempt figures from the partition rows. "Records re-processed" are records a
 * worker scored but never committed, so a later attempt scored them again. A
 * worker that died (lost) or failed (error) threw away the chunk it was building:
 * the records from its last committed offset (where its successor resumed) up to
 * where it stopped. Where it stopped is not recorded, but a chunk holds at most
 * `maxChunk` records (`checkpointEvery`, or COALESCE_LIMIT times that when a due
 * checkpoint waited for the last commit) and no more than the partition has left,
 * so each such attempt counts
 * `min(maxChunk, records committed from its stop offset to the partition end)`:
 * a sound upper bound. Hand-backs re-process nothing: the stopping worker
 * commits its partial chunk first.
 */
export function attemptFigures(partitions: PartitionRecord[], maxChunk: number) {
  const figures: AttemptFigures = {
    attempts: 0,
    lost: 0,
    handedBack: 0,
    errored: 0,
    resumed: 0,
    reprocessedAtMost: 0,
  };
  for (const p of partitions) {
    const attempts = [...p.attempts].sort((a, b) => a.epoch - b.epoch);
    attempts.forEach((a, i) => {
      figures.attempts++;
      if (a.fromOffset > p.start) figures.resumed++;
      if (a.outcome === "handed_back") figures.handedBack++;
      if (a.outcome !== "lost" && a.outcome !== "error") return;
      if (a.outcome === "lost") figures.lost++;
      else figures.errored++;
      // The successor resumed where this attempt's last commit left the partition.
      const stop = attempts[i + 1]?.fromOffset ?? p.offset;
      const left = p.parts
        .filter((r) => r.startOffset >= stop)
        .reduce((n, r) => n + r.records + r.errors, 0);
      figures.reprocessedAtMost += Math.min(maxChunk, left);
    });
  }
  return figures;
}

/**
 * An estimate of the records one attempt scored past its last commit before it
 * was stopped at `stoppedAtMs` (a SIGKILL's time): its own commit rate times
 * the time since its last commit, capped at `maxChunk` (see attemptFigures).
 * Undefined when the attempt committed nothing (no rate to go by).
 */
export function uncommittedEstimate(
  p: PartitionRecord,
  epoch: number,
  stoppedAtMs: number,
  maxChunk: number,
): number | undefined {
  const attempt = p.attempts.find((a) => a.epoch === epoch);
  const parts = p.parts.filter((r) => r.epoch === epoch && r.committedAt !== undefined);
  const last = parts.at(-1)?.committedAt;
  if (!attempt || !last) return undefined;
  const lastMs = Date.parse(last);
  const records = parts.reduce((n, r) => n + r.records + r.errors, 0);
  const rate = records / Math.max(1, lastMs - Date.parse(attempt.startedAt));
  return Math.round(Math.min(maxChunk, Math.max(0, rate * (stoppedAtMs - lastMs))));
}

/** Every partition's committed parts tile its range: contiguous, in order, from start to end. */
export function partsTile(p: PartitionRecord): string | undefined {
  let at = p.start;
  for (const r of p.parts) {
    if (r.startOffset !== at) {
      return `partition ${p.index}: part ${r.seq} starts at ${r.startOffset}, expected ${at}`;
    }
    at = r.endOffset;
  }
  return at >= p.end ? undefined : `partition ${p.index}: parts end at ${at} < ${p.end}`;
}

/** The job's state, for assertion messages. */
export function describeJob(job: JobRecord | undefined): string {
  if (!job) return "job missing";
  return `job ${job.jobId} is ${job.state}${job.error ? `: ${job.error}` : ""}`;
}
