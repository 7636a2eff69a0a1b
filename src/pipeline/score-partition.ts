/**
 * Scoring one partition attempt, the same for every task and record source: records
 * from the source go to the task's encoder, its batches through the model session,
 * the outputs through the task's decoder into a chunk of output rows; every
 * `checkpointEvery` records the chunk becomes a part object and a checkpoint commit.
 */
import { createHash } from "node:crypto";
import { PipelineError } from "../core/errors.ts";
import type { JobRecord, PartitionRecord, PartRef } from "../core/records.ts";
import type { WorkerObserver } from "../metrics/worker-observer.ts";
import { type ChunkOutput, type ChunkPart, chunkOutputFactory } from "../outputs/chunk-output.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import type { ReadStats } from "../records/line-reader.ts";
import {
  nextPositionAt,
  physicalLines,
  positionAt,
  type RecordBlock,
  type RecordSource,
  recordCount,
  recordPreview,
  SKIP,
  sourceProblem,
} from "../sources/record-source.ts";
import { prepareAhead } from "../tasks/prepare-ahead.ts";
import type { Outputs, TaskRuntime, Window } from "../tasks/task.ts";
import { errorPartName, jobLayout, partName } from "./layout.ts";
import type { PartitionLease } from "./partition-lease.ts";

const ERROR_RECORD_PREVIEW = 512;

/** What a partition attempt needs besides the job. */
export interface ScoreContext {
  job: JobRecord;
  lease: PartitionLease;
  runtime: TaskRuntime;
  source: RecordSource;
  store: ObjectStore;
  now(): number;
  workerId: string;
  maxLineBytes: number;
  /** Windows in flight on the inference thread while the next is encoded (default 2). */
  pipelineDepth?: number;
  /** True once the worker was asked to stop (preemption): checkpoint and hand back. */
  stopping(): boolean;
  /** Why the partition is no longer ours (lease lost, job stopped), or undefined. */
  lost(): string | undefined;
  onCommit?: (p: PartitionRecord) => void | Promise<void>;
  /** Filled by a line source: where the read began and ended (the CSV chaining check). */
  readStats?: ReadStats;
  /** Told of every batch and checkpoint (metrics). */
  observer?: WorkerObserver;
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

/**
 * A checkpoint falls due every `checkpointEvery` records; one that falls due while
 * the previous commit is still in flight waits for it, and scoring goes on meanwhile
 * (as Flink's default of one concurrent checkpoint: a trigger during a checkpoint is
 * deferred, not queued). Each worker then spends its time scoring, not waiting on
 * storage, and a slow store gets fewer, larger commits. At this many times the
 * interval, scoring stops and waits: a stalled store must not grow a chunk without
 * bound. What a kill can cost is what was scored since the last commit: one interval
 * while the store keeps up, at most this many when it doesn't (a preemption costs
 * nothing: the worker commits before handing back).
 */
export const COALESCE_LIMIT = 4;

/** Records scored between event-loop turns while a commit is in flight. */
const YIELD_EVERY = 64;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Score from the checkpoint to the end; "stopped" when a stop cut it short (checkpointed). */
export async function scorePartition(ctx: ScoreContext): Promise<"done" | "stopped"> {
  const { job, lease, runtime } = ctx;
  const p0 = lease.value;
  const every = job.spec.checkpointEvery;
  const depth = ctx.pipelineDepth ?? 2;
  const encoder = runtime.encoder();
  const newOutput = await chunkOutputFactory(job.spec.output.format, runtime.outputColumns, {
    "batch-infer.job": job.jobId,
    "batch-infer.model": `${job.model.name}@${job.model.version}`,
  });
  // Two chunk buffers: a chunk's commit (part writes, fsync, the checkpoint's
  // compare-and-set) runs while the next chunk is read and scored in the other.
  let output = newOutput();
  let spare: ChunkOutput | undefined;
  let committing: Promise<void> | undefined;
  // While a commit is in flight, scoring gives the event loop a turn every YIELD_EVERY
  // records: each of the commit's steps (open, write, fsync, rename…) waits for a turn,
  // and scoring alone yields only between blocks and batches, so a commit took as long
  // as scoring a whole chunk and the worker often waited for it.
  let commitInFlight = false;
  let sinceYield = 0;
  const pending: { window: Window; outputs: Promise<Outputs[]> }[] = [];
  let chunk = newChunk(p0.offset);

  const drainOne = async (): Promise<void> => {
    const next = pending.shift();
    if (!next) return;
    runtime.decoder.write(next.window, await next.outputs, output.sink);
    encoder.recycle?.(next.window);
  };
  const submit = (flush: boolean): Promise<void> => submitWindows(encoder.take(flush));
  const submitWindows = async (windows: Window[]): Promise<void> => {
    for (const window of windows) {
      // A decoder that reduces (text pools token vectors) shrinks each batch's outputs as
      // they arrive, so a window never holds every batch's full outputs at once.
      const reduce = runtime.decoder.reduce?.bind(runtime.decoder);
      const outputs = Promise.all(
        window.batches.map((b, k) => {
          const t0 = performance.now();
          return runtime.session.run(b.feeds).then((out) => {
            ctx.observer?.batchScored(b.rows, performance.now() - t0);
            return reduce ? reduce(window, k, out) : out;
          });
        }),
      );
      // If an earlier window fails, the attempt ends without awaiting this one; its
      // rejection must not surface as an unhandled rejection (a crash).
      outputs.catch(() => undefined);
      pending.push({ window, outputs });
      while (pending.length >= depth) await drainOne();
    }
  };
  const commit = async (final: boolean): Promise<void> => {
    await submit(true);
    while (pending.length > 0) await drainOne();
    // Commits stay in order: each names the parts committed before it.
    if (committing) await committing;
    committing = undefined;
    const done = chunk;
    chunk = newChunk(done.next);
    const filled = output;
    const writing = commitChunk(ctx, done, filled.finish(), final);
    if (final || ctx.stopping()) {
      await writing;
      filled.reset();
      return;
    }
    output = spare ?? newOutput();
    spare = filled;
    commitInFlight = true;
    committing = writing.then(() => filled.reset());
    // Awaited before the next commit or the end; until then a failure must not crash.
    committing
      .catch(() => undefined)
      .finally(() => {
        commitInFlight = false;
      });
  };
  const bad = (block: RecordBlock, i: number, reason: string, line: number): void => {
    chunk.errors++;
    chunk.inputs++;
    // `line` is the line within the chunk; the merger rewrites it to the input's line number.
    chunk.errorLines.push(
      `${JSON.stringify({
        line,
        offset: positionAt(block, i),
        reason,
        key: runtime.keysOf(block, i),
        record: recordPreview(block, i, ERROR_RECORD_PREVIEW),
      })}\n`,
    );
  };

  if (p0.offset >= p0.end && ctx.readStats) {
    // Nothing left to read: the offset (a record start) is where the next partition's records begin.
    Object.assign(ctx.readStats, {
      firstRecordStart: p0.offset,
      nextRecordStart: p0.offset,
      complete: true,
    });
  }
  if (p0.offset < p0.end) {
    // Blocks are prepared ahead (images decoded) while earlier windows are scored.
    for await (const block of prepareAhead(ctx.source.read(p0.offset), encoder)) {
      const count = recordCount(block);
      for (let i = 0; i < count; i++) {
        // A record's line is that of its first physical line (a CSV record may span several).
        const line = chunk.lines + 1;
        chunk.lines += physicalLines(block, i);
        chunk.next = nextPositionAt(block, i);
        const problem = sourceProblem(block, i, ctx.maxLineBytes);
        if (problem === SKIP) {
          // A blank line: counted for line numbers, never a record.
        } else if (problem !== undefined) {
          bad(block, i, problem, line);
        } else {
          const reason = encoder.add(block, i);
          if (reason !== undefined) bad(block, i, reason, line);
          else {
            chunk.records++;
            chunk.inputs++;
            // Most records close no window: no await (a microtask turn) for those.
            const windows = encoder.take(false);
            if (windows.length > 0) await submitWindows(windows);
          }
        }
        // Due, and the last commit is done (or this chunk has grown far past due): commit.
        // While the last one is still in flight, scoring goes on into this chunk.
        if (chunk.inputs >= every && (!commitInFlight || chunk.inputs >= every * COALESCE_LIMIT))
          await commit(false);
        else if (commitInFlight && ++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await yieldToEventLoop();
        }
        if (ctx.stopping()) break;
      }
      if (ctx.stopping() || ctx.lost()) break;
    }
    const why = ctx.lost();
    if (why) lease.markLost(why);
    lease.assertHeld();
    if (ctx.stopping() && chunk.next < p0.end) {
      // Preemption: checkpoint what we have; the next worker resumes right here.
      await commit(false);
      return "stopped";
    }
  }
  await commit(true);
  return "done";
}

/**
 * Write the chunk's part objects, then commit the checkpoint that lists them by
 * compare-and-set. Before committing, the input must still be the bytes the job was
 * created from: scores of a changed input are never committed (an input read in
 * place — a local file — can change under a running job).
 */
async function commitChunk(
  ctx: ScoreContext,
  chunk: Chunk,
  part: ChunkPart,
  final: boolean,
): Promise<void> {
  const startedAt = performance.now();
  const body = part.body;
  const { job, lease, store } = ctx;
  const stats = ctx.readStats;
  lease.assertHeld();
  const layout = jobLayout(job);
  const p = lease.value;
  const seq = p.parts.length;
  let ref: PartRef | undefined;
  if (chunk.lines > 0) {
    const errors = chunk.errorLines.join("");
    // The input check and the part writes run together (a worker's event loop is busy
    // scoring the next chunk, so each sequential step of a commit waits for a turn):
    // the check only has to pass before the checkpoint names the parts, and parts of a
    // commit that never happens are orphans nothing reads.
    const [current] = await Promise.all([
      store.head(job.input.bucket, job.input.object),
      body.length > 0
        ? store.put(
            layout.bucket,
            partName(layout, p.index, seq, p.epoch, job.spec.output.format),
            body,
          )
        : undefined,
      errors.length > 0
        ? store.put(layout.bucket, errorPartName(layout, p.index, seq, p.epoch), errors)
        : undefined,
    ]);
    if (current?.etag !== job.input.etag) {
      throw new PipelineError(
        "PRECONDITION_FAILED",
        `input ${job.input.bucket}/${job.input.object} changed since job ${job.jobId} was created (etag ${current?.etag ?? "missing"}, job ${job.input.etag}): its scores are not committed; a new upload starts a new job`,
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
      ...(part.section ? { section: part.section } : {}),
      committedAt: new Date(ctx.now()).toISOString(),
      worker: ctx.workerId,
    };
  }
  const at = new Date(ctx.now()).toISOString();
  const committed = await lease.update((cur) => ({
    ...cur,
    offset: ref ? ref.endOffset : cur.offset,
    records: cur.records + chunk.records,
    errors: cur.errors + chunk.errors,
    lines: cur.lines + chunk.lines,
    parts: ref ? [...cur.parts, ref] : cur.parts,
    // The chaining check needs the partition's first record start and its final next one.
    ...(stats && cur.firstRecordStart === undefined && stats.firstRecordStart >= 0
      ? { firstRecordStart: stats.firstRecordStart }
      : {}),
    ...(final && stats?.complete ? { nextRecordStart: stats.nextRecordStart } : {}),
    ...(final
      ? {
          state: "done" as const,
          owner: undefined,
          attempts: cur.attempts.map((a) =>
            a.endedAt ? a : { ...a, endedAt: at, outcome: "done" as const },
          ),
        }
      : {}),
    updatedAt: at,
  }));
  ctx.observer?.checkpointCommitted({
    records: chunk.records,
    badRecords: chunk.errors,
    ms: performance.now() - startedAt,
  });
  await ctx.onCommit?.(committed);
}
