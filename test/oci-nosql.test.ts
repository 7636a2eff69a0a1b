import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import * as common from "oci-common";
import { NosqlClient } from "oci-nosql";
import { NosqlCheckpointStore } from "../src/adapters/oci/checkpoint-store.ts";
import { createClient, retryConfiguration } from "../src/adapters/oci/clients.ts";
import {
  checkpointStoreConformance,
  sampleJob,
  samplePartition,
} from "./conformance/checkpoint-store.conformance.ts";
import {
  abortConnection,
  type NosqlStandIn,
  type NosqlStandInOptions,
  parseQuery,
  registerNosql,
} from "./oci-standin/nosql.ts";
import {
  type OciStandIn,
  ociError,
  standInAuth,
  startStandIn,
  testCredentials,
} from "./oci-standin/server.ts";

const JOBS = "batch_infer_jobs";
const PARTITIONS = "batch_infer_partitions";
const COMPARTMENT = "ocid1.compartment.oc1..standin";

interface Env {
  server: OciStandIn;
  nosql: NosqlStandIn;
  client: NosqlClient;
  store(
    options?: Partial<ConstructorParameters<typeof NosqlCheckpointStore>[0]>,
  ): NosqlCheckpointStore;
}

const servers: OciStandIn[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** Retries as production has them, minus the seconds of backoff. */
const fastRetry: common.RetryConfiguration = {
  ...retryConfiguration(),
  delayStrategy: new common.FixedTimeDelayStrategy(0.01),
};

async function startEnv(options: NosqlStandInOptions = {}): Promise<Env> {
  const server = await startStandIn();
  servers.push(server);
  const nosql = registerNosql(server, options);
  nosql.createTable(JOBS, ["jobId"]);
  nosql.createTable(PARTITIONS, ["jobId", "idx"]);
  const newClient = () => createClient(NosqlClient, standInAuth(), { endpoint: server.url });
  const client = newClient();
  return {
    server,
    nosql,
    client,
    store: (overrides = {}) =>
      new NosqlCheckpointStore({
        client: newClient(),
        compartmentId: COMPARTMENT,
        retry: fastRetry,
        ...overrides,
      }),
  };
}

/** One stand-in per mode, started on first use and shared by that mode's tests (job ids are random). */
function lazyEnv(options: NosqlStandInOptions = {}): () => Promise<Env> {
  let env: Promise<Env> | undefined;
  return () => {
    env ??= startEnv(options);
    return env;
  };
}

function newJobId(): string {
  return `job-${randomBytes(8).toString("hex")}`;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    caught = err;
    return true;
  });
  return caught;
}

// ---- The port contract, under both readings of the UNCONFIRMED service behaviour ----

const strictEnv = lazyEnv({ conditionFailure: "412" });
checkpointStoreConformance(
  "NosqlCheckpointStore conformance (412 on failed if-match; missing row = 200 with value null)",
  async () => ({ store: (await strictEnv()).store(), cleanup: async () => {} }),
);

const softEnv = lazyEnv({ conditionFailure: "empty-version", maxPageSize: 2 });
checkpointStoreConformance(
  "NosqlCheckpointStore conformance (200 without version on failed if-match; 2-row pages)",
  async () => ({ store: (await softEnv()).store({ queryPageSize: 3 }), cleanup: async () => {} }),
);

// ---- NoSQL-specific behaviour --------------------------------------------------------

describe("NosqlCheckpointStore over the NoSQL stand-in", () => {
  const env = lazyEnv();

  it("stores rows as the DDL lays them out: key columns, createdAt LONG, record JSON", async () => {
    const { nosql, store } = await env();
    const s = store();
    const jobId = newJobId();
    const job = sampleJob(jobId);
    const { row } = await s.createJob(job);
    const partition = samplePartition(jobId, 3);
    await s.createPartitions([partition]);
    const stored = nosql.rows(JOBS).find((r) => r.value.jobId === jobId);
    assert.ok(stored);
    assert.deepEqual(stored.value, { jobId, createdAt: Date.parse(job.createdAt), record: job });
    assert.equal(stored.etag, row.version);
    const part = nosql.rows(PARTITIONS).find((r) => r.value.jobId === jobId);
    assert.deepEqual(part?.value, { jobId, idx: 3, record: partition });
  });

  it("lets exactly one of two stores (separate clients) win a compare-and-set", async () => {
    const { nosql, store } = await env();
    const a = store();
    const b = store();
    const jobId = newJobId();
    await a.createJob(sampleJob(jobId));
    await a.createPartitions([samplePartition(jobId, 0)]);
    for (let round = 0; round < 5; round++) {
      const job = await a.getJob(jobId);
      const part = await b.getPartition(jobId, 0);
      assert.ok(job && part);
      const jobs = await Promise.allSettled([
        a.updateJob(jobId, { ...job.value, runAttempt: round * 2 + 1 }, job.version),
        b.updateJob(jobId, { ...job.value, runAttempt: round * 2 + 2 }, job.version),
      ]);
      const parts = await Promise.allSettled([
        a.updatePartition({ ...part.value, owner: "a", epoch: round + 1 }, part.version),
        b.updatePartition({ ...part.value, owner: "b", epoch: round + 1 }, part.version),
      ]);
      for (const results of [jobs, parts]) {
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1);
        assert.equal(
          ((lost[0] as PromiseRejectedResult).reason as { code?: unknown }).code,
          "CONFLICT",
        );
      }
      const winner = (
        parts.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<{
          version: string;
          value: { owner?: string };
        }>
      ).value;
      const inTable = nosql.rows(PARTITIONS).find((r) => r.value.jobId === jobId);
      assert.ok(inTable);
      assert.equal(inTable.etag, winner.version);
      assert.equal((inTable.value.record as { owner?: string }).owner, winner.value.owner);
    }
  });

  it("treats a lost response to an applied update as success, not CONFLICT (default retry policy)", async () => {
    const { server, nosql, store } = await env();
    // The production retry policy: proves updateRow is retried at all (the SDK default is not to).
    const s = store({ retry: retryConfiguration() });
    const jobId = newJobId();
    await s.createPartitions([samplePartition(jobId, 0)]);
    const p = await s.getPartition(jobId, 0);
    assert.ok(p);
    let dropped = 0;
    const remove = nosql.afterWrite((w) => {
      if (w.table !== PARTITIONS || w.value.jobId !== jobId || dropped > 0) return undefined;
      dropped++;
      return abortConnection();
    });
    const before = server.requests.length;
    try {
      const next = await s.updatePartition({ ...p.value, offset: 777, owner: "w1" }, p.version);
      assert.equal(dropped, 1);
      assert.equal(next.value.offset, 777);
      const stored = nosql.rows(PARTITIONS).find((r) => r.value.jobId === jobId);
      assert.equal(next.version, stored?.etag, "the version returned is the row's etag now");
      const puts = server.requests.slice(before).filter((r) => r.method === "PUT");
      assert.equal(puts.length, 2, "the write was sent twice");
      assert.equal(puts[1]?.status, 412, "and the retry found its own write");
      assert.deepEqual(await s.getPartition(jobId, 0), next);
    } finally {
      remove();
    }
  });

  it("treats a lost response to an applied create as created: true", async () => {
    const { nosql, store } = await env();
    const s = store();
    const jobId = newJobId();
    let dropped = 0;
    const remove = nosql.afterWrite((w) => {
      if (w.table !== JOBS || w.value.jobId !== jobId || dropped > 0) return undefined;
      dropped++;
      return abortConnection();
    });
    try {
      const job = sampleJob(jobId);
      const first = await s.createJob(job);
      assert.equal(dropped, 1);
      assert.equal(first.created, true);
      assert.deepEqual(first.row.value, job);
      assert.deepEqual(await s.getJob(jobId), first.row);
      const second = await s.createJob(sampleJob(jobId, { runAttempt: 5 }));
      assert.equal(second.created, false);
      assert.deepEqual(second.row, first.row);
    } finally {
      remove();
    }
  });

  it("reports CONFLICT when another writer changed the row after our lost write", async () => {
    const { nosql, store } = await env();
    const s = store();
    const jobId = newJobId();
    const { row } = await s.createJob(sampleJob(jobId));
    let dropped = 0;
    const remove = nosql.afterWrite((w) => {
      if (w.table !== JOBS || w.value.jobId !== jobId || dropped > 0) return undefined;
      dropped++;
      // Someone else writes between our applied attempt and our retry.
      nosql.put(JOBS, { ...w.value, record: { ...(w.value.record as object), state: "failed" } });
      return abortConnection();
    });
    try {
      await rejectsWithCode(
        s.updateJob(jobId, { ...row.value, state: "running" }, row.version),
        "CONFLICT",
      );
      assert.equal((await s.getJob(jobId))?.value.state, "failed");
    } finally {
      remove();
    }
  });

  it("never turns an empty or odd version into an unconditional put", async () => {
    const { nosql, store } = await env();
    const s = store();
    const jobId = newJobId();
    const { row } = await s.createJob(sampleJob(jobId));
    for (const bad of ["", "a\nb", undefined as unknown as string]) {
      await rejectsWithCode(s.updateJob(jobId, { ...row.value, state: "failed" }, bad), "CONFLICT");
    }
    assert.equal(nosql.rows(JOBS).find((r) => r.value.jobId === jobId)?.etag, row.version);
    assert.deepEqual(await s.getJob(jobId), row);
  });

  it("lists partitions across several query pages, percent-encoding the page token", async () => {
    const { server, store } = await env();
    const s = store({ queryPageSize: 3 });
    const jobId = newJobId();
    const order = [9, 4, 0, 7, 1, 8, 2, 6, 3, 5];
    await s.createPartitions(order.map((i) => samplePartition(jobId, i)));
    await s.createPartitions([samplePartition(`${jobId}-x`, 0)]);
    const before = server.requests.length;
    const rows = await s.listPartitions(jobId);
    assert.deepEqual(
      rows.map((r) => r.value.index),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const queries = server.requests
      .slice(before)
      .filter((r) => r.method === "POST" && r.path === "/20190828/query");
    assert.equal(queries.length, 4, "10 rows at 3 per page");
    assert.ok(queries.every((q) => q.status === 200));
  });

  it("lists jobs newest first across pages", async () => {
    const { store } = await env();
    const s = store({ queryPageSize: 2 });
    const base = Date.parse("2031-01-01T00:00:00Z");
    const ids = [0, 1, 2, 3, 4].map((i) => `${newJobId()}-${i}`);
    for (const [i, id] of ids.entries()) {
      await s.createJob(sampleJob(id, { createdAt: new Date(base + i * 1000).toISOString() }));
    }
    const listed = await s.listJobs({ limit: 3 });
    assert.deepEqual(
      listed.map((r) => r.value.jobId),
      [ids[4], ids[3], ids[2]],
    );
    for (const r of listed) assert.deepEqual(await s.getJob(r.value.jobId), r);
  });

  it("rejects unsigned and wrongly signed requests", async () => {
    const { server, nosql, store } = await env();
    const before = server.rejectedUnsigned;
    const unsigned = await fetch(
      `${server.url}/20190828/tables/${JOBS}/rows?compartmentId=${COMPARTMENT}&key=jobId:x`,
    );
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { code?: string }).code, "NotAuthenticated");
    const put = await fetch(`${server.url}/20190828/tables/${JOBS}/rows`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ compartmentId: COMPARTMENT, value: { jobId: "intruder" } }),
    });
    assert.equal(put.status, 401);
    assert.ok(!nosql.rows(JOBS).some((r) => r.value.jobId === "intruder"));

    // Same keyId, different private key: the signature does not verify.
    const creds = testCredentials();
    const other = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const forged = createClient(
      NosqlClient,
      {
        mode: "config_file",
        region: creds.region,
        provider: new common.SimpleAuthenticationDetailsProvider(
          creds.tenancy,
          creds.user,
          creds.fingerprint,
          other.privateKey,
          null,
          common.Region.fromRegionId(creds.region),
        ),
      },
      { endpoint: server.url },
    );
    const s = store({ client: forged });
    const err = await rejectsWithCode(s.getJob("job-x"), "STORE_UNAVAILABLE");
    assert.equal((err as { retryable?: boolean }).retryable, false);
    assert.ok(server.rejectedUnsigned >= before + 3);
  });

  it("fails loudly on a missing table instead of reading it as a missing row", async () => {
    const { store } = await env();
    const s = store({ jobsTable: "no_such_table", principal: "user test" });
    const err = (await rejectsWithCode(s.getJob(newJobId()), "STORE_UNAVAILABLE")) as {
      retryable: boolean;
      message: string;
    };
    assert.equal(err.retryable, true);
    assert.match(err.message, /NoSQL table no_such_table .* user test is not authorized/);
  });

  it("reads a 404 NotAuthorizedOrNotFound as a configuration error naming the principal, never as no row", async () => {
    const { server, store } = await env();
    const s = store({ principal: "fnfunc ocid1.fnfunc.oc1..merger" });
    const jobId = newJobId();
    await s.createJob(sampleJob(jobId));
    const remove = server.inject((req) =>
      req.method === "GET" && req.rawPath.endsWith("/rows")
        ? ociError(
            404,
            "NotAuthorizedOrNotFound",
            "Authorization failed or requested resource not found",
          )
        : undefined,
    );
    try {
      const err = (await rejectsWithCode(s.getJob(jobId), "STORE_UNAVAILABLE")) as {
        retryable: boolean;
        message: string;
        details: Record<string, unknown>;
      };
      assert.equal(err.retryable, true);
      assert.equal(err.details.notAuthorizedOrNotFound, true);
      assert.match(err.message, /fnfunc ocid1\.fnfunc\.oc1\.\.merger is not authorized/);
      assert.match(err.message, /batch_infer_jobs/);
    } finally {
      remove();
    }
    assert.equal((await s.getJob(jobId))?.value.jobId, jobId);
  });

  it("sends only base64 row versions as if-match; a foreign version is a conflict, not a 400", async () => {
    const { store } = await env();
    const s = store();
    const jobId = newJobId();
    const { row } = await s.createJob(sampleJob(jobId));
    await rejectsWithCode(s.updateJob(jobId, row.value, "7"), "CONFLICT");
    await rejectsWithCode(s.updateJob(jobId, row.value, "not base64!"), "CONFLICT");
    assert.ok(await s.updateJob(jobId, row.value, row.version));
  });
});

describe("NoSQL stand-in", () => {
  const env = lazyEnv();

  it("parses only the statement forms the adapter issues", () => {
    assert.deepEqual(
      parseQuery("DECLARE $jobId STRING; SELECT p.idx FROM t p WHERE p.jobId = $jobId")?.where,
      [{ column: "jobId", variable: "$jobId" }],
    );
    assert.equal(parseQuery("SELECT * FROM t")?.projection, "*");
    assert.deepEqual(parseQuery("SELECT * FROM t AS j ORDER BY j.createdAt DESC")?.orderBy, [
      { column: "createdAt", desc: true },
    ]);
    assert.equal(parseQuery("UPDATE t SET x = 1"), undefined);
    assert.equal(parseQuery("SELECT count(*) FROM t"), undefined);
    assert.equal(parseQuery("SELECT q.a FROM t p"), undefined);
  });

  it("answers an unsupported statement with 400 naming it", async () => {
    const { client } = await env();
    await assert.rejects(
      client.query({
        queryDetails: { compartmentId: COMPARTMENT, statement: "DELETE FROM batch_infer_jobs" },
      }),
      (err: { statusCode?: number; message?: string }) =>
        err.statusCode === 400 && /DELETE FROM batch_infer_jobs/.test(err.message ?? ""),
    );
  });

  it("implements IF_PRESENT, if-match and deleteRow with new etags per write", async () => {
    const { client } = await env();
    const key = `k-${randomBytes(4).toString("hex")}`;
    const details = { compartmentId: COMPARTMENT, value: { jobId: key, createdAt: 1, record: {} } };
    const absent = await client.updateRow({
      tableNameOrId: JOBS,
      updateRowDetails: { ...details, option: "IF_PRESENT" as never, isGetReturnRow: true },
    });
    assert.equal(absent.updateRowResult.version, undefined);
    const first = await client.updateRow({ tableNameOrId: JOBS, updateRowDetails: details });
    assert.ok(first.etag);
    assert.equal(first.etag, first.updateRowResult.version);
    const second = await client.updateRow({
      tableNameOrId: JOBS,
      ifMatch: first.etag,
      updateRowDetails: { ...details, value: { ...details.value, createdAt: 2 } },
    });
    assert.ok(second.etag && second.etag !== first.etag);
    const exists = await client.updateRow({
      tableNameOrId: JOBS,
      updateRowDetails: { ...details, option: "IF_ABSENT" as never, isGetReturnRow: true },
    });
    assert.equal(exists.updateRowResult.version, undefined);
    assert.equal(exists.updateRowResult.existingVersion, second.etag);
    assert.equal(exists.updateRowResult.existingValue?.createdAt, 2);
    await assert.rejects(
      client.deleteRow({
        tableNameOrId: JOBS,
        compartmentId: COMPARTMENT,
        key: [`jobId:${key}`],
        ifMatch: first.etag,
      }),
      (err: { statusCode?: number }) => err.statusCode === 412,
    );
    const deleted = await client.deleteRow({
      tableNameOrId: JOBS,
      compartmentId: COMPARTMENT,
      key: [`jobId:${key}`],
      ifMatch: second.etag,
      isGetReturnRow: true,
    });
    assert.equal(deleted.deleteRowResult.isSuccess, true);
    assert.equal(deleted.deleteRowResult.existingValue?.createdAt, 2);
    const gone = await client.getRow({
      tableNameOrId: JOBS,
      compartmentId: COMPARTMENT,
      key: [`jobId:${key}`],
    });
    assert.equal(
      gone.row.value,
      null,
      "a missing row is 200 with value null, as the proxy answers",
    );
  });

  it("holds if-match to the proxy's rules: a base64 version or 400, and option ignored beside it", async () => {
    const { client } = await env();
    const key = `k-${randomBytes(4).toString("hex")}`;
    const details = { compartmentId: COMPARTMENT, value: { jobId: key, createdAt: 1, record: {} } };
    const first = await client.updateRow({ tableNameOrId: JOBS, updateRowDetails: details });
    await assert.rejects(
      client.updateRow({ tableNameOrId: JOBS, ifMatch: "v1", updateRowDetails: details }),
      (err: { statusCode?: number }) => err.statusCode === 400,
    );
    // IF_ABSENT beside a matching if-match: the version decides, so the row is written.
    const written = await client.updateRow({
      tableNameOrId: JOBS,
      ifMatch: first.etag,
      updateRowDetails: {
        ...details,
        value: { ...details.value, createdAt: 3 },
        option: "IF_ABSENT" as never,
      },
    });
    assert.ok(written.updateRowResult.version);
    await assert.rejects(
      client.query({
        queryDetails: {
          compartmentId: COMPARTMENT,
          statement: "SELECT * FROM batch_infer_jobs j ORDER BY j.createdAt",
        },
      }),
      (err: { statusCode?: number }) => err.statusCode === 400,
    );
  });
});
