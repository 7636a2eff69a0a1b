import { ConflictError, InvalidArgumentError, NotFoundError } from "../core/errors.ts";
import type { JobRecord } from "../core/records.ts";
import { uncount } from "./completion-tally.ts";
import type { PipelineDeps } from "./deps.ts";
import { taskMessage } from "./messages.ts";

/**
 * `rerun <job> --failed`: put the job's failed partitions back in play. They
 * resume from their last checkpoint (work already committed is kept), their
 * attempt budget starts afresh, and the job merges and completes again with a
 * new completion event (runAttempt + 1).
 */
export async function rerunFailedPartitions(
  deps: PipelineDeps,
  jobId: string,
): Promise<{ job: JobRecord; partitions: number[] }> {
  const row = await deps.checkpoints.getJob(jobId);
  if (!row) throw new NotFoundError(`no job ${jobId}: list jobs with \`jobs\``);
  if (row.value.state !== "completed_with_errors") {
    throw new InvalidArgumentError(
      `job ${jobId} is ${row.value.state}; only a job that completed_with_errors has failed partitions to rerun`,
    );
  }
  const at = new Date(deps.now()).toISOString();
  const failed: number[] = [];
  let tallied = row.value;
  for (const p of await deps.checkpoints.listPartitions(jobId)) {
    if (p.value.state !== "failed") continue;
    // Back in play: no longer counted as finished.
    tallied = uncount(tallied, p.value);
    await deps.checkpoints.updatePartition(
      {
        ...p.value,
        state: "pending",
        owner: undefined,
        lastError: undefined,
        // Earlier attempts stay in the history for the report, but no longer count against the budget.
        retryFromEpoch: p.value.epoch,
        updatedAt: at,
      },
      p.version,
    );
    failed.push(p.value.index);
  }
  const next: JobRecord = {
    ...tallied,
    state: "running",
    runAttempt: row.value.runAttempt + 1,
    error: undefined,
    result: undefined,
    completionPublished: false,
    updatedAt: at,
  };
  let job: JobRecord;
  try {
    job = (await deps.checkpoints.updateJob(jobId, next, row.version)).value;
  } catch (err) {
    if (err instanceof ConflictError) {
      throw new ConflictError(
        `job ${jobId} changed while preparing the rerun; run the command again`,
      );
    }
    throw err;
  }
  await deps.queue.send(
    failed.map((partition) => taskMessage({ kind: "partition", jobId, partition })),
  );
  return { job, partitions: failed };
}
