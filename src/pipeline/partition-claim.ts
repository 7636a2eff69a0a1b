/**
 * A worker's moves on a partition row around the scoring itself: claim it (fenced by
 * the row's version), watch its job while scoring, hand it back on a stop, and give
 * it up (failed, dead-lettered) once its attempts are spent.
 */
import { ConflictError, LeaseLostError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import type { WorkerObserver } from "../metrics/worker-observer.ts";
import type { Versioned } from "../ports/checkpoint-store.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent } from "./events.ts";
import { finalizeIfLast } from "./finalize.ts";
import type { MessageLease } from "./message-lease.ts";
import { claimedRow, failedAttempts, failedRow, handedBackRow } from "./partition-attempts.ts";
import { PartitionLease } from "./partition-lease.ts";

/**
 * Claim the partition `row` for `workerId` (a new epoch); undefined when another
 * worker claimed it first (the version moved).
 */
export async function claimPartition(
  deps: PipelineDeps,
  workerId: string,
  row: Versioned<PartitionRecord>,
  log: Logger,
): Promise<PartitionLease | undefined> {
  const at = new Date(deps.now()).toISOString();
  const claimed = claimedRow(row.value, workerId, at);
  const epoch = claimed.epoch;
  try {
    const next = await deps.checkpoints.updatePartition(claimed, row.version);
    log.info("claimed partition", {
      epoch,
      offset: row.value.offset,
      resumed: row.value.offset > row.value.start,
    });
    return new PartitionLease(deps.checkpoints, next);
  } catch (err) {
    if (err instanceof ConflictError) {
      log.info("another worker claimed the partition first");
      return undefined;
    }
    throw err;
  }
}

/**
 * Mark `claimed` lost once its job stops running (e.g. failed on its error threshold):
 * it needs no more scoring. Returns the function that stops the watch.
 */
export function watchJobState(
  deps: PipelineDeps,
  jobId: string,
  visibilitySeconds: number,
  claimed: PartitionLease,
): () => void {
  const timer = setInterval(
    () => {
      deps.checkpoints
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

/** Hand a checkpointed partition back: its row says so, and its message is visible again now. */
export async function handPartitionBack(
  deps: PipelineDeps,
  claimed: PartitionLease,
  lease: MessageLease,
  log: Logger,
): Promise<void> {
  const at = new Date(deps.now()).toISOString();
  try {
    await claimed.update((p) => handedBackRow(p, at));
  } catch (err) {
    if (!(err instanceof LeaseLostError)) throw err;
  }
  await lease.release(0);
  log.info("handed partition back");
}

/**
 * Give up a partition whose attempts are spent: its row is failed with the last
 * error, a partition-failed event is published, the job finalizes if it was the
 * last, and the message is dead-lettered.
 */
export async function giveUpPartition(
  deps: PipelineDeps,
  observer: WorkerObserver,
  job: JobRecord,
  row: Versioned<PartitionRecord>,
  lease: MessageLease,
  log: Logger,
): Promise<void> {
  const at = new Date(deps.now()).toISOString();
  const last = row.value.lastError ?? "the worker died while processing it";
  const failures = failedAttempts(row.value);
  const reason = `gave up after ${failures} failed attempt${failures === 1 ? "" : "s"} (maxAttempts ${job.spec.maxAttempts}); last error: ${last}`;
  let failed: PartitionRecord;
  try {
    failed = (await deps.checkpoints.updatePartition(failedRow(row.value, reason, at), row.version))
      .value;
  } catch (err) {
    if (err instanceof ConflictError) {
      await lease.release(1);
      return;
    }
    throw err;
  }
  log.error("partition failed; dead-lettering it", { reason });
  observer.attemptEnded("failed");
  await deps.events.publish([
    jobEvent(EVENT_TYPES.partitionFailed, job, `p${row.value.index}.r${job.runAttempt}`, {
      partition: row.value.index,
      reason,
    }),
  ]);
  await finalizeIfLast(deps, job, failed, false);
  await lease.deadLetter(reason).catch(() => undefined);
}
