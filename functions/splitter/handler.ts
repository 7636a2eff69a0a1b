import { InvalidArgumentError, PipelineError } from "../../src/core/errors.ts";
import type { PipelineDeps } from "../../src/pipeline/deps.ts";
import { parseObjectEvent } from "../../src/pipeline/events.ts";
import { validateRequest } from "../../src/pipeline/requests.ts";
import { rerunFailedPartitions } from "../../src/pipeline/rerun.ts";
import { rerunAsNewJob } from "../../src/pipeline/rerun-job.ts";
import {
  type EventJobDefaults,
  type SplitResult,
  type SplitterDeps,
  splitFromEvent,
  splitJob,
} from "../../src/pipeline/splitter.ts";

/** Function configuration: the job spec fields an upload event doesn't carry. */
export interface SplitterConfig {
  /** A job spec without input bucket and object (`input.format`/`delimiter` may be set). */
  defaults: EventJobDefaults;
  /** Buckets whose uploads this function scores (BATCH_INFER_INPUT_BUCKETS); unset = any but the output bucket. */
  inputBuckets?: string[];
}

/**
 * Refuse an upload event from a bucket this function doesn't serve. An event
 * from the output bucket is always refused: scoring our own output would loop.
 */
function checkEventBucket(input: unknown, config: SplitterConfig): void {
  const bucket = parseObjectEvent(input).data.additionalDetails.bucketName;
  if (bucket === config.defaults.output?.bucket) {
    throw new PipelineError(
      "INVALID_EVENT",
      `upload event from the output bucket "${bucket}": refusing to score the pipeline's own output (point the Events rule at the input bucket only)`,
    );
  }
  if (config.inputBuckets && !config.inputBuckets.includes(bucket)) {
    throw new PipelineError(
      "INVALID_EVENT",
      `upload event from bucket "${bucket}", which is not an input bucket of this function (BATCH_INFER_INPUT_BUCKETS=${config.inputBuckets.join(",")})`,
    );
  }
}

/** What the splitter function answers (always a value: the FDK crashes on undefined). */
export type SplitterAnswer =
  | ({ action: "split"; rerunOf?: string } & SplitResult)
  | { action: "rerun-failed"; jobId: string; partitions: number[] };

/**
 * The splitter function's handler, built from injected dependencies. It accepts
 * an OCI Events object upload (the automatic path), a manual job spec
 * (`fn invoke ... '{"spec": {...}}'`), or `{"rerunFailed": "<jobId>"}`.
 */
export function createSplitterHandler(deps: SplitterDeps & PipelineDeps, config: SplitterConfig) {
  return async (input: unknown): Promise<SplitterAnswer> => {
    if (input && typeof input === "object") {
      const body = input as Record<string, unknown>;
      if (typeof body.eventType === "string") {
        checkEventBucket(input, config);
        const { event: _event, ...result } = await splitFromEvent(deps, input, config.defaults);
        return { action: "split", ...result };
      }
      if ("spec" in body) {
        const { spec } = validateRequest.manualSpec(input);
        return { action: "split", ...(await splitJob(deps, { ...config.defaults, ...spec })) };
      }
      if ("rerun" in body) {
        const request = validateRequest.rerun(input);
        const { runTag: _tag, ...result } = await rerunAsNewJob(
          deps,
          request.rerun,
          request.runTag,
        );
        return { action: "split", ...result };
      }
      if ("rerunFailed" in body) {
        const { rerunFailed: jobId } = validateRequest.rerunFailed(input);
        const { partitions } = await rerunFailedPartitions(deps, jobId);
        return { action: "rerun-failed", jobId, partitions };
      }
    }
    throw new InvalidArgumentError(
      'expected an OCI object event, {"spec": {...job spec...}}, {"rerun": "<jobId>"} or {"rerunFailed": "<jobId>"}',
    );
  };
}
