import ociObjectEventSchema from "../../events/schemas/oci-object-event.schema.json" with {
  type: "json",
};
import { checkJsonLimits } from "../core/job-spec.ts";
import type { JobRecord } from "../core/records.ts";
import { compileValidator } from "../core/schema.ts";
import type { PipelineEvent } from "../ports/event-sink.ts";

/** Event source for events this pipeline emits. */
export const EVENT_SOURCE = "batch-inference";

/** Event types this pipeline emits. */
export const EVENT_TYPES = {
  jobCreated: "com.batchinfer.job.created",
  partitionDone: "com.batchinfer.partition.done",
  partitionFailed: "com.batchinfer.partition.failed",
  jobCompleted: "com.batchinfer.job.completed",
} as const;

/** The OCI Events envelope of an Object Storage upload. */
export interface ObjectEvent
  extends PipelineEvent<{
    resourceName: string;
    resourceId?: string;
    compartmentId?: string;
    additionalDetails: { bucketName: string; namespace?: string; eTag?: string };
  }> {}

const validateObjectEvent = compileValidator<ObjectEvent>(
  "object event",
  "INVALID_EVENT",
  ociObjectEventSchema,
);

/** Largest incoming event accepted, as JSON: OCI Streaming's message limit, as for the events we emit. */
export const MAX_INCOMING_EVENT_BYTES = 1024 * 1024;
/** Deepest nesting an incoming event may have (OCI's envelope nests four levels). */
export const MAX_INCOMING_EVENT_DEPTH = 32;

/**
 * Validate an OCI object created/updated event (throws ValidationError
 * INVALID_EVENT with the schema path; an event over 1 MiB or nested deeper
 * than 32 levels is rejected the same way, before the schema looks at it).
 */
export function parseObjectEvent(raw: unknown): ObjectEvent {
  checkJsonLimits("object event", "INVALID_EVENT", raw, {
    maxBytes: MAX_INCOMING_EVENT_BYTES,
    maxDepth: MAX_INCOMING_EVENT_DEPTH,
  });
  return validateObjectEvent(raw);
}

/** The event OCI Events emits for an upload; the local runner emits the same for local uploads. */
export function objectCreatedEvent(args: {
  bucket: string;
  object: string;
  etag: string;
  namespace?: string;
  eventId: string;
  time?: Date;
}): ObjectEvent {
  const ns = args.namespace ?? "local";
  return {
    cloudEventsVersion: "0.1",
    eventID: args.eventId,
    eventType: "com.oraclecloud.objectstorage.createobject",
    eventTypeVersion: "2.0",
    source: "ObjectStorage",
    eventTime: (args.time ?? new Date()).toISOString(),
    contentType: "application/json",
    extensions: { compartmentId: "local" },
    data: {
      resourceName: args.object,
      resourceId: `/n/${ns}/b/${args.bucket}/o/${args.object}`,
      additionalDetails: { bucketName: args.bucket, namespace: ns, eTag: args.etag },
    },
  };
}

/** A lifecycle event about a job; `suffix` makes the eventID unique and deterministic. */
export function jobEvent(
  eventType: string,
  job: Pick<JobRecord, "jobId">,
  suffix: string,
  data: Record<string, unknown>,
  now = new Date(),
): PipelineEvent {
  return {
    cloudEventsVersion: "0.1",
    eventID: `${job.jobId}:${eventType.split(".").slice(-2).join(".")}:${suffix}`,
    eventType,
    eventTypeVersion: "1.0",
    source: EVENT_SOURCE,
    eventTime: now.toISOString(),
    contentType: "application/json",
    data: { jobId: job.jobId, ...data },
  };
}
