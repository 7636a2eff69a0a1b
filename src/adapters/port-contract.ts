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

/**
 * TaskQueue: largest message body in UTF-8 bytes, on every adapter, so what fits
 * locally fits on OCI. UNCONFIRMED: no source we could read states OCI Queue's
 * limit; 128 KiB is assumed (queues with the LARGE_MESSAGES capability may allow more).
 */
export const MAX_MESSAGE_BYTES = 128 * 1024;

/**
 * TaskQueue: check a whole batch before sending any of it, so a bad message
 * fails alone, saying what to do, and never leaves earlier messages sent.
 */
export function checkMessages(messages: { body: string; channel?: string }[]): void {
  for (const [i, m] of messages.entries()) {
    if (typeof m.body !== "string") {
      throw new InvalidArgumentError(`send: message ${i} body must be a string`);
    }
    const bytes = Buffer.byteLength(m.body, "utf8");
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new InvalidArgumentError(
        `send: message ${i} body is ${bytes} bytes; the limit is ${MAX_MESSAGE_BYTES} (put large payloads in the object store and send a reference)`,
      );
    }
    if (m.channel !== undefined && (typeof m.channel !== "string" || m.channel === "")) {
      throw new InvalidArgumentError(`send: message ${i} channel must be a non-empty string`);
    }
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
