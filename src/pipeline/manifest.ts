/** The manifest a job's merge writes next to its output (read by verify and the report). */
import type { ErrorCode } from "../core/errors.ts";
import type { JobRecord, JobState, PartitionRecord } from "../core/records.ts";

/** The manifest written next to a job's output: enough to verify it without the job store. */
export interface Manifest {
  jobId: string;
  status: JobState;
  message?: string;
  /** Why a failed job failed, as a stable code (ERROR_THRESHOLD_EXCEEDED). */
  errorCode?: ErrorCode;
  runAttempt: number;
  input: JobRecord["input"];
  model: JobRecord["model"];
  spec: JobRecord["spec"];
  columns: string[];
  /** What the outputs hold: records scored and bad records of the partitions that finished. */
  counts: {
    records: number;
    errors: number;
    lines: number;
    partitions: number;
    failedPartitions: number[];
  };
  /**
   * Input ranges in neither output: the failed partitions (`rerun JOB --failed`
   * resumes them from their checkpoints). `checkpointedRecords` were scored before
   * the partition failed and are kept for the rerun, not published.
   */
  unscored?: {
    partition: number;
    start: number;
    end: number;
    checkpointedRecords: number;
    reason?: string;
  }[];
  output?: { object: string; bytes: number; sha256: string };
  errorsOutput: { object: string; bytes: number; sha256: string };
  timings: { createdAt: string; finishedAt: string; durationMs: number };
  partitions: {
    index: number;
    start: number;
    end: number;
    state: PartitionRecord["state"];
    records: number;
    errors: number;
    lines: number;
    attempts: PartitionRecord["attempts"];
    lastError?: string;
    /** Set when the partition failed and `rerun --failed` put it back: attempts up to this epoch were before. */
    retryFromEpoch?: number;
    parts: {
      seq: number;
      epoch: number;
      records: number;
      bytes: number;
      sha256: string;
      committedAt?: string;
      worker?: string;
    }[];
  }[];
}
