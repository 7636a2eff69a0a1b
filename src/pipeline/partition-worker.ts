import { LeaseLostError, PipelineError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { PartitionRecord } from "../core/records.ts";
import { noopObserver, type WorkerObserver } from "../metrics/worker-observer.ts";
import type { QueueMessage } from "../ports/task-queue.ts";
import { createReadStats } from "../records/line-reader.ts";
import { maxRecordBytes } from "../sources/line-source.ts";
import { sourceFor } from "../sources/registry.ts";
import type { TaskSessionOptions } from "../tasks/registry.ts";
import type { TaskRuntime } from "../tasks/task.ts";
import type { PipelineDeps } from "./deps.ts";
import { finalizeIfLast, publishDone } from "./finalize.ts";
import { mergeJob } from "./merger.ts";
import { MessageLease } from "./message-lease.ts";
import { parseTask, type Task } from "./messages.ts";
import { erroredRow, failedAttempts, failureDetail } from "./partition-attempts.ts";
import {
  claimPartition,
  giveUpPartition,
  handPartitionBack,
  watchJobState,
} from "./partition-claim.ts";
import { scorePartition } from "./score-partition.ts";
import { type EarlyModel, TaskRuntimeCache } from "./task-runtimes.ts";

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
  /** Told what the worker does (Prometheus metrics); default: nobody. */
  observer?: WorkerObserver;
  /** Wraps each job's task runtime (instrumentation: metrics, or a test injecting a fault into scoring). */
  instrumentRuntime?: (runtime: TaskRuntime) => TaskRuntime;
  /** A model opened before the first claim (a held local worker's, see openModelEarly): its first job on that model finds it open. */
  earlyModel?: Promise<EarlyModel | undefined>;
  /** Called when this worker claims or releases a message (the local pool uses it to hand back a dead worker's partition). */
  onClaim?: (claim: { receipt: string; jobId: string; partition?: number } | undefined) => void;
}

/**
 * The worker loop: receive a task, score a partition (or merge a finished job),
 * checkpoint every N records, resume from the last checkpoint, hand back on stop.
 * The same loop for every task kind and record source (src/tasks, src/sources).
 */
export class PartitionWorker {
  private stopping = false;
  private readonly stopped = new AbortController();
  private readonly runtimes: TaskRuntimeCache;
  private readonly log: Logger;
  private readonly observer: WorkerObserver;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly options: WorkerOptions,
  ) {
    this.log = deps.log.child({ worker: options.workerId });
    this.observer = options.observer ?? noopObserver;
    this.runtimes = new TaskRuntimeCache(
      deps.loadModel,
      options.scorer,
      2,
      (opened) => {
        this.observer.executionProvider(opened.session.provider);
        for (const f of opened.session.fallbacks) {
          this.log.warn(
            `execution provider ${f.provider} is unavailable here, falling back to ${opened.session.provider}`,
            { reason: f.reason },
          );
        }
      },
      options.earlyModel,
    );
  }

  /** Ask the loop to stop: the partition in hand is checkpointed and handed back. */
  stop(): void {
    this.stopping = true;
    // An idle worker waiting on the queue stops now, not when its long poll ends.
    this.stopped.abort();
  }

  /**
   * Look at the queue now rather than at its next poll: the local runner says so once it
   * has enqueued a job (the SQLite queue re-checks every 50 ms; OCI's long poll returns
   * on arrival by itself).
   */
  nudge(): void {
    this.waiting?.abort();
  }

  private waiting: AbortController | undefined;

  /** Receive and handle tasks until stop() (or `untilIdle` and the queue is empty). */
  async run(options: { untilIdle?: boolean } = {}): Promise<void> {
    const visibility = this.options.receiveVisibilitySeconds ?? 30;
    let freeSince = performance.now();
    try {
      while (!this.stopping) {
        const sentAt = this.deps.now();
        let messages: Awaited<ReturnType<PipelineDeps["queue"]["receive"]>>;
        // A nudge ends this wait (nothing claimed) and the loop receives again at once.
        this.waiting = new AbortController();
        try {
          messages = await this.deps.queue.receive({
            max: 1,
            visibilitySeconds: visibility,
            waitSeconds: this.options.receiveWaitSeconds ?? 2,
            signal: AbortSignal.any([this.stopped.signal, this.waiting.signal]),
          });
        } catch (err) {
          this.log.warn("receive failed; retrying", { error: failureDetail(err) });
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const msg = messages[0];
        if (!msg) {
          if (options.untilIdle && !this.waiting.signal.aborted) return;
          continue;
        }
        this.observer.queueWait(performance.now() - freeSince);
        await this.handle(
          new MessageLease(this.deps.queue, msg, sentAt, visibility, this.deps.now, this.log),
        );
        freeSince = performance.now();
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
    this.observer.claimed(task.jobId, task.kind === "partition" ? task.partition : undefined);
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
      this.observer.released();
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
      // Its splitter enqueues partitions before it marks the job running: a worker
      // waiting on the queue can see one first. Not moot: try again in a moment.
      log.info("job is still being split; handing the partition task back for now");
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
      await finalizeIfLast(this.deps, job, row.value, true);
      await lease.ack();
      return;
    }
    if (failedAttempts(row.value) >= job.spec.maxAttempts) {
      await giveUpPartition(this.deps, this.observer, job, row, lease, log);
      return;
    }
    const claimed = await claimPartition(this.deps, this.options.workerId, row, log);
    if (!claimed) {
      await lease.release(1);
      return;
    }
    const stopWatching = watchJobState(this.deps, jobId, job.spec.visibilitySeconds, claimed);
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
      const maxLineBytes = maxRecordBytes(job, this.options.maxLineBytes);
      const readStats = createReadStats();
      const source = sourceFor(this.deps.store, job, claimed.value, { maxLineBytes, readStats });
      // Reading starts while the model loads (a session costs a few hundred ms cold).
      source.warm?.(claimed.value.offset);
      const base = await this.runtimes.forJob(job);
      const runtime = this.options.instrumentRuntime?.(base) ?? base;
      const outcome = await scorePartition({
        job,
        lease: claimed,
        runtime,
        source,
        readStats,
        store: this.deps.store,
        now: this.deps.now,
        workerId: this.options.workerId,
        maxLineBytes,
        ...(this.options.pipelineDepth ? { pipelineDepth: this.options.pipelineDepth } : {}),
        stopping: () => this.stopping,
        lost: () => claimed.lost ?? lease.lost,
        observer: this.observer,
        ...(this.options.onCommit ? { onCommit: this.options.onCommit } : {}),
      });
      if (outcome === "done") {
        log.info("partition done", {
          records: claimed.value.records,
          errors: claimed.value.errors,
          parts: claimed.value.parts.length,
        });
        this.observer.attemptEnded("done");
        await publishDone(this.deps, job, claimed.value);
        await finalizeIfLast(this.deps, job, claimed.value, false);
        await lease.ack();
      } else {
        log.info("stopping: checkpointed and handing the partition back", {
          offset: claimed.value.offset,
        });
        this.observer.attemptEnded("handed_back");
        await handPartitionBack(this.deps, claimed, lease, log);
      }
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.observer.attemptEnded("lost");
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
      this.observer.attemptEnded("error");
      if (claimed.value.state === "done") {
        // The finish was committed; what failed came after it (finalizing). Redelivery repeats that part.
        await lease.release(1);
        return;
      }
      await claimed
        .update((p) => erroredRow(p, detail, new Date(this.deps.now()).toISOString()))
        .catch(() => undefined);
      const retryable = !(err instanceof PipelineError) || err.retryable;
      // Back off before the next try; a non-retryable error (bad model) goes straight to the cap.
      await lease.release(retryable ? Math.min(30, 2 ** failedAttempts(claimed.value)) : 0);
    } finally {
      stopWatching();
      lease.stopHeartbeat();
    }
  }
}
