import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import {
  ConflictError,
  describeError,
  LeaseLostError,
  PipelineError,
  redactSecrets,
} from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Attempt, JobRecord, PartitionRecord, PartRef } from "../core/records.ts";
import { KeyBatch } from "../model/key-batch.ts";
import type { ScorerOptions } from "../model/scorer.ts";
import type { Versioned } from "../ports/checkpoint-store.ts";
import type { QueueMessage } from "../ports/task-queue.ts";
import {
  createFieldSpans,
  csvFieldCountProblem,
  describeInvalidUtf8,
} from "../records/csv-fields.ts";
import { type OwnedLines, openOffset, readOwnedLines } from "../records/line-reader.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent } from "./events.ts";
import { errorPartName, jobLayout, partName } from "./layout.ts";
import { mergeJob } from "./merger.ts";
import { parseTask, type Task, taskMessage } from "./messages.ts";
import { type JobRuntime, ModelRuntimeCache } from "./model-runtime.ts";
import { ByteWriter } from "./output-rows.ts";
import { PartitionLease } from "./partition-lease.ts";

/** Tuning and test hooks for a worker. */
export interface WorkerOptions {
  workerId: string;
  scorer?: ScorerOptions;
  /** Longer input lines are bad records (default 1 MiB); they are skipped without being buffered. */
  maxLineBytes?: number;
  /** Long-poll wait per receive (default 2 s). */
  receiveWaitSeconds?: number;
  /** Batches in flight on the inference thread while the next one is parsed (default 2). */
  pipelineDepth?: number;
  /** Called after each checkpoint commit and awaited (progress reporting; tests pause a worker here). */
  onCommit?: (p: PartitionRecord) => void | Promise<void>;
  /** Called when this worker claims or releases a message (the local pool uses it to hand back a dead worker's partition). */
  onClaim?: (claim: { receipt: string; jobId: string; partition?: number } | undefined) => void;
}

const ERROR_RECORD_PREVIEW = 512;
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

/** A chunk being built: the records between two checkpoints. */
interface Chunk {
  startOffset: number;
  next: number;
  inputs: number;
  records: number;
  errors: number;
  lines: number;
  errorLines: string[];
}

interface PendingBatch {
  scores: Promise<Float32Array[]>;
  keys: KeyBatch;
  rows: number;
}

function newChunk(offset: number): Chunk {
  return {
    startOffset: offset,
    next: offset,
    inputs: 0,
    records: 0,
    errors: 0,
    lines: 0,
    errorLines: [],
  };
}

/** The bytes of a block from its first line's start to its last line's end (oversize lines aside). */
function ownedSpan(block: OwnedLines): Buffer {
  let from = -1;
  let to = -1;
  for (let i = 0; i < block.count; i++) {
    if (block.oversize[i]) continue;
    if (from < 0) from = block.starts[i] as number;
    to = block.ends[i] as number;
  }
  return from < 0 ? block.buf.subarray(0, 0) : block.buf.subarray(from, to);
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
 */
export class PartitionWorker {
  private stopping = false;
  private readonly runtimes: ModelRuntimeCache;
  private readonly log: Logger;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly options: WorkerOptions,
  ) {
    this.runtimes = new ModelRuntimeCache(deps.loadModel, options.scorer);
    this.log = deps.log.child({ worker: options.workerId });
  }

  /** Ask the loop to stop: the partition in hand is checkpointed and handed back. */
  stop(): void {
    this.stopping = true;
  }

  /** Receive and handle tasks until stop() (or `untilIdle` and the queue is empty). */
  async run(options: { untilIdle?: boolean } = {}): Promise<void> {
    try {
      while (!this.stopping) {
        let messages: QueueMessage[];
        try {
          messages = await this.deps.queue.receive({
            max: 1,
            visibilitySeconds: 60,
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
        await this.handle(msg);
      }
    } finally {
      await this.runtimes.close();
    }
  }

  /** Handle one delivered message (exposed for tests). */
  async handle(msg: QueueMessage): Promise<void> {
    let task: Task;
    try {
      task = parseTask(msg.body);
    } catch (err) {
      const detail = failureDetail(err);
      this.log.error("malformed task message; dead-lettering", { error: detail });
      await this.deps.queue.deadLetter(msg.receipt, detail).catch(() => undefined);
      return;
    }
    this.options.onClaim?.({
      receipt: msg.receipt,
      jobId: task.jobId,
      ...(task.kind === "partition" ? { partition: task.partition } : {}),
    });
    try {
      if (task.kind === "merge") await this.merge(msg, task.jobId);
      else await this.partition(msg, task.jobId, task.partition);
    } catch (err) {
      // Anything unexpected: hand the message back for another try later.
      this.log.error("task failed; handing it back", {
        error: failureDetail(err),
        jobId: task.jobId,
      });
      await this.deps.queue.changeVisibility(msg.receipt, 5).catch(() => undefined);
    } finally {
      this.options.onClaim?.(undefined);
    }
  }

  private async deleteQuietly(msg: QueueMessage): Promise<void> {
    try {
      await this.deps.queue.delete(msg.receipt);
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
    }
  }

  private async merge(msg: QueueMessage, jobId: string): Promise<void> {
    const stopHeartbeat = this.heartbeat(msg, 60, () => undefined);
    try {
      await mergeJob(this.deps, jobId);
    } finally {
      stopHeartbeat();
    }
    await this.deleteQuietly(msg);
  }

  /** Extend the message's visibility every third of it; tell `onLost` if the receipt went stale. */
  private heartbeat(
    msg: QueueMessage,
    visibilitySeconds: number,
    onLost: (why: string) => void,
    jobId?: string,
  ): () => void {
    const timer = setInterval(
      () => {
        this.deps.queue.changeVisibility(msg.receipt, visibilitySeconds).catch((err: unknown) => {
          if (err instanceof LeaseLostError)
            onLost("the queue message was redelivered to another worker");
          else this.log.warn("heartbeat failed", { error: failureDetail(err) });
        });
        // A job that stopped (e.g. failed on its error threshold) needs no more scoring.
        if (jobId) {
          this.deps.checkpoints
            .getJob(jobId)
            .then((row) => {
              if (row && row.value.state !== "running")
                onLost(`job ${jobId} is ${row.value.state}`);
            })
            .catch(() => undefined);
        }
      },
      Math.max(250, (visibilitySeconds * 1000) / 3),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  private async partition(msg: QueueMessage, jobId: string, index: number): Promise<void> {
    const log = this.log.child({ jobId, partition: index });
    const jobRow = await this.deps.checkpoints.getJob(jobId);
    if (!jobRow) {
      await this.deps.queue.deadLetter(msg.receipt, `unknown job ${jobId}`);
      return;
    }
    const job = jobRow.value;
    if (job.state !== "running") {
      // Merging or finished (e.g. failed on its error threshold): this partition's work is moot.
      log.info("job is not running; dropping partition task", { state: job.state });
      await this.deleteQuietly(msg);
      return;
    }
    const row = await this.deps.checkpoints.getPartition(jobId, index);
    if (!row) {
      await this.deps.queue.deadLetter(msg.receipt, `unknown partition ${index} of ${jobId}`);
      return;
    }
    if (row.value.state === "done" || row.value.state === "failed") {
      // A redelivery after the partition finished but before its message was deleted:
      // repeat what followed the finish (the event is deduplicated by its id).
      if (row.value.state === "done") await this.publishDone(job, row.value);
      await this.finalizeIfLast(job, true);
      await this.deleteQuietly(msg);
      return;
    }
    const failures = failedAttempts(row.value);
    if (failures >= job.spec.maxAttempts) {
      await this.failPartition(job, row, msg, log);
      return;
    }
    const lease = await this.claim(row, log);
    if (!lease) {
      await this.deps.queue.changeVisibility(msg.receipt, 1).catch(() => undefined);
      return;
    }
    const stopHeartbeat = this.heartbeat(
      msg,
      job.spec.visibilitySeconds,
      (why) => lease.markLost(why),
      jobId,
    );
    try {
      await this.deps.queue.changeVisibility(msg.receipt, job.spec.visibilitySeconds);
      // Scoring a changed input would mix two versions in one job: refuse, the job needs a rerun.
      const current = await this.deps.store.head(job.input.bucket, job.input.object);
      if (current?.etag !== job.input.etag) {
        throw new PipelineError(
          "PRECONDITION_FAILED",
          `input ${job.input.bucket}/${job.input.object} changed since job ${job.jobId} was created (etag ${current?.etag ?? "missing"}, job ${job.input.etag}): its upload starts a new job`,
        );
      }
      const runtime = await this.runtimes.forJob(job);
      const outcome = await this.scorePartition(job, lease, runtime, log);
      if (outcome === "done") {
        await this.afterDone(job, lease.value, log);
        await this.deleteQuietly(msg);
      } else {
        await this.handBack(lease, msg, log);
      }
    } catch (err) {
      if (err instanceof LeaseLostError) {
        log.warn("lost the partition (another worker claimed it, or the job stopped); stopping", {
          reason: err.message,
        });
        // A CAS loss means another delivery holds it; drop ours (harmless if our receipt is stale).
        await this.deleteQuietly(msg);
        return;
      }
      const detail = failureDetail(err);
      log.error("partition attempt failed", { error: detail });
      if (lease.value.state === "done") {
        // The finish was committed; what failed came after it (finalizing). Redelivery repeats that part.
        await this.deps.queue.changeVisibility(msg.receipt, 1).catch(() => undefined);
        return;
      }
      await lease
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
      const delay = retryable ? Math.min(30, 2 ** failedAttempts(lease.value)) : 0;
      await this.deps.queue.changeVisibility(msg.receipt, delay).catch(() => undefined);
    } finally {
      stopHeartbeat();
    }
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

  /** Score from the checkpoint to the end; returns "stopped" when stop() cut it short. */
  private async scorePartition(
    job: JobRecord,
    lease: PartitionLease,
    rt: JobRuntime,
    log: Logger,
  ): Promise<"done" | "stopped"> {
    const p0 = lease.value;
    const spec = job.spec;
    const width = rt.featurizer.width;
    const batchSize = spec.batchSize;
    const every = spec.checkpointEvery;
    const depth = this.options.pipelineDepth ?? 2;
    const layout = jobLayout(job);
    const maxLineBytes = this.options.maxLineBytes ?? 1024 * 1024;
    const csv = job.input.format === "csv";
    const csvSpans = createFieldSpans(Math.max(8, job.input.columns.length + 1));

    let chunk = newChunk(p0.offset);
    // The chunk's output rows, reused from chunk to chunk.
    const out = new ByteWriter();
    let features = new Float32Array(batchSize * width);
    let keys = new KeyBatch();
    let rows = 0;
    const pending: PendingBatch[] = [];

    const drainOne = async (): Promise<void> => {
      const b = pending.shift();
      if (!b) return;
      const scores = await b.scores;
      rt.formatter.format(b.keys, scores, b.rows, out);
    };
    const submit = async (): Promise<void> => {
      if (rows === 0) return;
      const scores = rt.scorer.score(features, rows);
      // If an earlier batch fails, the partition attempt ends without awaiting this
      // one; its rejection must not surface as an unhandled rejection (a crash).
      scores.catch(() => undefined);
      pending.push({ scores, keys, rows });
      features = new Float32Array(batchSize * width);
      keys = new KeyBatch();
      rows = 0;
      while (pending.length >= depth) await drainOne();
    };
    const commit = async (final: boolean): Promise<void> => {
      await submit();
      while (pending.length > 0) await drainOne();
      await this.commitChunk(job, lease, layout, chunk, out.view(), final);
      out.reset();
      chunk = newChunk(chunk.next);
    };

    if (p0.offset < p0.end) {
      const from = p0.offset;
      const readOptions = {
        from,
        fromIsRecordStart: from === job.input.dataStart,
        end: p0.end,
        maxLineBytes,
      };
      const start = openOffset(readOptions);
      const source = await this.deps.store.read(job.input.bucket, job.input.object, {
        start,
        end: job.input.size,
      });
      try {
        for await (const block of readOwnedLines(source, readOptions)) {
          const { buf, starts, ends, offsets, nextOffsets, oversize } = block;
          // CSV fields are mostly read as bytes, never decoded: check the block's
          // lines are UTF-8 in one native pass, and line by line only when not.
          const checkLines = csv && !isUtf8(ownedSpan(block));
          for (let i = 0; i < block.count; i++) {
            chunk.lines++;
            chunk.next = nextOffsets[i] as number;
            const s = starts[i] as number;
            const e = ends[i] as number;
            if (oversize[i]) {
              this.badRecord(
                chunk,
                rt,
                offsets[i] as number,
                `line longer than ${maxLineBytes} bytes`,
                undefined,
              );
            } else if (e > s && !(e - s === 1 && buf[s] === 13)) {
              const keyMark = keys.length;
              let reason =
                (checkLines && describeInvalidUtf8(buf, s, e, job.input.columns, csvSpans)) ||
                rt.featurizer.featurize(buf, s, e, features, rows * width, keys);
              if (reason !== undefined && csv) {
                // The featurizer stops at the first value it can't use; a shifted row says why better.
                reason =
                  csvFieldCountProblem(buf, s, e, job.input.columns.length, csvSpans) ?? reason;
              }
              if (reason !== undefined) {
                keys.truncate(keyMark);
                this.badRecord(chunk, rt, offsets[i] as number, reason, buf.subarray(s, e));
              } else {
                if (rt.offsetKeys) keys.addString(String(offsets[i]));
                rows++;
                chunk.records++;
                chunk.inputs++;
                if (rows === batchSize) await submit();
              }
            }
            if (chunk.inputs >= every) await commit(false);
            if (this.stopping || lease.lost) break;
          }
          if (this.stopping || lease.lost) break;
        }
      } finally {
        (source as { destroy?: () => void }).destroy?.();
      }
      lease.assertHeld();
      if (this.stopping && chunk.next < p0.end) {
        // Preemption: checkpoint what we have; the next worker resumes right here.
        await commit(false);
        log.info("stopping: checkpointed and handing the partition back", {
          offset: lease.value.offset,
        });
        return "stopped";
      }
    }
    await commit(true);
    return "done";
  }

  private badRecord(
    chunk: Chunk,
    rt: JobRuntime,
    offset: number,
    reason: string,
    bytes: Buffer | undefined,
  ): void {
    chunk.errors++;
    chunk.inputs++;
    let key: Record<string, string> | null = null;
    if (bytes && !rt.offsetKeys) {
      const values = rt.featurizer.keysOf(bytes, 0, bytes.length);
      if (values) key = Object.fromEntries(rt.keyNames.map((k, j) => [k, values[j] ?? ""]));
    }
    const record = bytes
      ? bytes.toString("utf8", 0, Math.min(bytes.length, ERROR_RECORD_PREVIEW))
      : null;
    // `line` is the line within the chunk; the merger rewrites it to the input's line number.
    chunk.errorLines.push(
      `${JSON.stringify({ line: chunk.lines, offset, reason, key, record })}\n`,
    );
  }

  private async commitChunk(
    job: JobRecord,
    lease: PartitionLease,
    layout: ReturnType<typeof jobLayout>,
    chunk: Chunk,
    body: Buffer,
    final: boolean,
  ): Promise<void> {
    lease.assertHeld();
    const p = lease.value;
    const seq = p.parts.length;
    let ref: PartRef | undefined;
    if (chunk.lines > 0) {
      const errors = chunk.errorLines.join("");
      if (body.length > 0) {
        await this.deps.store.put(
          layout.bucket,
          partName(layout, p.index, seq, p.epoch, job.spec.output.format),
          body,
        );
      }
      if (errors.length > 0) {
        await this.deps.store.put(
          layout.bucket,
          errorPartName(layout, p.index, seq, p.epoch),
          errors,
        );
      }
      ref = {
        seq,
        epoch: p.epoch,
        startOffset: chunk.startOffset,
        endOffset: chunk.next,
        records: chunk.records,
        errors: chunk.errors,
        lines: chunk.lines,
        bytes: body.length,
        sha256: createHash("sha256").update(body).digest("hex"),
        errorBytes: Buffer.byteLength(errors),
        committedAt: new Date(this.deps.now()).toISOString(),
        worker: this.options.workerId,
      };
    }
    const at = new Date(this.deps.now()).toISOString();
    const committed = await lease.update((cur) => ({
      ...cur,
      offset: ref ? ref.endOffset : cur.offset,
      records: cur.records + chunk.records,
      errors: cur.errors + chunk.errors,
      lines: cur.lines + chunk.lines,
      parts: ref ? [...cur.parts, ref] : cur.parts,
      ...(final
        ? {
            state: "done" as const,
            owner: undefined,
            attempts: endOpenAttempt(cur.attempts, at, "done"),
          }
        : {}),
      updatedAt: at,
    }));
    await this.options.onCommit?.(committed);
  }

  private async handBack(lease: PartitionLease, msg: QueueMessage, log: Logger): Promise<void> {
    const at = new Date(this.deps.now()).toISOString();
    try {
      await lease.update((p) => ({
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
    await this.deps.queue.changeVisibility(msg.receipt, 0).catch(() => undefined);
    log.info("handed partition back");
  }

  private async failPartition(
    job: JobRecord,
    row: Versioned<PartitionRecord>,
    msg: QueueMessage,
    log: Logger,
  ): Promise<void> {
    const at = new Date(this.deps.now()).toISOString();
    const last = row.value.lastError ?? "the worker died while processing it";
    const reason = `gave up after ${failedAttempts(row.value)} failed attempts (maxAttempts ${job.spec.maxAttempts}); last error: ${last}`;
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
        await this.deps.queue.changeVisibility(msg.receipt, 1).catch(() => undefined);
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
    await this.finalizeIfLast(job, false);
    await this.deps.queue.deadLetter(msg.receipt, reason).catch(() => undefined);
  }

  private async afterDone(job: JobRecord, p: PartitionRecord, log: Logger): Promise<void> {
    log.info("partition done", { records: p.records, errors: p.errors, parts: p.parts.length });
    await this.publishDone(job, p);
    await this.finalizeIfLast(job, false);
  }

  private async publishDone(job: JobRecord, p: PartitionRecord): Promise<void> {
    await this.deps.events.publish([
      jobEvent(EVENT_TYPES.partitionDone, job, `p${p.index}.r${job.runAttempt}`, {
        partition: p.index,
        records: p.records,
        errors: p.errors,
      }),
    ]);
  }

  /**
   * After a partition becomes terminal: if every partition is, move the job to
   * "merging" by compare-and-set (exactly one worker wins, however many finish
   * together) and enqueue the merge. Also stops the job early once its
   * bad-record count passes the threshold. `redelivered`: we are repeating a
   * finish whose worker died before deleting its message, so resend the merge.
   */
  private async finalizeIfLast(job: JobRecord, redelivered: boolean): Promise<void> {
    const parts = await this.deps.checkpoints.readPartitions(job.jobId);
    const errors = parts.reduce((n, p) => n + p.errors, 0);
    const maxCount = job.spec.errorThreshold.maxCount;
    const overThreshold = maxCount !== undefined && errors > maxCount;
    const allTerminal = parts.every((p) => p.state === "done" || p.state === "failed");
    if (!allTerminal && !overThreshold) return;
    for (;;) {
      const row = await this.deps.checkpoints.getJob(job.jobId);
      if (!row) return;
      if (row.value.state === "merging") {
        if (redelivered)
          await this.deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
        return;
      }
      if (row.value.state !== "running") return;
      const next: JobRecord = {
        ...row.value,
        state: "merging",
        ...(overThreshold && !allTerminal
          ? {
              error: `${errors} bad records exceed errorThreshold.maxCount ${maxCount}; stopped early (see the errors output)`,
            }
          : {}),
        updatedAt: new Date(this.deps.now()).toISOString(),
      };
      try {
        await this.deps.checkpoints.updateJob(job.jobId, next, row.version);
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
      await this.deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
      this.log.info("all partitions finished; merge enqueued", {
        jobId: job.jobId,
        early: overThreshold && !allTerminal,
      });
      return;
    }
  }
}
