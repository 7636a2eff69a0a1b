/**
 * The CLI's side of messages and exit codes: the pipeline speaks in job-spec
 * terms (errorThreshold.maxCount), the person at the terminal set a flag.
 */
import { InvalidArgumentError, type PipelineError } from "../core/errors.ts";
import type { JobState } from "../core/records.ts";
import { EVENT_TYPES } from "../pipeline/events.ts";

/** Job-spec fields in a pipeline message, with the flag that set them. */
const SPEC_TO_FLAG: [RegExp, string][] = [
  [/errorThreshold\.maxCount (\d+)/g, "the --max-errors limit of $1 (errorThreshold.maxCount)"],
  [
    /errorThreshold\.maxFraction ([\d.e-]+)/g,
    "the --max-error-rate limit of $1 (errorThreshold.maxFraction)",
  ],
  [/\(maxAttempts (\d+)\)/g, "(--max-attempts $1)"],
];

/** Job-spec fields the run/submit flags set (a schema failure names the field). */
const FIELD_FLAGS: Record<string, string> = {
  "/partitionBytes": "--partition-size",
  "/checkpointEvery": "--checkpoint-every",
  "/batchSize": "--batch-size",
  "/maxAttempts": "--max-attempts",
  "/visibilitySeconds": "--visibility",
  "/errorThreshold/maxCount": "--max-errors",
  "/errorThreshold/maxFraction": "--max-error-rate",
  "/keyColumns": "--key",
  "/output/format": "--output-format",
  "/input/format": "--format",
  "/input/delimiter": "--delimiter",
};

/** A pipeline message as the CLI prints it: spec fields named by their flags. */
export function forUser(message: string): string {
  let text = message;
  for (const [from, to] of SPEC_TO_FLAG) text = text.replace(from, to);
  return text.replace(/^job spec invalid at (\/[\w/]+)/, (all, field: string) => {
    const flag = FIELD_FLAGS[field] ?? FIELD_FLAGS[field.replace(/\/\d+$/, "")];
    return flag ? `${flag}: ${all}` : all;
  });
}

/**
 * Exit code for an error: 2 when the command was refused before anything ran
 * (an argument, or a file, model, spec or job it names), 1 otherwise.
 */
export function exitCodeForError(err: PipelineError): number {
  switch (err.code) {
    case "INVALID_ARGUMENT":
    case "INVALID_SPEC":
    case "INVALID_MODEL":
    case "UNSAFE_PATH":
    case "NOT_FOUND":
      return 2;
    default:
      return 1;
  }
}

/** Exit code for a job's final state: 0 completed, 3 completed with errors, 1 failed. */
export function exitCodeForState(state: JobState): number {
  return state === "completed" ? 0 : state === "completed_with_errors" ? 3 : 1;
}

/** Event types `events --type` accepts, by short form. */
export const EVENT_TYPE_NAMES: Record<string, string> = {
  createobject: "com.oraclecloud.objectstorage.createobject",
  "job.created": EVENT_TYPES.jobCreated,
  "partition.done": EVENT_TYPES.partitionDone,
  "partition.failed": EVENT_TYPES.partitionFailed,
  "job.completed": EVENT_TYPES.jobCompleted,
};

/** `--type`: a full event type or its short form; anything else is refused with the list. */
export function resolveEventType(text: string): string {
  const full = Object.values(EVENT_TYPE_NAMES);
  if (full.includes(text)) return text;
  const short = EVENT_TYPE_NAMES[text.toLowerCase()];
  if (short) return short;
  throw new InvalidArgumentError(
    `--type "${text}" is not an event type; use one of ${Object.keys(EVENT_TYPE_NAMES).join(", ")} (or the full names: ${full.join(", ")})`,
  );
}
