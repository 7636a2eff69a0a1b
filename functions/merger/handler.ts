import { NotFoundError } from "../../src/core/errors.ts";
import type { PipelineDeps } from "../../src/pipeline/deps.ts";
import { mergeJob } from "../../src/pipeline/merger.ts";
import { validateRequest } from "../../src/pipeline/requests.ts";

/**
 * The merger function's handler: merge a job whose partitions are all done and
 * publish its completion event. Safe to invoke repeatedly (idempotent).
 */
export function createMergerHandler(deps: PipelineDeps) {
  return async (
    input: unknown,
  ): Promise<{ jobId: string; state: string; records?: number; errors?: number }> => {
    const { jobId } = validateRequest.merge(input);
    const job = await mergeJob(deps, jobId);
    if (!job) throw new NotFoundError(`no job ${jobId}`);
    return {
      jobId,
      state: job.state,
      ...(job.result ? { records: job.result.records, errors: job.result.errors } : {}),
    };
  };
}
