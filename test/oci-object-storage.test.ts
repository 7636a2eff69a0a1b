import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import * as common from "oci-common";
import { ObjectStorageClient } from "oci-objectstorage";
import { createClient } from "../src/adapters/oci/clients.ts";
import { OciObjectStore } from "../src/adapters/oci/object-storage.ts";
import { PreconditionFailedError, StoreUnavailableError } from "../src/core/errors.ts";
import { parseObjectEvent } from "../src/pipeline/events.ts";
import { objectStoreConformance, readAll } from "./conformance/object-store.conformance.ts";
import { registerObjectStorage } from "./oci-standin/object-storage.ts";
import {
  type OciStandIn,
  ociError,
  standInAuth,
  startStandIn,
  testCredentials,
} from "./oci-standin/server.ts";

const NAMESPACE = "standinns";
const MIB = 1024 * 1024;

const standIn: OciStandIn = await startStandIn();
/** The event handler tests swap in; the stand-in calls it for every delivery. */
let onEvent: (event: object) => void | Promise<void> = () => undefined;
const objectStorage = registerObjectStorage(standIn, {
  namespace: NAMESPACE,
  onObjectEvent: (event) => onEvent(event),
  // The part logic is tested with parts scaled down from the service's 10 MiB minimum;
  // "refuses parts under the service's minimum" below runs with the real one.
  minPartBytes: 64 * 1024,
});
objectStorage.createBucket("conformance");
const client = createClient(ObjectStorageClient, standInAuth(), { endpoint: standIn.url });

function store(options: { partSizeBytes?: number; singlePutMaxBytes?: number } = {}) {
  return new OciObjectStore({ client, namespace: NAMESPACE, ...options });
}

after(async () => {
  await objectStorage.idle();
  await standIn.close();
});

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `size` bytes generated lazily in 1 MiB chunks (never held whole), and their sha256. */
function generated(size: number): { stream: Readable; sha256: string } {
  const seed = randomBytes(MIB);
  function* chunks(): Generator<Buffer> {
    for (let off = 0, n = 0; off < size; n++) {
      const chunk = Buffer.from(seed.subarray(0, Math.min(MIB, size - off)));
      chunk[0] = n & 0xff; // chunks differ, so a reordered or repeated part shows in the hash
      off += chunk.length;
      yield chunk;
    }
  }
  const hash = createHash("sha256");
  for (const c of chunks()) hash.update(c);
  return { stream: Readable.from(chunks(), { objectMode: false }), sha256: hash.digest("hex") };
}

/** Requests the stand-in answered since `mark` (an index into `standIn.requests`). */
function requestsSince(mark: number): { method: string; path: string; status: number }[] {
  return standIn.requests.slice(mark);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A body that sends `first` bytes, then waits for `gate` before sending `rest`
 * bytes: lets a test act between a multipart upload's first part and its commit.
 */
function gatedBody(first: number, rest: number, gate: Promise<void>): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    yield randomBytes(first);
    await gate;
    yield randomBytes(rest);
  }
  return Readable.from(gen(), { objectMode: false });
}

objectStoreConformance("OciObjectStore conformance (OCI stand-in)", async () => ({
  store: store(),
  bucket: "conformance",
  cleanup: async () => undefined,
}));

describe("OciObjectStore on the OCI stand-in", () => {
  before(() => {
    objectStorage.createBucket("events-on", {
      objectEventsEnabled: true,
      compartmentId: "ocid1.compartment.oc1..eventstest",
    });
    objectStorage.createBucket("events-off");
  });

  it("streams a 40 MiB body as 8 MiB multipart parts and reads it back intact", async () => {
    const s = store({ partSizeBytes: 8 * MIB });
    const size = 40 * MIB + 123;
    const { stream, sha256: expected } = generated(size);
    const mark = standIn.requests.length;
    const { etag } = await s.put("conformance", "mp/large.bin", stream);
    const seen = requestsSince(mark);
    const parts = seen.filter((r) => r.method === "PUT" && r.path.includes("/u/"));
    assert.equal(parts.length, 6, "5 full parts and a 123-byte tail");
    assert.ok(parts.every((r) => r.status === 200));
    assert.equal(seen.filter((r) => r.method === "POST" && r.path.endsWith("/u")).length, 1);
    assert.equal(seen.filter((r) => r.method === "POST" && r.path.includes("/u/")).length, 1);
    assert.equal(seen.filter((r) => r.path.includes("/o/")).length, 0, "no single PutObject");
    assert.equal(objectStorage.openUploads("conformance"), 0);
    const info = await s.head("conformance", "mp/large.bin");
    assert.equal(info?.size, size);
    assert.equal(info?.etag, etag);
    assert.equal(
      sha256(objectStorage.objectBytes("conformance", "mp/large.bin") ?? Buffer.alloc(0)),
      expected,
    );
    const back = await readAll(await s.read("conformance", "mp/large.bin"));
    assert.equal(sha256(back), expected);
    const tail = await readAll(
      await s.read("conformance", "mp/large.bin", { start: size - 200, end: size }),
    );
    assert.deepEqual(tail, back.subarray(size - 200));
  });

  it("uses one PutObject for a stream that ends exactly at singlePutMaxBytes, multipart one byte later", async () => {
    const s = store({ partSizeBytes: MIB });
    let mark = standIn.requests.length;
    const exact = generated(MIB);
    await s.put("conformance", "mp/exact.bin", exact.stream);
    assert.deepEqual(
      requestsSince(mark).map((r) => `${r.method} ${r.path.includes("/u") ? "u" : "o"}`),
      ["PUT o"],
    );
    mark = standIn.requests.length;
    const over = generated(MIB + 1);
    await s.put("conformance", "mp/over.bin", over.stream);
    assert.equal(
      requestsSince(mark).filter((r) => r.method === "PUT" && r.path.includes("/u/")).length,
      2,
    );
    const back = await readAll(await s.read("conformance", "mp/over.bin"));
    assert.equal(sha256(back), over.sha256);
  });

  it("a conditional multipart put that loses the race at commit is PRECONDITION_FAILED and aborted", async () => {
    const s = store({ partSizeBytes: 256 * 1024 });
    for (const condition of ["ifNoneMatch", "ifMatch"] as const) {
      const name = `mp/race-${condition}`;
      const base = condition === "ifMatch" ? await s.put("conformance", name, "base") : undefined;
      const partSeen = deferred();
      const gate = deferred();
      const removeSpy = standIn.inject((req) => {
        if (req.method === "PUT" && req.rawPath.includes("/u/")) partSeen.resolve();
        return undefined;
      });
      const losing = s.put(
        "conformance",
        name,
        gatedBody(300 * 1024, 300 * 1024, gate.promise),
        condition === "ifMatch" ? { ifMatch: base?.etag ?? "" } : { ifNoneMatch: "*" },
      );
      try {
        await partSeen.promise;
        // The competing writer lands after the upload was created, before its commit.
        const winner = await s.put("conformance", name, "winner");
        gate.resolve();
        await assert.rejects(losing, PreconditionFailedError);
        assert.equal((await s.head("conformance", name))?.etag, winner.etag);
        assert.equal((await readAll(await s.read("conformance", name))).toString(), "winner");
        assert.equal(objectStorage.openUploads("conformance"), 0, "the losing upload is aborted");
      } finally {
        gate.resolve();
        removeSpy();
        await losing.catch(() => undefined);
      }
    }
  });

  it("a conditional multipart put fails fast at create when the condition already fails", async () => {
    const s = store({ partSizeBytes: 256 * 1024 });
    await s.put("conformance", "mp/exists", "x");
    const mark = standIn.requests.length;
    await assert.rejects(
      s.put("conformance", "mp/exists", generated(MIB).stream, { ifNoneMatch: "*" }),
      PreconditionFailedError,
    );
    const seen = requestsSince(mark);
    assert.equal(seen.filter((r) => r.method === "PUT").length, 0, "no part was uploaded");
    assert.deepEqual(
      seen.filter((r) => r.method === "POST").map((r) => r.status),
      [412],
    );
  });

  it("pages through a listing with nextStartWith, for names with query-significant characters", async () => {
    const s = store();
    const names = [
      "lst/a b#c",
      "lst/a&b=c",
      "lst/a+b",
      "lst/a?x",
      "lst/plain",
      "lst/sub/deep",
      "lst/ü%20x",
    ].sort();
    for (const n of names) await s.put("conformance", n, n);
    const seen: string[] = [];
    let start: string | undefined;
    let pages = 0;
    do {
      const page = await s.list("conformance", {
        prefix: "lst/",
        limit: 3,
        ...(start === undefined ? {} : { start }),
      });
      seen.push(...page.objects.map((o) => o.name));
      start = page.nextStart;
      pages++;
    } while (start !== undefined && pages < 10);
    assert.deepEqual(seen, names);
    assert.equal(pages, 3);
    assert.deepEqual(
      (await s.list("conformance", { prefix: "lst/a&" })).objects.map((o) => o.name),
      ["lst/a&b=c"],
    );
    assert.deepEqual(
      (await s.list("conformance", { prefix: "lst/a+" })).objects.map((o) => o.name),
      ["lst/a+b"],
    );
    for (const n of names) {
      assert.equal((await readAll(await s.read("conformance", n))).toString(), n);
    }
  });

  it("round-trips content type and opc-meta metadata, single put and multipart", async () => {
    const s = store({ partSizeBytes: 256 * 1024 });
    await s.put("conformance", "meta/single", "a,b\n1,2\n", {
      contentType: "text/csv",
      metadata: { jobid: "job-1", source: "test" },
    });
    await s.put("conformance", "meta/multi", generated(600 * 1024).stream, {
      contentType: "application/x-ndjson",
      metadata: { jobid: "job-2" },
    });
    const single = await client.headObject({
      namespaceName: NAMESPACE,
      bucketName: "conformance",
      objectName: "meta/single",
    });
    assert.equal(single.contentType, "text/csv");
    // The SDK adds "opc-meta-" on put but keeps it in the keys it reads back.
    assert.deepEqual(single.opcMeta, { "opc-meta-jobid": "job-1", "opc-meta-source": "test" });
    const multi = await client.headObject({
      namespaceName: NAMESPACE,
      bucketName: "conformance",
      objectName: "meta/multi",
    });
    assert.equal(multi.contentType, "application/x-ndjson");
    assert.deepEqual(multi.opcMeta, { "opc-meta-jobid": "job-2" });
    assert.ok(multi.opcMultipartMd5?.endsWith("-3"));
  });

  it("reports lastModified from Last-Modified as the current time", async () => {
    const s = store();
    const before = Date.now();
    await s.put("conformance", "time/x", "x");
    const info = await s.head("conformance", "time/x");
    assert.ok(info);
    // Last-Modified has whole seconds.
    assert.ok(info.lastModified.getTime() >= Math.floor(before / 1000) * 1000 - 1000);
    assert.ok(info.lastModified.getTime() <= Date.now() + 1000);
    const listed = await s.list("conformance", { prefix: "time/" });
    assert.equal(listed.objects[0]?.lastModified.getTime(), info.lastModified.getTime());
  });

  it("a wrong namespace or bucket is a configuration error naming the principal, never a missing object", async () => {
    const other = new OciObjectStore({
      client,
      namespace: "someone-else",
      principal: "user tester",
    });
    await expectConfigError(other);
    await expectConfigError(
      new OciObjectStore({ client, namespace: NAMESPACE, principal: "user tester" }),
      "no-such-bucket",
    );
    async function expectConfigError(s: OciObjectStore, bucket = "conformance"): Promise<void> {
      const configError = (err: { code?: string; retryable?: boolean; message?: string }) =>
        err.code === "STORE_UNAVAILABLE" &&
        err.retryable === true &&
        new RegExp(`${bucket}.*user tester is not authorized`).test(err.message ?? "");
      // HEAD's 404 has no body: the adapter must not read it as "absent".
      await assert.rejects(s.head(bucket, "x"), configError);
      await assert.rejects(s.read(bucket, "x"), configError);
      await assert.rejects(s.put(bucket, "x", "y"), configError);
      await assert.rejects(s.list(bucket), configError);
      // A refused delete is not a delete that happened.
      await assert.rejects(s.delete(bucket, "x"), configError);
    }
  });

  it("a missing object in a bucket it may read is absent: head undefined, read NOT_FOUND, delete a no-op", async () => {
    const s = store();
    assert.equal(await s.head("conformance", "nothing/here"), undefined);
    await assert.rejects(s.read("conformance", "nothing/here"), { code: "NOT_FOUND" });
    await s.delete("conformance", "nothing/here");
  });

  it("refuses parts under the service's 10 MiB minimum (all but the last)", async () => {
    const strict = await startStandIn();
    try {
      registerObjectStorage(strict, { namespace: NAMESPACE }).createBucket("b");
      const c = createClient(ObjectStorageClient, standInAuth(), { endpoint: strict.url });
      const small = new OciObjectStore({ client: c, namespace: NAMESPACE, partSizeBytes: MIB });
      await assert.rejects(
        small.put("b", "small-parts", generated(3 * MIB).stream),
        (err: { code?: string; message?: string }) =>
          err.code === "INVALID_ARGUMENT" && /at least 10485760/.test(err.message ?? ""),
      );
      const big = generated(12 * MIB);
      const ok = new OciObjectStore({ client: c, namespace: NAMESPACE, singlePutMaxBytes: MIB });
      await ok.put("b", "default-parts", big.stream);
      assert.equal(sha256(await readAll(await ok.read("b", "default-parts"))), big.sha256);
    } finally {
      await strict.close();
    }
  });

  it("maps a 503 to a retryable STORE_UNAVAILABLE once the SDK's retries are spent", async () => {
    // A client that does not retry: the SDK default backs off up to 30 s over 8 attempts.
    const noRetry = new ObjectStorageClient(
      { authenticationDetailsProvider: standInAuth().provider },
      { retryConfiguration: { terminationStrategy: new common.MaxAttemptsTerminationStrategy(1) } },
    );
    noRetry.endpoint = standIn.url;
    const s = new OciObjectStore({ client: noRetry, namespace: NAMESPACE, writeAttempts: 1 });
    await s.put("conformance", "flaky/x", "x");
    const remove = standIn.inject((req) =>
      `${req.rawPath}${req.url.search}`.includes("flaky")
        ? ociError(503, "ServiceUnavailable", "try later")
        : undefined,
    );
    try {
      for (const attempt of [
        () => s.head("conformance", "flaky/x"),
        () => s.read("conformance", "flaky/x"),
        () => s.put("conformance", "flaky/x", "y"),
        () => s.list("conformance", { prefix: "flaky/" }),
        () => s.delete("conformance", "flaky/x"),
      ]) {
        await assert.rejects(attempt(), (err: unknown) => {
          assert.ok(err instanceof StoreUnavailableError, String(err));
          assert.equal(err.retryable, true);
          return true;
        });
      }
    } finally {
      remove();
    }
  });

  it("retries a one-off 503 on an unconditional put and on a part, not on a conditional put", async () => {
    const s = store({ partSizeBytes: 256 * 1024 });
    let armed = new Set<string>();
    const remove = standIn.inject((req) => {
      const key = `${req.method} ${req.rawPath.includes("/u/") ? "part" : "object"}`;
      if (req.method === "PUT" && req.rawPath.includes("once") && armed.delete(key)) {
        return ociError(503, "ServiceUnavailable", "try later");
      }
      return undefined;
    });
    try {
      armed = new Set(["PUT object"]);
      const { etag } = await s.put("conformance", "once/x", "payload");
      assert.equal(armed.size, 0, "the 503 was served");
      assert.equal((await s.head("conformance", "once/x"))?.etag, etag);

      armed = new Set(["PUT part"]);
      const body = generated(600 * 1024);
      await s.put("conformance", "once/big", body.stream);
      assert.equal(armed.size, 0);
      assert.equal(sha256(await readAll(await s.read("conformance", "once/big"))), body.sha256);

      armed = new Set(["PUT object"]);
      await assert.rejects(s.put("conformance", "once/cond", "x", { ifNoneMatch: "*" }), {
        code: "STORE_UNAVAILABLE",
        retryable: true,
      });
      assert.equal(await s.head("conformance", "once/cond"), undefined);
    } finally {
      remove();
    }
  });

  it("emits createobject then updateobject envelopes that validate against the schema", async () => {
    const received: Record<string, unknown>[] = [];
    onEvent = async (event) => {
      // Delivered after the upload's response: the object is already readable.
      const e = parseObjectEvent(event);
      assert.ok(await store().head("events-on", e.data.resourceName));
      received.push(event as Record<string, unknown>);
    };
    try {
      const s = store({ partSizeBytes: 256 * 1024 });
      const first = await s.put("events-on", "in/data.csv", "a,b\n");
      await objectStorage.idle();
      const second = await s.put("events-on", "in/data.csv", "a,b\n1,2\n");
      await objectStorage.idle();
      const multi = await s.put("events-on", "in/big.csv", generated(600 * 1024).stream);
      await objectStorage.idle();
      assert.equal(received.length, 3);
      const [created, updated, multipart] = received.map((e) => parseObjectEvent(e));
      assert.ok(created && updated && multipart);
      assert.equal(created.eventType, "com.oraclecloud.objectstorage.createobject");
      assert.equal(updated.eventType, "com.oraclecloud.objectstorage.updateobject");
      assert.equal(multipart.eventType, "com.oraclecloud.objectstorage.createobject");
      assert.equal(created.data.additionalDetails.eTag, first.etag);
      assert.equal(updated.data.additionalDetails.eTag, second.etag);
      assert.equal(multipart.data.additionalDetails.eTag, multi.etag);
      assert.notEqual(created.eventID, updated.eventID);
      for (const e of [created, updated]) {
        assert.equal(e.cloudEventsVersion, "0.1");
        assert.equal(e.eventTypeVersion, "2.0");
        assert.equal(e.source, "ObjectStorage");
        assert.equal(e.contentType, "application/json");
        assert.ok(!Number.isNaN(Date.parse(e.eventTime)));
        assert.deepEqual(e.extensions, { compartmentId: "ocid1.compartment.oc1..eventstest" });
        assert.equal(e.data.resourceName, "in/data.csv");
        assert.equal(e.data.resourceId, `/n/${NAMESPACE}/b/events-on/o/in/data.csv`);
        assert.equal(e.data.compartmentId, "ocid1.compartment.oc1..eventstest");
        assert.equal(e.data.additionalDetails.bucketName, "events-on");
        assert.equal(e.data.additionalDetails.namespace, NAMESPACE);
        const details = e.data.additionalDetails as Record<string, unknown>;
        assert.equal(details.archivalState, "Available");
        assert.match(String(details.bucketId), /^ocid1\.bucket\./);
      }
    } finally {
      onEvent = () => undefined;
    }
  });

  it("redelivers an event whose handler failed (at least once)", async () => {
    let calls = 0;
    onEvent = () => {
      calls++;
      if (calls === 1) throw new Error("function cold start failed");
    };
    try {
      await store().put("events-on", "in/retry.csv", "x");
      await objectStorage.idle();
      assert.equal(calls, 2);
      assert.equal(objectStorage.failedDeliveries.length, 0);
    } finally {
      onEvent = () => undefined;
    }
  });

  it("emits nothing for a bucket without object events, or for a failed conditional put", async () => {
    const received: object[] = [];
    onEvent = (event) => {
      received.push(event);
    };
    try {
      const s = store();
      await s.put("events-off", "in/data.csv", "a,b\n");
      await s.put("events-off", "in/data.csv", "a,b\n", {});
      await s.put("events-on", "in/once.csv", "x", { ifNoneMatch: "*" });
      await assert.rejects(
        s.put("events-on", "in/once.csv", "y", { ifNoneMatch: "*" }),
        PreconditionFailedError,
      );
      await objectStorage.idle();
      assert.equal(received.length, 1, "only the successful create on events-on");
      assert.deepEqual(objectStorage.objectNames("events-off"), ["in/data.csv"]);
    } finally {
      onEvent = () => undefined;
    }
  });

  it("rejects an unsigned request with 401, and every request the client sent was signed", async () => {
    const before = standIn.rejectedUnsigned;
    const res = await fetch(`${standIn.url}/n/${NAMESPACE}/b/conformance/o`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { code?: string }).code, "NotAuthenticated");
    assert.equal(standIn.rejectedUnsigned, before + 1);
    // Everything else this file sent went through the SDK, signed with the test key.
    assert.equal(standIn.rejectedUnsigned, 1);
    const { keyId } = testCredentials();
    const signed = standIn.requests.filter((r) => r.status !== 401);
    assert.ok(signed.length > 100);
    assert.ok(signed.every((r) => r.keyId === keyId));
  });
});
