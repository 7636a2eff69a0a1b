import { models, type StreamClient } from "oci-streaming";
import type { EventLog, PipelineEvent } from "../../ports/event-sink.ts";
import { mapOciError, ociStatus } from "./errors.ts";

/** Partitions probed at most when the stream's partition count isn't configured. */
const MAX_PARTITIONS = 64;
const PAGE = 1000;

/**
 * Read side of the completion stream, for `batch-infer events --backend oci`:
 * every partition from its oldest retained message, filtered by job (the
 * message key) and event type, deduplicated on eventID (delivery is at least
 * once), ordered by event time. Only matching events are kept in memory.
 */
export class StreamEventLog implements EventLog {
  constructor(
    private readonly options: {
      client: Pick<StreamClient, "createCursor" | "getMessages">;
      streamId: string;
      /** The stream's partition count; unset = probe partitions until one doesn't exist. */
      partitions?: number;
    },
  ) {}

  async read(filter: { jobId?: string; eventType?: string } = {}): Promise<PipelineEvent[]> {
    const seen = new Map<string, PipelineEvent>();
    const limit = this.options.partitions ?? MAX_PARTITIONS;
    for (let partition = 0; partition < limit; partition++) {
      let cursor: string;
      try {
        const res = await this.options.client.createCursor({
          streamId: this.options.streamId,
          createCursorDetails: {
            partition: String(partition),
            type: models.CreateCursorDetails.Type.TrimHorizon,
          },
        });
        cursor = res.cursor.value;
      } catch (err) {
        // Probing past the last partition: the service refuses the cursor (400 or 404).
        const status = ociStatus(err);
        if (
          this.options.partitions === undefined &&
          partition > 0 &&
          (status === 400 || status === 404)
        )
          break;
        throw mapOciError(err, `reading partition ${partition} of stream ${this.options.streamId}`);
      }
      for (;;) {
        let res: Awaited<ReturnType<StreamClient["getMessages"]>>;
        try {
          res = await this.options.client.getMessages({
            streamId: this.options.streamId,
            cursor,
            limit: PAGE,
          });
        } catch (err) {
          throw mapOciError(err, `reading stream ${this.options.streamId}`);
        }
        for (const m of res.items) {
          if (
            filter.jobId &&
            Buffer.from(m.key ?? "", "base64").toString("utf8") !== filter.jobId
          ) {
            continue;
          }
          let event: PipelineEvent;
          try {
            event = JSON.parse(Buffer.from(m.value, "base64").toString("utf8")) as PipelineEvent;
          } catch {
            continue; // not one of ours
          }
          if (filter.eventType && event.eventType !== filter.eventType) continue;
          if (typeof event.eventID === "string") seen.set(event.eventID, event);
        }
        if (res.items.length === 0 || !res.opcNextCursor) break;
        cursor = res.opcNextCursor;
      }
    }
    return [...seen.values()].sort((a, b) => a.eventTime.localeCompare(b.eventTime));
  }
}
