/**
 * An event in the OCI Events / CloudEvents 0.1 envelope, so local and OCI
 * consumers parse the same shape.
 */
export interface PipelineEvent<D = Record<string, unknown>> {
  cloudEventsVersion: "0.1";
  eventID: string;
  eventType: string;
  eventTypeVersion: string;
  source: string;
  eventTime: string;
  contentType: "application/json";
  extensions?: Record<string, unknown>;
  data: D;
}

/**
 * Port: where completion and lifecycle events go (OCI Streaming; an append-only
 * JSONL log locally). Delivery is at least once: consumers dedupe on `eventID`.
 */
export interface EventSink {
  publish(events: PipelineEvent[]): Promise<void>;
}

/** Read side of a local event log (the `events` CLI command, tests). */
export interface EventLog {
  read(options?: { jobId?: string; eventType?: string }): Promise<PipelineEvent[]>;
}
