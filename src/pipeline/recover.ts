import type { JobRecord } from "../core/records.ts";
import { isCounted } from "./completion-tally.ts";
import type { PipelineDeps } from "./deps.ts";
import { taskMessage } from "./messages.ts";

/**
 * Put a stalled job back in play: a job that is running (or merging) while the
 * queue holds no message for it can never finish by itself — a message was lost or
 * deleted by a worker that no longer held it. Re-enqueue a task for every partition
 * that is not finished (or the merge). Safe to repeat: a duplicate task finds its
 * partition claimed (epoch compare-and-set) or done and is dropped.
 */
export async function recoverStalledJob(
  deps: PipelineDeps,
  jobId: string,
): Promise<{ job?: JobRecord; partitions: number[]; merge: boolean }> {
  const job = (await deps.checkpoints.getJob(jobId))?.value;
  if (!job) return { partitions: [], merge: false };
  if (job.state === "merging") {
    await deps.queue.send([taskMessage({ kind: "merge", jobId })]);
    deps.log.warn("job was merging with no merge task in the queue: re-enqueued it", { jobId });
    return { job, partitions: [], merge: true };
  }
  if (job.state !== "running") return { job, partitions: [], merge: false };
  const partitions = await deps.checkpoints.readPartitions(jobId);
  const open = partitions
    .filter((p) => p.state !== "done" && p.state !== "failed")
    .map((p) => p.index);
  // Every partition finished but the job never moved on: a finish was never counted
  // (its worker died in between). Repeating those finishes counts them.
  const uncounted = partitions.filter((p) => !isCounted(job.tally, p.index)).map((p) => p.index);
  const resend = open.length > 0 ? open : uncounted.length > 0 ? uncounted : [0];
  const tasks = resend.map((partition) => taskMessage({ kind: "partition", jobId, partition }));
  for (let i = 0; i < tasks.length; i += 100) await deps.queue.send(tasks.slice(i, i + 100));
  deps.log.warn("job had no queue message for its unfinished partitions: re-enqueued them", {
    jobId,
    partitions: open,
  });
  return { job, partitions: open, merge: false };
}
