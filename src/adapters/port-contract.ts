/**
 * Argument checks every adapter of a port makes, shared so that the local and
 * OCI adapters accept and refuse exactly the same inputs (what one store takes,
 * the other takes too).
 */
import { InvalidArgumentError, ValidationError } from "../core/errors.ts";
import type { PartitionRecord } from "../core/records.ts";
import type { PipelineEvent } from "../ports/event-sink.ts";

/** CheckpointStore: a job id is a non-empty string. */
export function checkJobId(jobId: unknown, what: string): asserts jobId is string {
  if (typeof jobId !== "string" || jobId === "") {
    throw new InvalidArgumentError(`${what}: jobId must be a non-empty string`);
  }
}

/** CheckpointStore: `updateJob(jobId, value)` must be about one job. */
export function checkJobUpdate(
  jobId: unknown,
  value: { jobId?: unknown } | undefined,
  what: string,
) {
  checkJobId(jobId, what);
  if (value?.jobId !== jobId) {
    throw new InvalidArgumentError(
      `${what}: value.jobId ${JSON.stringify(value?.jobId)} does not match ${jobId}`,
    );
  }
}

/** CheckpointStore: a partition row names its job and a 32-bit index (NoSQL's INTEGER key column). */
export function checkPartition(p: PartitionRecord, what: string): void {
  checkJobId(p?.jobId, what);
  if (!Number.isSafeInteger(p.index) || p.index < 0 || p.index > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`${what}: partition index must be an integer in 0..2^31-1`);
  }
}

/** TaskQueue: visibility and wait times are seconds >= 0. */
export function checkSeconds(what: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a number of seconds >= 0, got ${value}`);
  }
}

function invalidField(index: number, field: string, why: string): ValidationError {
  return new ValidationError("INVALID_EVENT", `event ${index}: ${field} ${why}`, {
    schemaPath: `#/properties/${field}`,
    instancePath: `/${index}/${field}`,
  });
}

/** EventSink: the envelope fields consumers rely on (id to dedupe, type, time, a data object). */
export function checkEventEnvelope(event: PipelineEvent, index: number): void {
  if (event === null || typeof event !== "object") {
    throw new ValidationError("INVALID_EVENT", `event ${index} is not an object`, {
      schemaPath: "#/type",
      instancePath: `/${index}`,
    });
  }
  for (const field of ["eventID", "eventType", "eventTime"] as const) {
    const value: unknown = event[field];
    if (typeof value !== "string" || value === "") {
      throw invalidField(index, field, "is required (a non-empty string)");
    }
  }
  if (Number.isNaN(Date.parse(event.eventTime))) {
    throw invalidField(
      index,
      "eventTime",
      `is not a timestamp: ${JSON.stringify(event.eventTime)}`,
    );
  }
  const data: unknown = event.data;
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw invalidField(index, "data", "is required (an object)");
  }
}
