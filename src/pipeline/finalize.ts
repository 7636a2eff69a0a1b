import { ConflictError } from "../core/errors.ts";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import { rereadBrokenChain } from "./csv-chain.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent } from "./events.ts";
import { taskMessage } from "./messages.ts";

/** Announce a finished partition (the event id is deterministic: a repeat is deduplicated). */
export async function publishDone(
  deps: PipelineDeps,
  job: JobRecord,
  p: PartitionRecord,
): Promise<void> {
  await deps.events.publish([
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
 * together) and enqueue the merge. Also stops the job early once its bad-record
 * count passes the threshold. `redelivered`: a finish is being repeated (its worker
 * died before deleting its message), so the merge is sent again.
 */
export async function finalizeIfLast(
  deps: PipelineDeps,
  job: JobRecord,
  redelivered: boolean,
): Promise<void> {
  const parts = await deps.checkpoints.readPartitions(job.jobId);
  const errors = parts.reduce((n, p) => n + p.errors, 0);
  const maxCount = job.spec.errorThreshold.maxCount;
  const overThreshold = maxCount !== undefined && errors > maxCount;
  const allTerminal = parts.every((p) => p.state === "done" || p.state === "failed");
  if (!allTerminal && !overThreshold) return;
  // CSV partitions guessed where their first record starts: prove the guesses chain up
  // (or re-read the one that guessed wrong) before anything is merged.
  if (allTerminal && job.input.csvRecords && (await rereadBrokenChain(deps, job, parts))) return;
  for (;;) {
    const row = await deps.checkpoints.getJob(job.jobId);
    if (!row) return;
    if (row.value.state === "merging") {
      if (redelivered) await deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
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
      updatedAt: new Date(deps.now()).toISOString(),
    };
    try {
      await deps.checkpoints.updateJob(job.jobId, next, row.version);
    } catch (err) {
      if (err instanceof ConflictError) continue;
      throw err;
    }
    await deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
    deps.log.info("all partitions finished; merge enqueued", {
      jobId: job.jobId,
      early: overThreshold && !allTerminal,
    });
    return;
  }
}
