import { InvalidArgumentError, NotFoundError } from "../../src/core/errors.ts";
import type { PipelineDeps } from "../../src/pipeline/deps.ts";
import { mergeJob } from "../../src/pipeline/merger.ts";

/**
 * The merger function's handler: merge a job whose partitions are all done and
 * publish its completion event. Safe to invoke repeatedly (idempotent).
 */
export function createMergerHandler(deps: PipelineDeps) {
  return async (
    input: unknown,
  ): Promise<{ jobId: string; state: string; records?: number; errors?: number }> => {
    const jobId = (input as { jobId?: unknown } | null)?.jobId;
    if (typeof jobId !== "string" || !/^job-[0-9a-f]{24}$/.test(jobId)) {
      throw new InvalidArgumentError('expected {"jobId": "job-<24 hex>"}');
    }
    const job = await mergeJob(deps, jobId);
    if (!job) throw new NotFoundError(`no job ${jobId}`);
    return {
      jobId,
      state: job.state,
      ...(job.result ? { records: job.result.records, errors: job.result.errors } : {}),
    };
  };
}
