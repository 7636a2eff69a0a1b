import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { QueueClient } from "oci-queue";
import { createClient } from "../src/adapters/oci/clients.ts";
import { MAX_MESSAGE_BYTES, OciTaskQueue } from "../src/adapters/oci/task-queue.ts";
import { taskQueueConformance } from "./conformance/task-queue.conformance.ts";
import { type QueueStandIn, registerQueue } from "./oci-standin/queue.ts";
import {
  type OciStandIn,
  ociError,
  standInAuth,
  startStandIn,
  testCredentials,
} from "./oci-standin/server.ts";

// One stand-in for the file, started on first use; each fixture gets fresh queues.
let started: Promise<{ server: OciStandIn; queues: QueueStandIn }> | undefined;
function standIn(): Promise<{ server: OciStandIn; queues: QueueStandIn }> {
  started ??= startStandIn().then((server) => ({ server, queues: registerQueue(server) }));
  return started;
}
after(async () => {
  if (started) await (await started).server.close();
});

function client(server: OciStandIn): QueueClient {
  return createClient(QueueClient, standInAuth(), { endpoint: server.url });
}

/** A fresh work queue (DLQ after `maxDeliveries`) and parking queue, and an adapter over both. */
async function fixture(maxDeliveries = 5, options: { parking?: boolean } = {}) {
  const { server, queues } = await standIn();
  const tag = randomBytes(4).toString("hex");
  const queueId = `ocid1.queue.oc1..work${tag}`;
  const parkingId = `ocid1.queue.oc1..parking${tag}`;
  queues.createQueue(queueId, { deadLetterQueueDeliveryCount: maxDeliveries });
  queues.createQueue(parkingId, { deadLetterQueueDeliveryCount: 0 });
  const queue = new OciTaskQueue({
    client: client(server),
    queueId,
    ...(options.parking === false ? {} : { deadLetterQueueId: parkingId }),
  });
  return { server, queues, queue, queueId, parkingId };
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    caught = err as Error;
    return true;
  });
  return caught as Error;
}

taskQueueConformance("OciTaskQueue conformance (stand-in, injected clock)", async (opts) => {
  const { queue, queues } = await fixture(opts.maxDeliveries);
  return { queue, advance: (ms) => queues.advance(ms), cleanup: async () => {} };
});

// The suite's real-time path: what the cloud service gets, at ~1 s per expiry test.
taskQueueConformance("OciTaskQueue conformance (stand-in, real clock)", async (opts) => {
  const { queue } = await fixture(opts.maxDeliveries);
  return { queue, cleanup: async () => {} };
});

describe("OciTaskQueue over the OCI stand-in", () => {
  it("returns from a long poll as soon as a message is put", async () => {
    const { queue } = await fixture();
    const startedAt = performance.now();
    const pending = queue.receive({ max: 1, visibilitySeconds: 30, waitSeconds: 15 });
    setTimeout(() => void queue.send([{ body: "wake up" }]), 150);
    const got = await pending;
    const elapsed = performance.now() - startedAt;
    assert.deepEqual(
      got.map((m) => m.body),
      ["wake up"],
    );
    assert.ok(elapsed < 3_000, `long poll took ${Math.round(elapsed)} ms`);
  });

  it("signs every request; the stand-in rejects an unsigned one", async () => {
    const { server, queue, queueId } = await fixture();
    const before = server.requests.length;
    await queue.send([{ body: "signed" }]);
    await queue.stats();
    const mine = server.requests.slice(before);
    assert.ok(mine.length >= 2);
    assert.ok(mine.every((r) => r.keyId === testCredentials().keyId && r.status < 300));

    const rejected = server.rejectedUnsigned;
    const response = await fetch(`${server.url}/20210201/queues/${queueId}/messages?limit=1`);
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { code: string }).code, "NotAuthenticated");
    assert.equal(server.rejectedUnsigned, rejected + 1);
    // The unsigned request claimed nothing.
    assert.deepEqual(await queue.stats(), { visible: 1, inFlight: 0, deadLettered: 0 });
  });

  it("retries a 503 on getMessages and putMessages (request-level retry)", async () => {
    const { server, queue, queueId } = await fixture();
    const path = `/20210201/queues/${queueId}/messages`;
    const failed: string[] = [];
    const remove = server.inject((req) => {
      if (req.rawPath !== path || failed.includes(req.method)) return undefined;
      failed.push(req.method);
      return ociError(503, "ServiceUnavailable", "injected outage");
    });
    try {
      const [id] = await queue.send([{ body: "after outage" }]);
      const got = await queue.receive({ max: 1, visibilitySeconds: 30 });
      assert.deepEqual(
        got.map((m) => [m.id, m.body]),
        [[id, "after outage"]],
      );
    } finally {
      remove();
    }
    assert.deepEqual(failed.sort(), ["GET", "POST"]);
    const statuses = server.requests.filter((r) => r.path === path).map((r) => r.status);
    assert.deepEqual(statuses, [503, 200, 503, 200]);
  });

  it("rejects an oversized body with INVALID_ARGUMENT before any request", async () => {
    const { server, queue } = await fixture();
    const before = server.requests.length;
    const err = await rejectsWithCode(
      queue.send([{ body: "ok" }, { body: "x".repeat(MAX_MESSAGE_BYTES + 1) }]),
      "INVALID_ARGUMENT",
    );
    assert.match(err.message, new RegExp(String(MAX_MESSAGE_BYTES)));
    assert.equal(server.requests.length, before, "no request may be sent");
    // Exactly the limit is fine (counted in UTF-8 bytes).
    await queue.send([{ body: "é".repeat(MAX_MESSAGE_BYTES / 2) }]);
  });

  it("sends more than one request's worth in order, in chunks of 20", async () => {
    const { server, queue, queueId } = await fixture();
    const before = server.requests.length;
    const bodies = Array.from({ length: 45 }, (_, i) => `m${i}`);
    const ids = await queue.send(bodies.map((body) => ({ body })));
    const puts = server.requests
      .slice(before)
      .filter((r) => r.method === "POST" && r.path === `/20210201/queues/${queueId}/messages`);
    assert.equal(puts.length, 3);
    assert.equal(new Set(ids).size, 45);
    const got = [];
    while (got.length < 45) {
      const batch = await queue.receive({ max: 50, visibilitySeconds: 30 });
      assert.ok(batch.length > 0 && batch.length <= 20);
      got.push(...batch);
    }
    assert.deepEqual(
      got.map((m) => m.body),
      bodies,
    );
    assert.deepEqual(
      got.map((m) => m.id),
      ids,
    );
  });

  it("parks a dead-lettered copy with its reason, and counts it", async () => {
    const { queue, queues, queueId, parkingId } = await fixture();
    await queue.send([{ body: "poison", channel: "job-1" }]);
    const [m] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.ok(m);
    await queue.deadLetter(m.receipt, "cannot parse line 3");
    assert.deepEqual(queues.messages(queueId), []);
    const parked = queues.messages(parkingId);
    assert.equal(parked.length, 1);
    assert.equal(parked[0]?.content, "poison");
    assert.equal(parked[0]?.channelId, "job-1");
    assert.deepEqual(
      { ...parked[0]?.customProperties, deadLetteredAt: undefined },
      {
        reason: "cannot parse line 3",
        originalId: m.id,
        originalQueueId: queueId,
        deliveryCount: "1",
        channel: "job-1",
        deadLetteredAt: undefined,
      },
    );
    assert.deepEqual(await queue.stats(), { visible: 0, inFlight: 0, deadLettered: 1 });
  });

  it("parks nothing for a stale receipt", async () => {
    const { queue, queues, parkingId } = await fixture();
    await queue.send([{ body: "x" }]);
    const [stale] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.ok(stale);
    await queue.changeVisibility(stale.receipt, 0);
    const [fresh] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.ok(fresh);
    await rejectsWithCode(queue.deadLetter(stale.receipt, "late"), "LEASE_LOST");
    assert.deepEqual(queues.messages(parkingId), []);
    await queue.delete(fresh.receipt);
  });

  it("without a parking queue, deadLetter takes the message out of circulation", async () => {
    const { queue, queues, queueId } = await fixture(5, { parking: false });
    await queue.send([{ body: "bad" }]);
    const [m] = await queue.receive({ max: 1, visibilitySeconds: 30 });
    assert.ok(m);
    await queue.deadLetter(m.receipt, "bad");
    assert.deepEqual(queues.messages(queueId), []);
    await rejectsWithCode(queue.deadLetter(m.receipt, "again"), "LEASE_LOST");
  });

  it("drops messages past their retention", async () => {
    const { server, queues } = await standIn();
    const queueId = `ocid1.queue.oc1..short${randomBytes(4).toString("hex")}`;
    queues.createQueue(queueId, { deadLetterQueueDeliveryCount: 0, retentionInSeconds: 60 });
    const queue = new OciTaskQueue({ client: client(server), queueId });
    await queue.send([{ body: "old" }]);
    queues.advance(61_000);
    assert.deepEqual(await queue.receive({ max: 1, visibilitySeconds: 30 }), []);
    assert.deepEqual(await queue.stats(), { visible: 0, inFlight: 0, deadLettered: 0 });
  });

  it("maps an unknown (or forbidden) queue to a retryable configuration error and a malformed receipt to LEASE_LOST", async () => {
    const { server } = await standIn();
    const missing = new OciTaskQueue({
      client: client(server),
      queueId: "ocid1.queue.oc1..nope",
      principal: "workload batch-infer/batch-infer-worker",
    });
    const err = (await rejectsWithCode(
      missing.receive({ max: 1, visibilitySeconds: 30 }),
      "STORE_UNAVAILABLE",
    )) as unknown as { retryable: boolean; message: string };
    assert.equal(err.retryable, true);
    assert.match(
      err.message,
      /queue ocid1\.queue\.oc1\.\.nope .*batch-infer-worker is not authorized/,
    );
    const { queue } = await fixture();
    await rejectsWithCode(queue.delete("not-a-receipt"), "LEASE_LOST");
  });
});
