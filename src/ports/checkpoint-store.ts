import type { JobRecord, PartitionRecord } from "../core/records.ts";

/** A row and the version to pass back for compare-and-set. */
export interface Versioned<T> {
  value: T;
  /** Opaque: a counter locally, an etag on OCI NoSQL. */
  version: string;
}

/**
 * Port: job and partition rows with compare-and-set (OCI NoSQL; SQLite locally).
 * Every update names the version it read; a stale version throws ConflictError.
 */
export interface CheckpointStore {
  /** Create the job row if absent; `created` false means it already existed (returned as stored). */
  createJob(job: JobRecord): Promise<{ created: boolean; row: Versioned<JobRecord> }>;
  getJob(jobId: string): Promise<Versioned<JobRecord> | undefined>;
  /** Replace the job row if its version is still `expectedVersion`; else ConflictError. */
  updateJob(
    jobId: string,
    value: JobRecord,
    expectedVersion: string,
  ): Promise<Versioned<JobRecord>>;
  /** Jobs, newest first. */
  listJobs(options?: { limit?: number }): Promise<Versioned<JobRecord>[]>;
  /** Create partition rows that don't exist yet (existing ones are left as they are). */
  createPartitions(partitions: PartitionRecord[]): Promise<void>;
  getPartition(jobId: string, index: number): Promise<Versioned<PartitionRecord> | undefined>;
  /** Replace the partition row if its version is still `expectedVersion`; else ConflictError. */
  updatePartition(
    value: PartitionRecord,
    expectedVersion: string,
  ): Promise<Versioned<PartitionRecord>>;
  /** All partitions of a job, by index. */
  listPartitions(jobId: string): Promise<Versioned<PartitionRecord>[]>;
  /**
   * All partitions of a job, by index, without versions: a consistent-enough
   * snapshot for progress and completion checks, which run on every partition
   * completion. One query on NoSQL, where `listPartitions` must also read each
   * row for its etag.
   */
  readPartitions(jobId: string): Promise<PartitionRecord[]>;
}
