/**
 * StreamEventSink against the OCI stand-in, through the real oci-streaming
 * client: the EventSink contract (read back the way a consumer reads a stream:
 * a cursor per partition, GetMessages until empty, dedupe on eventID), plus
 * partitioning by job, limits checked before sending, per-entry retries and
 * request signing.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as common from "oci-common";
import { models, StreamClient } from "oci-streaming";
import { createClient } from "../src/adapters/oci/clients.ts";
import { eventKey, StreamEventSink } from "../src/adapters/oci/stream-event-sink.ts";
import type { EventLog, PipelineEvent } from "../src/ports/event-sink.ts";
import { eventSinkConformance, sampleEvent } from "./conformance/event-sink.conformance.ts";
import { type OciStandIn, standInAuth, startStandIn } from "./oci-standin/server.ts";
import { registerStreaming, type StreamingStandIn } from "./oci-standin/streaming.ts";

const PARTITIONS = 3;

let server: OciStandIn | undefined;
let streaming: StreamingStandIn | undefined;

async function standIn(): Promise<{ server: OciStandIn; streaming: StreamingStandIn }> {
  if (!server || !streaming) {
    server = await startStandIn();
    streaming = registerStreaming(server);
  }
  return { server, streaming };
}

after(async () => {
  await server?.close();
});

function streamClient(url: string): StreamClient {
  return createClient(StreamClient, standInAuth(), { endpoint: url });
}

function newStream(handle: StreamingStandIn): string {
  const id = `ocid1.stream.oc1.iad.${randomBytes(8).toString("hex")}`;
  handle.createStream(id, PARTITIONS);
  return id;
}

/**
 * The read side, as a consumer does it: a TRIM_HORIZON cursor per partition,
 * GetMessages until a page comes back empty, duplicates dropped by eventID.
 */
class StreamConsumerLog implements EventLog {
  constructor(
    private readonly client: StreamClient,
    private readonly streamId: string,
  ) {}

  async read(options: { jobId?: string; eventType?: string } = {}): Promise<PipelineEvent[]> {
    const seen = new Set<string>();
    const out: PipelineEvent[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const { cursor } = await this.client.createCursor({
        streamId: this.streamId,
        createCursorDetails: {
          partition: String(p),
          type: models.CreateCursorDetails.Type.TrimHorizon,
        },
      });
      let next = cursor.value;
      for (;;) {
        const page = await this.client.getMessages({
          streamId: this.streamId,
          cursor: next,
          limit: 2,
        });
        if (page.items.length === 0) break;
        for (const m of page.items) {
          const event = JSON.parse(
            Buffer.from(m.value, "base64").toString("utf8"),
          ) as PipelineEvent;
          if (seen.has(event.eventID)) continue;
          seen.add(event.eventID);
          if (options.jobId !== undefined && event.data.jobId !== options.jobId) continue;
          if (options.eventType !== undefined && event.eventType !== options.eventType) continue;
          out.push(event);
        }
        next = page.opcNextCursor;
      }
    }
    return out;
  }
}

eventSinkConformance("StreamEventSink conformance (OCI stand-in)", async () => {
  const { server, streaming } = await standIn();
  const client = streamClient(server.url);
  const streamId = newStream(streaming);
  return {
    sink: new StreamEventSink({ client, streamId }),
    log: new StreamConsumerLog(client, streamId),
    cleanup: async () => undefined,
  };
});

function putCount(s: OciStandIn, streamId: string): number {
  return s.requests.filter(
    (r) => r.method === "POST" && r.path === `/20180418/streams/${streamId}/messages`,
  ).length;
}

describe("StreamEventSink on the stand-in", () => {
  before(async () => {
    await standIn();
  });

  it("puts one job's events on one partition, with offsets counting up by one", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const sink = new StreamEventSink({ client: streamClient(server.url), streamId });
    const job = `job-${randomBytes(6).toString("hex")}`;
    const mine = Array.from({ length: 6 }, (_, i) => sampleEvent(job, `t.${i}`));
    const others = Array.from({ length: 12 }, (_, i) => sampleEvent(`other-${i}`));
    await sink.publish([mine[0], others[0], mine[1]] as PipelineEvent[]);
    await sink.publish([...others.slice(1), ...mine.slice(2)]);

    const stored = streaming.messages(streamId);
    const ofJob = stored.filter((m) => m.key.toString("utf8") === job);
    assert.equal(ofJob.length, mine.length);
    const partition = streaming.partitionOf(streamId, Buffer.from(job));
    assert.ok(ofJob.every((m) => m.partition === partition));
    assert.deepEqual(
      ofJob.map((m) => (JSON.parse(m.value.toString("utf8")) as PipelineEvent).eventID),
      mine.map((e) => e.eventID),
    );
    const offsets = ofJob.map((m) => m.offset);
    assert.deepEqual(
      offsets,
      [...offsets].sort((a, b) => a - b),
    );
    // Per partition, offsets are 0, 1, 2, ... and keys spread over more than one partition.
    for (let p = 0; p < PARTITIONS; p++) {
      const inP = stored.filter((m) => m.partition === p).map((m) => m.offset);
      assert.deepEqual(
        inP,
        inP.map((_, i) => i),
      );
    }
    assert.ok(new Set(stored.map((m) => m.partition)).size > 1);
  });

  it("keys by data.jobId, or by eventID when there is none", () => {
    const withJob = sampleEvent("job-7");
    const without = { ...sampleEvent("x"), data: { records: 1 } };
    assert.equal(eventKey(withJob), "job-7");
    assert.equal(eventKey(without), without.eventID);
  });

  it("rejects an oversized value or key before sending anything", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const sink = new StreamEventSink({ client: streamClient(server.url), streamId });
    const good = sampleEvent("job-big");
    const big = sampleEvent("job-big", "t.big", { blob: "x".repeat(1024 * 1024) });
    await assert.rejects(sink.publish([good, big]), (err: Error & { code?: string }) => {
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.match(err.message, /1048576/);
      assert.ok(err.message.includes(big.eventID), err.message);
      return true;
    });
    const longKey = sampleEvent("j".repeat(257));
    await assert.rejects(sink.publish([longKey]), (err: Error & { code?: string }) => {
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.match(err.message, /256/);
      assert.ok(err.message.includes(longKey.eventID), err.message);
      return true;
    });
    assert.equal(putCount(server, streamId), 0);
    assert.deepEqual(streaming.messages(streamId), []);
  });

  it("re-sends entries that came back with an error, and only those", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const sink = new StreamEventSink({
      client: streamClient(server.url),
      streamId,
      retryDelayMs: 1,
    });
    const events = [sampleEvent("job-r"), sampleEvent("job-r"), sampleEvent("job-s")];
    streaming.failNextEntries(1);
    await sink.publish(events);
    assert.equal(putCount(server, streamId), 2);
    const ids = streaming
      .messages(streamId)
      .map((m) => (JSON.parse(m.value.toString("utf8")) as PipelineEvent).eventID);
    assert.deepEqual([...ids].sort(), events.map((e) => e.eventID).sort());
  });

  it("gives up with a retryable STORE_UNAVAILABLE when entries keep failing", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const sink = new StreamEventSink({
      client: streamClient(server.url),
      streamId,
      entryRetries: 2,
      retryDelayMs: 1,
    });
    streaming.failNextEntries(3, { code: "500", message: "internal error" });
    await assert.rejects(
      sink.publish([sampleEvent("job-f")]),
      (
        err: Error & {
          code?: string;
          retryable?: boolean;
        },
      ) => {
        assert.equal(err.code, "STORE_UNAVAILABLE");
        assert.equal(err.retryable, true);
        assert.match(err.message, /rejected 1 of 1 messages after 3 attempts/);
        return true;
      },
    );
    assert.equal(putCount(server, streamId), 3);
  });

  it("retries a failed request (503) through the request retry configuration", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const sink = new StreamEventSink({ client: streamClient(server.url), streamId });
    let failed = 0;
    const remove = server.inject((req) => {
      if (req.method !== "POST" || !req.rawPath.includes(streamId) || failed > 0) return undefined;
      failed++;
      return { status: 503, body: { code: "ServiceUnavailable", message: "try later" } };
    });
    try {
      const event = sampleEvent("job-503");
      await sink.publish([event]);
      assert.equal(failed, 1);
      assert.equal(streaming.messages(streamId).length, 1);
    } finally {
      remove();
    }
  });

  it("the stand-in fails an oversized entry alone, as the service does", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const client = streamClient(server.url);
    const { putMessagesResult } = await client.putMessages({
      streamId,
      putMessagesDetails: {
        messages: [
          { key: Buffer.from("k").toString("base64"), value: Buffer.from("ok").toString("base64") },
          {
            key: Buffer.from("k").toString("base64"),
            value: Buffer.alloc(1024 * 1024 + 1).toString("base64"),
          },
          { key: Buffer.alloc(257).toString("base64"), value: Buffer.from("x").toString("base64") },
        ],
      },
    });
    assert.equal(putMessagesResult.failures, 2);
    assert.equal(putMessagesResult.entries[0]?.offset, 0);
    assert.equal(putMessagesResult.entries[1]?.error, "400");
    assert.match(putMessagesResult.entries[2]?.errorMessage ?? "", /key/);
    assert.equal(streaming.messages(streamId).length, 1);
  });

  it("refuses unsigned requests and requests signed by an unknown key", async () => {
    const { server, streaming } = await standIn();
    const streamId = newStream(streaming);
    const rejectedBefore = server.rejectedUnsigned;
    const raw = await fetch(`${server.url}/20180418/streams/${streamId}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ value: Buffer.from("x").toString("base64") }] }),
    });
    assert.equal(raw.status, 401);

    const stranger = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const auth = {
      ...standInAuth(),
      provider: new common.SimpleAuthenticationDetailsProvider(
        "ocid1.tenancy.oc1..stranger",
        "ocid1.user.oc1..stranger",
        "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        stranger.privateKey,
        null,
        common.Region.US_ASHBURN_1,
      ),
    };
    const sink = new StreamEventSink({
      client: createClient(StreamClient, auth, { endpoint: server.url }),
      streamId,
    });
    await assert.rejects(
      sink.publish([sampleEvent("job-u")]),
      (
        err: Error & {
          code?: string;
          retryable?: boolean;
        },
      ) => {
        assert.equal(err.code, "STORE_UNAVAILABLE");
        assert.equal(err.retryable, false);
        assert.match(err.message, /401/);
        return true;
      },
    );
    assert.equal(server.rejectedUnsigned, rejectedBefore + 2);
    assert.deepEqual(streaming.messages(streamId), []);
  });
});
