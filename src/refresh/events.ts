/**
 * The refresh's events: the object events that trigger it (created, updated and
 * deleted under the corpus prefix, as OCI Events delivers them) and the
 * `com.batchinfer.refresh.completed` event it emits once a generation is durable.
 */
import { ValidationError } from "../core/errors.ts";
import { EVENT_SOURCE, parseObjectEvent } from "../pipeline/events.ts";
import type { PipelineEvent } from "../ports/event-sink.ts";
import type { GenerationRef } from "./head.ts";
import type { CorpusLayout, CorpusRef } from "./layout.ts";

/** The event type of a finished refresh. */
export const REFRESH_COMPLETED = "com.batchinfer.refresh.completed";

/** Object event types that change a corpus. */
export const CORPUS_EVENT_TYPES = [
  "com.oraclecloud.objectstorage.createobject",
  "com.oraclecloud.objectstorage.updateobject",
  "com.oraclecloud.objectstorage.deleteobject",
] as const;

/** The object a corpus event names. */
export interface CorpusEvent {
  eventID: string;
  eventType: (typeof CORPUS_EVENT_TYPES)[number];
  bucket: string;
  object: string;
}

/**
 * Validate an object created/updated/deleted event (the splitter's schema, which knows
 * created and updated, checks the envelope; a delete has the same shape).
 */
export function parseCorpusEvent(raw: unknown): CorpusEvent {
  const type = (raw as { eventType?: unknown } | null)?.eventType;
  if (!CORPUS_EVENT_TYPES.includes(type as CorpusEvent["eventType"])) {
    throw new ValidationError(
      "INVALID_EVENT",
      `corpus event invalid at /eventType: ${JSON.stringify(type)} is not one of ${CORPUS_EVENT_TYPES.join(", ")}`,
      { schemaPath: "#/properties/eventType/enum", instancePath: "/eventType" },
    );
  }
  const event = parseObjectEvent({
    ...(raw as object),
    eventType: "com.oraclecloud.objectstorage.createobject",
  });
  return {
    eventID: event.eventID,
    eventType: type as CorpusEvent["eventType"],
    bucket: event.data.additionalDetails.bucketName,
    object: event.data.resourceName,
  };
}

/** Whether an event's object is a document of `corpus`. */
export function inCorpus(event: CorpusEvent, corpus: CorpusRef): boolean {
  return event.bucket === corpus.bucket && event.object.startsWith(corpus.prefix);
}

/** The completion event of generation `g` (its id is deterministic: consumers dedupe on it). */
export function refreshCompletedEvent(
  layout: CorpusLayout,
  corpus: CorpusRef,
  g: GenerationRef,
  model: { name: string; version: string; dimension: number },
  now: Date,
): PipelineEvent {
  const at = (object: string) => `${layout.bucket}/${object}`;
  return {
    cloudEventsVersion: "0.1",
    eventID: `refresh-${layout.key}:refresh.completed:g${g.generation}`,
    eventType: REFRESH_COMPLETED,
    eventTypeVersion: "1.0",
    source: EVENT_SOURCE,
    eventTime: now.toISOString(),
    contentType: "application/json",
    data: {
      corpus: `${corpus.bucket}/${corpus.prefix}`,
      corpusKey: layout.key,
      generation: g.generation,
      counts: g.counts,
      documents: g.documents,
      rows: g.rows,
      delta: at(g.delta),
      embeddings: at(g.embeddings),
      state: at(g.state),
      failed: at(g.failed),
      summary: at(g.summary),
      model: `${model.name}@${model.version}`,
      dimension: model.dimension,
      ...(g.jobId ? { embeddingJob: g.jobId } : {}),
    },
  };
}
