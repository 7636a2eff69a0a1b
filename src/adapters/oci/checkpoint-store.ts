/**
 * CheckpointStore over OCI NoSQL (tables in scripts/oci/nosql-tables.ddl):
 * - jobs       (jobId STRING, createdAt LONG, record JSON, PRIMARY KEY(jobId))
 * - partitions (jobId STRING, idx INTEGER, record JSON, PRIMARY KEY(SHARD(jobId), idx))
 *
 * A row's version is its etag. Writes are conditional puts: IF_ABSENT to create,
 * `if-match: <etag>` to compare-and-set. updateRow and query are not retried by
 * the SDK by default, so every call carries a retry policy; a retried
 * conditional write is ambiguous (the first attempt may have applied before its
 * response was lost), which the row layer (nosql-rows.ts) resolves by re-reading.
 */
import type * as common from "oci-common";
import type { NosqlClient } from "oci-nosql";
import { InvalidArgumentError, StoreUnavailableError } from "../../core/errors.ts";
import type { JobRecord, PartitionRecord } from "../../core/records.ts";
import type { CheckpointStore, Versioned } from "../../ports/checkpoint-store.ts";
import { checkJobId, checkJobUpdate, checkPartition } from "../port-contract.ts";
import { type AuthzRetry, NO_AUTHZ_RETRY } from "./authz-retry.ts";
import { retryConfiguration } from "./clients.ts";
import { NosqlRows, plain, queryValue, sameJson } from "./nosql-rows.ts";

/** Options for {@link NosqlCheckpointStore}. */
export interface NosqlCheckpointStoreOptions {
  /** An already-constructed client (endpoint and region set by the caller). */
  client: NosqlClient;
  /** Compartment of the tables (required because tables are named, not given by OCID). */
  compartmentId: string;
  /** Default `batch_infer_jobs`. */
  jobsTable?: string;
  /** Default `batch_infer_partitions`. */
  partitionsTable?: string;
  /** `limit` per query page (default 1000); the service may return fewer and page on. */
  queryPageSize?: number;
  /** Retry policy for every call (default `retryConfiguration()` from clients.ts). */
  retry?: common.RetryConfiguration;
  /** Who calls (`ociIdentity(auth).principal`), named in configuration errors. */
  principal?: string;
  /** How long a not-authorized-or-not-found answer is retried (default: not at all). */
  authzRetry?: AuthzRetry;
}

/** Default page for `listJobs`, as the local store. */
const DEFAULT_LIST_LIMIT = 1000;
/** In-flight requests per fan-out (createPartitions, per-row reads of a listing). */
const CONCURRENCY = 8;

/** The `createdAt` LONG column: the record's own creation time, so rewriting the row never moves it. */
function createdAtMillis(job: JobRecord): number {
  const ms = Date.parse(job.createdAt);
  return Number.isFinite(ms) ? ms : 0;
}

/** Run `fn` over `items` with at most `limit` in flight; stops scheduling after the first failure. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * CheckpointStore over OCI NoSQL. Compare-and-set is the row etag (`if-match`);
 * all reads use ABSOLUTE consistency, since a stale read would make every CAS lose.
 *
 * @example
 * const client = createClient(NosqlClient, auth);
 * const store = new NosqlCheckpointStore({ client, compartmentId });
 * const { created, row } = await store.createJob(job);
 */
export class NosqlCheckpointStore implements CheckpointStore {
  private readonly rows: NosqlRows;
  private readonly jobsTable: string;
  private readonly partitionsTable: string;

  constructor(options: NosqlCheckpointStoreOptions) {
    if (!options?.client)
      throw new InvalidArgumentError("NosqlCheckpointStore: client is required");
    if (!options.compartmentId) {
      throw new InvalidArgumentError("NosqlCheckpointStore: compartmentId is required");
    }
    const pageSize = options.queryPageSize ?? 1000;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new InvalidArgumentError("NosqlCheckpointStore: queryPageSize must be an integer >= 1");
    }
    this.rows = new NosqlRows({
      client: options.client,
      compartmentId: options.compartmentId,
      pageSize,
      retry: options.retry ?? retryConfiguration(),
      principal: options.principal,
      authzRetry: options.authzRetry ?? NO_AUTHZ_RETRY,
    });
    this.jobsTable = options.jobsTable ?? "batch_infer_jobs";
    this.partitionsTable = options.partitionsTable ?? "batch_infer_partitions";
  }

  /** Insert if absent (IF_ABSENT); otherwise return the stored row with `created: false`. */
  async createJob(job: JobRecord): Promise<{ created: boolean; row: Versioned<JobRecord> }> {
    checkJobId(job?.jobId, "createJob");
    const what = `creating job ${job.jobId}`;
    const record = plain(job);
    const out = await this.rows.put(
      this.jobsTable,
      { jobId: job.jobId, createdAt: createdAtMillis(job), record },
      { ifAbsent: true },
      what,
    );
    if (out.version !== undefined)
      return { created: true, row: { value: record, version: out.version } };
    const existing =
      out.existing ?? (await this.rows.getRow(this.jobsTable, this.jobKey(job.jobId), what));
    if (!existing) {
      // No deletes in this port: a create that found a row which is then gone is a service fault.
      throw new StoreUnavailableError(
        `${what}: the row was reported present but is missing; retry`,
      );
    }
    const stored = this.rows.recordOf<JobRecord>(existing, what);
    // A retried create may have been applied by its lost first attempt: that row is ours.
    const created = out.retried && sameJson(stored.value, record);
    return { created, row: stored };
  }

  /** The job row (ABSOLUTE read), or undefined. */
  async getJob(jobId: string): Promise<Versioned<JobRecord> | undefined> {
    checkJobId(jobId, "getJob");
    const what = `reading job ${jobId}`;
    const row = await this.rows.getRow(this.jobsTable, this.jobKey(jobId), what);
    return row && this.rows.recordOf<JobRecord>(row, what);
  }

  /** Compare-and-set the job row; ConflictError on a stale version, NotFoundError if absent. */
  async updateJob(
    jobId: string,
    value: JobRecord,
    expectedVersion: string,
  ): Promise<Versioned<JobRecord>> {
    checkJobUpdate(jobId, value, "updateJob");
    const record = plain(value);
    return this.rows.compareAndSet<JobRecord>({
      table: this.jobsTable,
      row: { jobId, createdAt: createdAtMillis(value), record },
      record,
      expectedVersion,
      key: this.jobKey(jobId),
      label: `job ${jobId}`,
      details: { jobId },
    });
  }

  /**
   * Jobs, newest first (default at most 1000). Decision: no ORDER BY. Sorting in a
   * NoSQL query across shards needs an index on createdAt and the query
   * engine's sort support on the REST path (UNCONFIRMED), so the store scans
   * `jobId, createdAt` (small rows; the jobs table holds one row per upload),
   * keeps the newest `limit` while paging, then reads those rows for their etags.
   */
  async listJobs(options: { limit?: number } = {}): Promise<Versioned<JobRecord>[]> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new InvalidArgumentError("listJobs: limit must be an integer >= 1");
    }
    const what = "listing jobs";
    const newestFirst = (
      a: { jobId: string; createdAt: number },
      b: { jobId: string; createdAt: number },
    ): number => b.createdAt - a.createdAt || (a.jobId < b.jobId ? 1 : a.jobId > b.jobId ? -1 : 0);
    let top: Array<{ jobId: string; createdAt: number }> = [];
    for await (const item of this.rows.query(
      `SELECT j.jobId, j.createdAt FROM ${this.jobsTable} j`,
      undefined,
      what,
    )) {
      if (typeof item.jobId !== "string") continue;
      top.push({ jobId: item.jobId, createdAt: Number(item.createdAt) || 0 });
      // Trim in batches so memory stays O(limit) however many jobs the table holds.
      if (top.length >= 2 * limit) top = top.sort(newestFirst).slice(0, limit);
    }
    top = top.sort(newestFirst).slice(0, limit);
    const rows = await mapBounded(top, CONCURRENCY, async ({ jobId }) => this.getJob(jobId));
    return rows.filter((r): r is Versioned<JobRecord> => r !== undefined);
  }

  /** Create the partitions that don't exist yet (IF_ABSENT each, {@link CONCURRENCY} at a time). */
  async createPartitions(partitions: PartitionRecord[]): Promise<void> {
    for (const p of partitions) checkPartition(p, "createPartitions");
    // An IF_ABSENT that finds the row (ours from a lost attempt, or anyone's) leaves it as it is.
    await mapBounded(partitions, CONCURRENCY, (p) =>
      this.rows.put(
        this.partitionsTable,
        { jobId: p.jobId, idx: p.index, record: plain(p) },
        { ifAbsent: true, returnRow: false },
        `creating partition ${p.index} of job ${p.jobId}`,
      ),
    );
  }

  /** The partition row (ABSOLUTE read), or undefined. */
  async getPartition(
    jobId: string,
    index: number,
  ): Promise<Versioned<PartitionRecord> | undefined> {
    checkJobId(jobId, "getPartition");
    if (!Number.isSafeInteger(index) || index < 0) return undefined;
    const what = `reading partition ${index} of job ${jobId}`;
    const row = await this.rows.getRow(this.partitionsTable, this.partitionKey(jobId, index), what);
    return row && this.rows.recordOf<PartitionRecord>(row, what);
  }

  /** Compare-and-set a partition row (keyed by value.jobId and value.index). */
  async updatePartition(
    value: PartitionRecord,
    expectedVersion: string,
  ): Promise<Versioned<PartitionRecord>> {
    checkPartition(value, "updatePartition");
    const { jobId, index } = value;
    const record = plain(value);
    return this.rows.compareAndSet<PartitionRecord>({
      table: this.partitionsTable,
      row: { jobId, idx: index, record },
      record,
      expectedVersion,
      key: this.partitionKey(jobId, index),
      label: `partition ${index} of job ${jobId}`,
      details: { jobId, index },
    });
  }

  /**
   * All partitions of a job, by index. One shard-local query lists the indexes
   * (`SELECT p.idx`, key-only); each row is then read with getRow, because a
   * query result carries no etag and a version must be the one belonging to the
   * value returned with it. (`row_version()` in the query could save those reads,
   * but whether it matches the REST etag is UNCONFIRMED.)
   */
  async listPartitions(jobId: string): Promise<Versioned<PartitionRecord>[]> {
    checkJobId(jobId, "listPartitions");
    const what = `listing partitions of job ${jobId}`;
    const indexes: number[] = [];
    for await (const item of this.rows.query(
      `DECLARE $jobId STRING; SELECT p.idx FROM ${this.partitionsTable} p WHERE p.jobId = $jobId`,
      { $jobId: jobId },
      what,
    )) {
      const idx = Number(item.idx);
      if (Number.isSafeInteger(idx)) indexes.push(idx);
    }
    indexes.sort((a, b) => a - b);
    const rows = await mapBounded(indexes, CONCURRENCY, (i) => this.getPartition(jobId, i));
    return rows.filter((r): r is Versioned<PartitionRecord> => r !== undefined);
  }

  async readPartitions(jobId: string): Promise<PartitionRecord[]> {
    checkJobId(jobId, "readPartitions");
    const what = `reading partitions of job ${jobId}`;
    const rows: PartitionRecord[] = [];
    for await (const item of this.rows.query(
      `DECLARE $jobId STRING; SELECT p.idx, p.record FROM ${this.partitionsTable} p WHERE p.jobId = $jobId`,
      { $jobId: jobId },
      what,
    )) {
      const record = item.record;
      if (!record || typeof record !== "object") {
        throw new StoreUnavailableError(`${what}: a row has no record column`, {
          retryable: false,
        });
      }
      rows.push(record as unknown as PartitionRecord);
    }
    return rows.sort((a, b) => a.index - b.index);
  }

  // ---- internals ------------------------------------------------------------------

  private jobKey(jobId: string): string[] {
    return [`jobId:${queryValue(jobId)}`];
  }

  private partitionKey(jobId: string, index: number): string[] {
    return [`jobId:${queryValue(jobId)}`, `idx:${index}`];
  }
}
