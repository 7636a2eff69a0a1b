/**
 * EventSink over OCI Streaming. Each event becomes one message: key = the job id
 * (so one job's events share a partition and keep their order), value = the
 * CloudEvents JSON envelope. Delivery is at least once; consumers dedupe on
 * `eventID`, which is what makes re-sending a failed entry safe.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { StreamClient } from "oci-streaming";
import { InvalidArgumentError, StoreUnavailableError } from "../../core/errors.ts";
import type { EventSink, PipelineEvent } from "../../ports/event-sink.ts";
import { checkEventEnvelope } from "../port-contract.ts";
import { type AuthzRetry, NO_AUTHZ_RETRY, retryNotAuthorized } from "./authz-retry.ts";
import { retryConfiguration } from "./clients.ts";
import { mapOciError } from "./errors.ts";

/** OCI Streaming's largest message key. */
export const MAX_KEY_BYTES = 256;
/** OCI Streaming's largest message value (1 MiB). */
export const MAX_VALUE_BYTES = 1024 * 1024;
/**
 * Bytes of keys and values per PutMessages request. The service caps a request
 * at 1 MiB; UNCONFIRMED whether it counts decoded bytes or the base64 JSON, so
 * batches are cut well under it by base64 size and a lone large message goes alone.
 */
const MAX_REQUEST_BYTES = 1024 * 1024;

/** Options for {@link StreamEventSink}. */
export interface StreamEventSinkOptions {
  /** A StreamClient whose endpoint is the stream's `messagesEndpoint`. */
  client: Pick<StreamClient, "putMessages">;
  streamId: string;
  /** Times entries that came back with an error are sent again (default 4). */
  entryRetries?: number;
  /** First pause before re-sending failed entries, doubled each time (default 100 ms). */
  retryDelayMs?: number;
  /** Who calls (`ociIdentity(auth).principal`), named in configuration errors. */
  principal?: string;
  /** How long a not-authorized-or-not-found answer is retried (default: not at all). */
  authzRetry?: AuthzRetry;
}

interface Encoded {
  event: PipelineEvent;
  key: string;
  value: string;
  /** base64 key + value length: what the request body carries. */
  wireBytes: number;
}

/** The partition key: the job id, so a job's events stay in order on one partition. */
export function eventKey(event: PipelineEvent): string {
  const jobId = (event.data as Record<string, unknown>).jobId;
  return typeof jobId === "string" && jobId !== "" ? jobId : event.eventID;
}

function encode(event: PipelineEvent, index: number): Encoded {
  const keyBytes = Buffer.from(eventKey(event), "utf8");
  if (keyBytes.length > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(
      `event ${index} (${event.eventID}): its stream key (data.jobId) is ${keyBytes.length} bytes; OCI Streaming allows at most ${MAX_KEY_BYTES}`,
    );
  }
  const valueBytes = Buffer.from(JSON.stringify(event), "utf8");
  if (valueBytes.length > MAX_VALUE_BYTES) {
    throw new InvalidArgumentError(
      `event ${index} (${event.eventID}, ${event.eventType}) is ${valueBytes.length} bytes serialized; OCI Streaming allows at most ${MAX_VALUE_BYTES} per message: put large payloads in the object store and reference them`,
    );
  }
  const key = keyBytes.toString("base64");
  const value = valueBytes.toString("base64");
  return { event, key, value, wireBytes: key.length + value.length };
}

/** Split into requests of at most MAX_REQUEST_BYTES (a single larger message goes alone). */
function batches(entries: Encoded[]): Encoded[][] {
  const out: Encoded[][] = [];
  let current: Encoded[] = [];
  let bytes = 0;
  for (const e of entries) {
    if (current.length > 0 && bytes + e.wireBytes > MAX_REQUEST_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += e.wireBytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * EventSink publishing to an OCI stream.
 *
 * PutMessages is not retried by the SDK by default: each request carries the
 * project's retry configuration (throttling, 5xx, network). Entries the service
 * accepted the request for but rejected one by one (`error` set, counted in
 * `failures`) are sent again a few times, in their original order, then the
 * publish fails with a retryable StoreUnavailableError.
 *
 * Ordering: one job's events share a partition and arrive in publish order,
 * except when a partial failure rejects an earlier entry but not a later one of
 * the same job; consumers should order by `eventTime`, not arrival.
 *
 * @example
 * const client = createClient(StreamClient, auth, { endpoint: stream.messagesEndpoint });
 * const sink = new StreamEventSink({ client, streamId: stream.id });
 * await sink.publish([event]);
 */
export class StreamEventSink implements EventSink {
  private readonly client: Pick<StreamClient, "putMessages">;
  private readonly streamId: string;
  private readonly entryRetries: number;
  private readonly retryDelayMs: number;
  private readonly principal: string | undefined;
  private readonly authzRetry: AuthzRetry;

  constructor(options: StreamEventSinkOptions) {
    this.principal = options.principal;
    this.authzRetry = options.authzRetry ?? NO_AUTHZ_RETRY;
    if (!options.client) throw new InvalidArgumentError("StreamEventSink: client is required");
    if (!options.streamId) throw new InvalidArgumentError("StreamEventSink: streamId is required");
    this.client = options.client;
    this.streamId = options.streamId;
    this.entryRetries = options.entryRetries ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  /** Publish the batch; every event is checked (envelope, key and size limits) before any is sent. */
  async publish(events: PipelineEvent[]): Promise<void> {
    const encoded: Encoded[] = [];
    const seen = new Set<string>();
    events.forEach((event, i) => {
      checkEventEnvelope(event, i);
      const e = encode(event, i);
      // The same event twice in one batch is one event to consumers: send it once.
      if (seen.has(event.eventID)) return;
      seen.add(event.eventID);
      encoded.push(e);
    });
    for (const batch of batches(encoded)) await this.put(batch);
  }

  private async put(batch: Encoded[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; ; attempt++) {
      const failed = await this.putOnce(pending);
      if (failed.length === 0) return;
      if (attempt >= this.entryRetries) {
        const sample = failed
          .slice(0, 3)
          .map((f) => `${f.entry.event.eventID}: ${f.error}`)
          .join("; ");
        throw new StoreUnavailableError(
          `stream ${this.streamId} rejected ${failed.length} of ${batch.length} messages after ${attempt + 1} attempts (${sample})`,
          { details: { streamId: this.streamId, failed: failed.length } },
        );
      }
      pending = failed.map((f) => f.entry);
      await sleep(this.retryDelayMs * 2 ** attempt);
    }
  }

  /** One PutMessages request; returns the entries the service rejected. */
  private async putOnce(batch: Encoded[]): Promise<{ entry: Encoded; error: string }[]> {
    // A 404 stored nothing: the stream is missing or this principal may not push to it.
    const result: { failures: number; entries: { error?: string; errorMessage?: string }[] } =
      await retryNotAuthorized(this.authzRetry, async () => {
        try {
          const response = await this.client.putMessages({
            streamId: this.streamId,
            putMessagesDetails: { messages: batch.map((e) => ({ key: e.key, value: e.value })) },
            retryConfiguration: retryConfiguration(),
          });
          return response.putMessagesResult;
        } catch (err) {
          throw mapOciError(err, `putMessages to stream ${this.streamId}`, {
            absent: [],
            principal: this.principal,
            resource: `stream ${this.streamId}`,
          });
        }
      });
    // Entries are read even when `failures` is 0: an entry with an error was not stored.
    const failed: { entry: Encoded; error: string }[] = [];
    batch.forEach((entry, i) => {
      const r = result.entries[i];
      // A missing result entry is not known to be stored: send it again.
      if (!r || r.error) {
        failed.push({
          entry,
          error: r ? `${r.error} ${r.errorMessage ?? ""}`.trim() : "no result entry",
        });
      }
    });
    return failed;
  }
}
