import {
  ConflictError,
  describeError,
  LeaseLostError,
  PipelineError,
  redactSecrets,
} from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Attempt, JobRecord, PartitionRecord } from "../core/records.ts";
import type { Versioned } from "../ports/checkpoint-store.ts";
import type { QueueMessage } from "../ports/task-queue.ts";
import { createReadStats } from "../records/line-reader.ts";
import { maxRecordBytes } from "../sources/line-source.ts";
import { sourceFor } from "../sources/registry.ts";
import type { TaskSessionOptions } from "../tasks/registry.ts";
import type { TaskRuntime } from "../tasks/task.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent } from "./events.ts";
import { finalizeIfLast, publishDone } from "./finalize.ts";
import { mergeJob } from "./merger.ts";
import { MessageLease } from "./message-lease.ts";
import { parseTask, type Task } from "./messages.ts";
import { PartitionLease } from "./partition-lease.ts";
import { scorePartition } from "./score-partition.ts";
import { TaskRuntimeCache } from "./task-runtimes.ts";

/** Tuning and test hooks for a worker. */
export interface WorkerOptions {
  workerId: string;
  /** onnxruntime settings: threads, execution providers in order of preference, inference thread. */
  scorer?: TaskSessionOptions;
  /** Longer input lines are bad records (default 1 MiB); they are skipped without being buffered. */
  maxLineBytes?: number;
  /** Long-poll wait per receive (default 2 s). */
  receiveWaitSeconds?: number;
  /**
   * Visibility a received message gets before the worker knows its job (default 30 s);
   * the job's own `visibilitySeconds` applies as soon as the job is read.
   */
  receiveVisibilitySeconds?: number;
  /** Batches in flight on the inference thread while the next one is encoded (default 2). */
  pipelineDepth?: number;
  /** Called after each checkpoint commit and awaited (progress reporting; tests pause a worker here). */
  onCommit?: (p: PartitionRecord) => void | Promise<void>;
  /** Wraps each job's task runtime (instrumentation: metrics, or a test injecting a fault into scoring). */
  instrumentRuntime?: (runtime: TaskRuntime) => TaskRuntime;
  /** Called when this worker claims or releases a message (the local pool uses it to hand back a dead worker's partition). */
  onClaim?: (claim: { receipt: string; jobId: string; partition?: number } | undefined) => void;
}

/** Longest failure detail kept in a partition row, its events and the logs. */
const MAX_DETAIL_CHARS = 2000;

/**
 * A failure as one line for the partition row, events and logs: credentials an
 * error message may quote are redacted, and the length is bounded so that a
 * verbose error can't bloat rows or push an event past its size limit.
 */
function failureDetail(err: unknown): string {
  const text = redactSecrets(describeError(err));
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

/** Failed attempts so far: crashed/stalled (never ended) or errored; graceful hand-backs don't count. */
export function failedAttempts(p: PartitionRecord): number {
  const from = p.retryFromEpoch ?? 0;
  return p.attempts.filter(
    (a) => a.epoch > from && (!a.endedAt || a.outcome === "lost" || a.outcome === "error"),
  ).length;
}

function endOpenAttempt(
  attempts: Attempt[],
  at: string,
  outcome: Attempt["outcome"],
  detail?: string,
): Attempt[] {
  return attempts.map((a) =>
    a.endedAt ? a : { ...a, endedAt: at, outcome, ...(detail ? { detail } : {}) },
  );
}

/**
 * The worker loop: receive a task, score a partition (or merge a finished job),
 * checkpoint every N records, resume from the last checkpoint, hand back on stop.
 * The same loop for every task kind and record source (src/tasks, src/sources).
 */
export class PartitionWorker {
  private stopping = false;
  private readonly runtimes: TaskRuntimeCache;
  private readonly log: Logger;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly options: WorkerOptions,
  ) {
    this.log = deps.log.child({ worker: options.workerId });
    this.runtimes = new TaskRuntimeCache(deps.loadModel, options.scorer, 2, (opened) => {
      for (const f of opened.session.fallbacks) {
        this.log.warn(
          `execution provider ${f.provider} is unavailable here, falling back to ${opened.session.provider}`,
          { reason: f.reason },
        );
      }
    });
  }

  /** Ask the loop to stop: the partition in hand is checkpointed and handed back. */
  stop(): void {
    this.stopping = true;
  }

  /** Receive and handle tasks until stop() (or `untilIdle` and the queue is empty). */
  async run(options: { untilIdle?: boolean } = {}): Promise<void> {
    const visibility = this.options.receiveVisibilitySeconds ?? 30;
    try {
      while (!this.stopping) {
        const sentAt = this.deps.now();
        let messages: Awaited<ReturnType<PipelineDeps["queue"]["receive"]>>;
        try {
          messages = await this.deps.queue.receive({
            max: 1,
            visibilitySeconds: visibility,
            waitSeconds: this.options.receiveWaitSeconds ?? 2,
          });
        } catch (err) {
          this.log.warn("receive failed; retrying", { error: failureDetail(err) });
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const msg = messages[0];
        if (!msg) {
          if (options.untilIdle) return;
          continue;
        }
        await this.handle(
          new MessageLease(this.deps.queue, msg, sentAt, visibility, this.deps.now, this.log),
        );
      }
    } finally {
      await this.runtimes.close();
    }
  }

  /** Handle one delivered message (exposed for tests: a bare message counts as just received). */
  async handle(delivered: MessageLease | QueueMessage): Promise<void> {
    const lease =
      delivered instanceof MessageLease
        ? delivered
        : new MessageLease(
            this.deps.queue,
            delivered,
            this.deps.now(),
            this.options.receiveVisibilitySeconds ?? 30,
            this.deps.now,
            this.log,
          );
    let task: Task;
    try {
      task = parseTask(lease.message.body);
    } catch (err) {
      const detail = failureDetail(err);
      this.log.error("malformed task message; dead-lettering", { error: detail });
      await lease.deadLetter(detail).catch(() => undefined);
      return;
    }
    this.options.onClaim?.({
      receipt: lease.message.receipt,
      jobId: task.jobId,
      ...(task.kind === "partition" ? { partition: task.partition } : {}),
    });
    try {
      if (task.kind === "merge") await this.merge(lease, task.jobId);
      else await this.partition(lease, task.jobId, task.partition);
    } catch (err) {
      // Anything unexpected: hand the message back for another try later.
      this.log.error("task failed; handing it back", {
        error: failureDetail(err),
        jobId: task.jobId,
      });
      await lease.release(5);
    } finally {
      lease.stopHeartbeat();
      this.options.onClaim?.(undefined);
    }
  }

  private async merge(lease: MessageLease, jobId: string): Promise<void> {
    lease.startHeartbeat(60, () => undefined);
    await lease.extend(60);
    await mergeJob(this.deps, jobId);
    await lease.ack();
  }

  private async partition(lease: MessageLease, jobId: string, index: number): Promise<void> {
    const log = this.log.child({ jobId, partition: index });
    const jobRow = await this.deps.checkpoints.getJob(jobId);
    if (!jobRow) {
      await lease.deadLetter(`unknown job ${jobId}`);
      return;
    }
    const job = jobRow.value;
    if (job.state === "splitting") {
      // The splitter enqueues partitions before it marks the job running: come back
      // shortly (dropping the message here would lose the partition for good).
      await lease.release(1);
      return;
    }
    if (job.state !== "running") {
      // Merging or finished (e.g. failed on its error threshold): this partition's work is moot.
      log.info("job is not running; dropping partition task", { state: job.state });
      await lease.ack();
      return;
    }
    const row = await this.deps.checkpoints.getPartition(jobId, index);
    if (!row) {
      await lease.deadLetter(`unknown partition ${index} of ${jobId}`);
      return;
    }
    if (row.value.state === "done" || row.value.state === "failed") {
      // A redelivery after the partition finished but before its message was deleted:
      // repeat what followed the finish (the event is deduplicated by its id).
      if (row.value.state === "done") await publishDone(this.deps, job, row.value);
      await finalizeIfLast(this.deps, job, true);
      await lease.ack();
      return;
    }
    if (failedAttempts(row.value) >= job.spec.maxAttempts) {
      await this.failPartition(job, row, lease, log);
      return;
    }
    const claimed = await this.claim(row, log);
    if (!claimed) {
      await lease.release(1);
      return;
    }
    const stopWatching = this.watchJob(jobId, job.spec.visibilitySeconds, claimed);
    lease.startHeartbeat(job.spec.visibilitySeconds, (why) => claimed.markLost(why));
    try {
      if (!(await lease.extend(job.spec.visibilitySeconds))) {
        throw new LeaseLostError(lease.lost ?? "the queue message is no longer ours");
      }
      // Scoring a changed input would mix two versions in one job: refuse, the job needs a rerun.
      const current = await this.deps.store.head(job.input.bucket, job.input.object);
      if (current?.etag !== job.input.etag) {
        throw new PipelineError(
          "PRECONDITION_FAILED",
          `input ${job.input.bucket}/${job.input.object} changed since job ${job.jobId} was created (etag ${current?.etag ?? "missing"}, job ${job.input.etag}): its upload starts a new job`,
        );
      }
      const base = await this.runtimes.forJob(job);
      const runtime = this.options.instrumentRuntime?.(base) ?? base;
      const maxLineBytes = maxRecordBytes(job, this.options.maxLineBytes);
      const readStats = createReadStats();
      const outcome = await scorePartition({
        job,
        lease: claimed,
        runtime,
        source: sourceFor(this.deps.store, job, claimed.value, { maxLineBytes, readStats }),
        readStats,
        store: this.deps.store,
        now: this.deps.now,
        workerId: this.options.workerId,
        maxLineBytes,
        ...(this.options.pipelineDepth ? { pipelineDepth: this.options.pipelineDepth } : {}),
        stopping: () => this.stopping,
        lost: () => claimed.lost ?? lease.lost,
        ...(this.options.onCommit ? { onCommit: this.options.onCommit } : {}),
      });
      if (outcome === "done") {
        log.info("partition done", {
          records: claimed.value.records,
          errors: claimed.value.errors,
          parts: claimed.value.parts.length,
        });
        await publishDone(this.deps, job, claimed.value);
        await finalizeIfLast(this.deps, job, false);
        await lease.ack();
      } else {
        log.info("stopping: checkpointed and handing the partition back", {
          offset: claimed.value.offset,
        });
        await this.handBack(claimed, lease, log);
      }
    } catch (err) {
      if (err instanceof LeaseLostError) {
        if (lease.lost) {
          // The message is no longer ours: never delete or change it. It returns to
          // the queue and its next holder resumes from the last checkpoint.
          log.warn("lost the queue lease; stopping without touching the message", {
            reason: lease.lost,
          });
          return;
        }
        // Another delivery holds the partition (a higher epoch), or the job stopped:
        // this delivery is redundant.
        log.warn("lost the partition (another worker claimed it, or the job stopped); stopping", {
          reason: err.message,
        });
        await lease.ack();
        return;
      }
      const detail = failureDetail(err);
      log.error("partition attempt failed", { error: detail });
      if (claimed.value.state === "done") {
        // The finish was committed; what failed came after it (finalizing). Redelivery repeats that part.
        await lease.release(1);
        return;
      }
      await claimed
        .update((p) => ({
          ...p,
          lastError: detail,
          attempts: endOpenAttempt(
            p.attempts,
            new Date(this.deps.now()).toISOString(),
            "error",
            detail,
          ),
          updatedAt: new Date(this.deps.now()).toISOString(),
        }))
        .catch(() => undefined);
      const retryable = !(err instanceof PipelineError) || err.retryable;
      // Back off before the next try; a non-retryable error (bad model) goes straight to the cap.
      await lease.release(retryable ? Math.min(30, 2 ** failedAttempts(claimed.value)) : 0);
    } finally {
      stopWatching();
      lease.stopHeartbeat();
    }
  }

  /** A job that stopped (e.g. failed on its error threshold) needs no more scoring. */
  private watchJob(jobId: string, visibilitySeconds: number, claimed: PartitionLease): () => void {
    const timer = setInterval(
      () => {
        this.deps.checkpoints
          .getJob(jobId)
          .then((row) => {
            if (row && row.value.state !== "running")
              claimed.markLost(`job ${jobId} is ${row.value.state}`);
          })
          .catch(() => undefined);
      },
      Math.max(250, (visibilitySeconds * 1000) / 3),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  private async claim(
    row: Versioned<PartitionRecord>,
    log: Logger,
  ): Promise<PartitionLease | undefined> {
    const at = new Date(this.deps.now()).toISOString();
    const epoch = row.value.epoch + 1;
    const claimed: PartitionRecord = {
      ...row.value,
      state: "running",
      epoch,
      owner: this.options.workerId,
      attempts: [
        ...endOpenAttempt(
          row.value.attempts,
          at,
          "lost",
          "worker stopped without handing back (killed or stalled)",
        ),
        { epoch, worker: this.options.workerId, startedAt: at, fromOffset: row.value.offset },
      ],
      updatedAt: at,
    };
    try {
      const next = await this.deps.checkpoints.updatePartition(claimed, row.version);
      log.info("claimed partition", {
        epoch,
        offset: row.value.offset,
        resumed: row.value.offset > row.value.start,
      });
      return new PartitionLease(this.deps.checkpoints, next);
    } catch (err) {
      if (err instanceof ConflictError) {
        log.info("another worker claimed the partition first");
        return undefined;
      }
      throw err;
    }
  }

  private async handBack(claimed: PartitionLease, lease: MessageLease, log: Logger): Promise<void> {
    const at = new Date(this.deps.now()).toISOString();
    try {
      await claimed.update((p) => ({
        ...p,
        state: "pending",
        owner: undefined,
        attempts: endOpenAttempt(
          p.attempts,
          at,
          "handed_back",
          "worker stopping (preemption or scale-down)",
        ),
        updatedAt: at,
      }));
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
    }
    await lease.release(0);
    log.info("handed partition back");
  }

  private async failPartition(
    job: JobRecord,
    row: Versioned<PartitionRecord>,
    lease: MessageLease,
    log: Logger,
  ): Promise<void> {
    const at = new Date(this.deps.now()).toISOString();
    const last = row.value.lastError ?? "the worker died while processing it";
    const failures = failedAttempts(row.value);
    const reason = `gave up after ${failures} failed attempt${failures === 1 ? "" : "s"} (maxAttempts ${job.spec.maxAttempts}); last error: ${last}`;
    try {
      await this.deps.checkpoints.updatePartition(
        {
          ...row.value,
          state: "failed",
          owner: undefined,
          lastError: reason,
          attempts: endOpenAttempt(
            row.value.attempts,
            at,
            "lost",
            "worker stopped without handing back (killed or stalled)",
          ),
          updatedAt: at,
        },
        row.version,
      );
    } catch (err) {
      if (err instanceof ConflictError) {
        await lease.release(1);
        return;
      }
      throw err;
    }
    log.error("partition failed; dead-lettering it", { reason });
    await this.deps.events.publish([
      jobEvent(EVENT_TYPES.partitionFailed, job, `p${row.value.index}.r${job.runAttempt}`, {
        partition: row.value.index,
        reason,
      }),
    ]);
    await finalizeIfLast(this.deps, job, false);
    await lease.deadLetter(reason).catch(() => undefined);
  }
}
