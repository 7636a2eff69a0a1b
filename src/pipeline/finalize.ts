import { ConflictError } from "../core/errors.ts";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import { countFinished, emptyTally, uncount } from "./completion-tally.ts";
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

/** Compare-and-set the job row; false when someone else wrote first (re-read and decide again). */
async function tryUpdate(deps: PipelineDeps, next: JobRecord, version: string): Promise<boolean> {
  try {
    await deps.checkpoints.updateJob(next.jobId, next, version);
    return true;
  } catch (err) {
    if (err instanceof ConflictError) return false;
    throw err;
  }
}

/**
 * After partition `p` became terminal (done or failed): count it on the job row (one
 * read and one compare-and-set, whatever the job's size; counting twice is harmless).
 * When that makes every partition terminal — or the bad records counted pass the
 * threshold — move the job to "merging" by compare-and-set (exactly one worker wins,
 * however many finish together) and enqueue the merge. Every partition row is read
 * once, at the end, and only for CSV (the chaining check). `redelivered`: a finish is
 * being repeated (its worker died before deleting its message), so the merge is sent
 * again if the job is already merging.
 */
export async function finalizeIfLast(
  deps: PipelineDeps,
  job: JobRecord,
  p: PartitionRecord,
  redelivered: boolean,
): Promise<void> {
  let chainChecked = false;
  for (;;) {
    const row = await deps.checkpoints.getJob(job.jobId);
    if (!row) return;
    if (row.value.state === "merging") {
      if (redelivered) await deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
      return;
    }
    if (row.value.state !== "running") return;
    const counted = countFinished(row.value, p) ?? row.value;
    const tally = counted.tally ?? emptyTally(counted.partitionCount);
    const maxCount = job.spec.errorThreshold.maxCount;
    const overThreshold = maxCount !== undefined && tally.errors > maxCount;
    const allTerminal = tally.count >= counted.partitionCount;
    if (!allTerminal && !overThreshold) {
      if (counted !== row.value && !(await tryUpdate(deps, counted, row.version))) continue;
      return;
    }
    if (allTerminal && job.input.csvRecords && !chainChecked) {
      // CSV partitions guessed where their first record starts: prove the guesses
      // chain up (or read the one that guessed wrong again) before anything is merged.
      if (counted !== row.value && !(await tryUpdate(deps, counted, row.version))) continue;
      const reset = await rereadBrokenChain(
        deps,
        job,
        await deps.checkpoints.readPartitions(job.jobId),
      );
      if (reset.reset) await uncountPartition(deps, job.jobId, reset.reset);
      if (reset.waiting) return;
      chainChecked = true;
      continue;
    }
    const next: JobRecord = {
      ...counted,
      state: "merging",
      ...(overThreshold && !allTerminal
        ? {
            error: `${tally.errors} bad records exceed errorThreshold.maxCount ${maxCount}; stopped early (see the errors output)`,
          }
        : {}),
      updatedAt: new Date(deps.now()).toISOString(),
    };
    if (!(await tryUpdate(deps, next, row.version))) continue;
    await deps.queue.send([taskMessage({ kind: "merge", jobId: job.jobId })]);
    deps.log.info("all partitions finished; merge enqueued", {
      jobId: job.jobId,
      early: overThreshold && !allTerminal,
    });
    return;
  }
}

/** Take a partition that is back in play out of the job's completion tally. */
export async function uncountPartition(
  deps: PipelineDeps,
  jobId: string,
  p: PartitionRecord,
): Promise<void> {
  for (;;) {
    const row = await deps.checkpoints.getJob(jobId);
    if (!row) return;
    const next = uncount(row.value, p);
    if (next === row.value || (await tryUpdate(deps, next, row.version))) return;
  }
}
