import { ConflictError, InvalidArgumentError, NotFoundError } from "../../core/errors.ts";
import type { JobRecord, PartitionRecord } from "../../core/records.ts";
import type { CheckpointStore, Versioned } from "../../ports/checkpoint-store.ts";
import { checkJobId, checkJobUpdate, checkPartition } from "../port-contract.ts";
import { guarded, LazyDatabase } from "./sqlite.ts";

/** Options for {@link SqliteCheckpointStore}. */
export interface SqliteCheckpointStoreOptions {
  /** SQLite file; may be shared with other adapters and processes. */
  path: string;
  /** Clock (epoch ms) stamped on new job rows for `listJobs` order. Default Date.now. */
  now?: () => number;
}

interface Row {
  value: string;
  version: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS partitions (
  job_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
`;

/** Default page for `listJobs`. */
const DEFAULT_LIST_LIMIT = 1000;

function versioned<T>(row: Row): Versioned<T> {
  return { value: JSON.parse(row.value) as T, version: String(row.version) };
}

/** Versions we hand out are positive integers; anything else can't match a row. */
function parseVersion(version: string): number | undefined {
  if (typeof version !== "string" || !/^[1-9]\d{0,15}$/.test(version)) return undefined;
  const n = Number(version);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * CheckpointStore over SQLite. Versions are per-row counters; an update is a single
 * `UPDATE ... WHERE version = ?`, which SQLite's write lock makes an atomic
 * compare-and-set across processes.
 */
export class SqliteCheckpointStore implements CheckpointStore {
  private readonly store: LazyDatabase;
  private readonly now: () => number;

  constructor(options: SqliteCheckpointStoreOptions) {
    if (!options.path) throw new InvalidArgumentError("SqliteCheckpointStore: path is required");
    this.store = new LazyDatabase(options.path, SCHEMA);
    this.now = options.now ?? Date.now;
  }

  /** Insert if absent; otherwise return the stored row with `created: false`. */
  async createJob(job: JobRecord): Promise<{ created: boolean; row: Versioned<JobRecord> }> {
    checkJobId(job?.jobId, "createJob");
    const text = JSON.stringify(job);
    return this.store.immediate(`creating job ${job.jobId}`, () => {
      const inserted = this.store
        .sql(
          `INSERT INTO jobs (job_id, value, version, created_at) VALUES (?, ?, 1, ?)
           ON CONFLICT (job_id) DO NOTHING`,
        )
        .run(job.jobId, text, this.now());
      const row = this.store
        .sql<Row>("SELECT value, version FROM jobs WHERE job_id = ?")
        .get(job.jobId);
      if (!row) throw new Error(`job ${job.jobId} vanished inside its creating transaction`);
      return { created: inserted.changes === 1, row: versioned<JobRecord>(row) };
    });
  }

  /** The job row, or undefined. */
  async getJob(jobId: string): Promise<Versioned<JobRecord> | undefined> {
    checkJobId(jobId, "getJob");
    const row = guarded(`reading job ${jobId}`, () =>
      this.store.sql<Row>("SELECT value, version FROM jobs WHERE job_id = ?").get(jobId),
    );
    return row && versioned<JobRecord>(row);
  }

  /** Compare-and-set the job row; ConflictError on a stale version, NotFoundError if absent. */
  async updateJob(
    jobId: string,
    value: JobRecord,
    expectedVersion: string,
  ): Promise<Versioned<JobRecord>> {
    checkJobUpdate(jobId, value, "updateJob");
    const text = JSON.stringify(value);
    const expected = parseVersion(expectedVersion);
    const changes =
      expected === undefined
        ? 0
        : guarded(
            `updating job ${jobId}`,
            () =>
              this.store
                .sql(
                  "UPDATE jobs SET value = ?, version = version + 1 WHERE job_id = ? AND version = ?",
                )
                .run(text, jobId, expected).changes,
          );
    if (changes === 1 && expected !== undefined) {
      return { value: JSON.parse(text) as JobRecord, version: String(expected + 1) };
    }
    const current = await this.getJob(jobId);
    if (!current) throw new NotFoundError(`job ${jobId} does not exist`, { details: { jobId } });
    throw new ConflictError(
      `job ${jobId} changed: version is ${current.version}, not ${expectedVersion}; re-read and retry`,
      { details: { jobId, expectedVersion, currentVersion: current.version } },
    );
  }

  /** Jobs, newest first (default at most 1000). */
  async listJobs(options: { limit?: number } = {}): Promise<Versioned<JobRecord>[]> {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new InvalidArgumentError("listJobs: limit must be an integer >= 1");
    }
    return guarded("listing jobs", () =>
      this.store
        .sql<Row>("SELECT value, version FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?")
        .all(limit)
        .map((row) => versioned<JobRecord>(row)),
    );
  }

  /** Insert the partitions that don't exist yet, in one transaction. */
  async createPartitions(partitions: PartitionRecord[]): Promise<void> {
    for (const p of partitions) checkPartition(p, "createPartitions");
    if (partitions.length === 0) return;
    const texts = partitions.map((p) => JSON.stringify(p));
    this.store.immediate("creating partitions", () => {
      const insert = this.store.sql(
        "INSERT OR IGNORE INTO partitions (job_id, idx, value, version) VALUES (?, ?, ?, 1)",
      );
      partitions.forEach((p, i) => {
        insert.run(p.jobId, p.index, texts[i]);
      });
    });
  }

  /** The partition row, or undefined. */
  async getPartition(
    jobId: string,
    index: number,
  ): Promise<Versioned<PartitionRecord> | undefined> {
    checkJobId(jobId, "getPartition");
    const row = guarded(`reading partition ${jobId}#${index}`, () =>
      this.store
        .sql<Row>("SELECT value, version FROM partitions WHERE job_id = ? AND idx = ?")
        .get(jobId, index),
    );
    return row && versioned<PartitionRecord>(row);
  }

  /** Compare-and-set a partition row (keyed by value.jobId and value.index). */
  async updatePartition(
    value: PartitionRecord,
    expectedVersion: string,
  ): Promise<Versioned<PartitionRecord>> {
    checkPartition(value, "updatePartition");
    const { jobId, index } = value;
    const text = JSON.stringify(value);
    const expected = parseVersion(expectedVersion);
    const changes =
      expected === undefined
        ? 0
        : guarded(
            `updating partition ${jobId}#${index}`,
            () =>
              this.store
                .sql(
                  `UPDATE partitions SET value = ?, version = version + 1
                   WHERE job_id = ? AND idx = ? AND version = ?`,
                )
                .run(text, jobId, index, expected).changes,
          );
    if (changes === 1 && expected !== undefined) {
      return { value: JSON.parse(text) as PartitionRecord, version: String(expected + 1) };
    }
    const current = await this.getPartition(jobId, index);
    if (!current) {
      throw new NotFoundError(`partition ${index} of job ${jobId} does not exist`, {
        details: { jobId, index },
      });
    }
    throw new ConflictError(
      `partition ${index} of job ${jobId} changed: version is ${current.version}, not ${expectedVersion}; re-read and retry`,
      { details: { jobId, index, expectedVersion, currentVersion: current.version } },
    );
  }

  /** All partitions of a job, by index. */
  async readPartitions(jobId: string): Promise<PartitionRecord[]> {
    return (await this.listPartitions(jobId)).map((r) => r.value);
  }

  async listPartitions(jobId: string): Promise<Versioned<PartitionRecord>[]> {
    checkJobId(jobId, "listPartitions");
    return guarded(`listing partitions of ${jobId}`, () =>
      this.store
        .sql<Row>("SELECT value, version FROM partitions WHERE job_id = ? ORDER BY idx")
        .all(jobId)
        .map((row) => versioned<PartitionRecord>(row)),
    );
  }

  /** Close the connection (reopened on next use). */
  close(): void {
    this.store.close();
  }
}

/** Factory for a SQLite-backed checkpoint store at `path`. */
export function createSqliteCheckpointStore(path: string): SqliteCheckpointStore {
  return new SqliteCheckpointStore({ path });
}
