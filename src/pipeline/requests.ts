import requestSchemas from "../../events/schemas/function-requests.schema.json" with {
  type: "json",
};
import { compileValidator, type Validator } from "../core/schema.ts";

/** `{"rerunFailed": "<jobId>"}` for the splitter. */
export interface RerunFailedRequest {
  rerunFailed: string;
}
/** `{"rerun": "<jobId>", "runTag"?: "..."}` for the splitter: the same spec as a new job. */
export interface RerunRequest {
  rerun: string;
  runTag?: string;
}
/** `{"spec": {...}}` for the splitter: a job spec without the defaults it inherits. */
export interface ManualSpecRequest {
  spec: Record<string, unknown>;
}
/** `{"jobId": "<jobId>"}` for the merger. */
export interface MergeRequest {
  jobId: string;
}
/** `{"refresh": true}` for the refresh function: refresh its corpus now. */
export interface RefreshRequest {
  refresh: true;
}
/** Anything for the scaler; `dryRun` changes nothing. */
export type ScaleRequest = { dryRun?: boolean } | null;

function validator<T>(name: keyof (typeof requestSchemas)["$defs"], what: string): Validator<T> {
  // Each request is its own schema: the shared $defs travel with it so $refs resolve.
  const { $id: _id, ...rest } = requestSchemas;
  return compileValidator<T>(what, "INVALID_EVENT", {
    ...rest,
    $id: `https://oci-batch-inference.local/schemas/function-requests/${name}.json`,
    $ref: `#/$defs/${name}`,
  });
}

/** Validators for the function requests (events/schemas/function-requests.schema.json). */
export const validateRequest = {
  rerunFailed: validator<RerunFailedRequest>("rerunFailed", "rerun-failed request"),
  rerun: validator<RerunRequest>("rerun", "rerun request"),
  manualSpec: validator<ManualSpecRequest>("manualSpec", "manual job request"),
  merge: validator<MergeRequest>("merge", "merge request"),
  scale: validator<ScaleRequest>("scale", "scale request"),
  refresh: validator<RefreshRequest>("refresh", "refresh request"),
};
