/**
 * Terminology
 * - **job**: one scoring run of one input object through one model, with one spec.
 *   Its id is derived from the input's identity (bucket, object, etag), the model's
 *   content hash and the spec, so the same upload delivered twice is the same job.
 * - **partition**: a byte range of the input. It owns the records that *start* inside
 *   its range; a reader skips to the first record start after its offset and reads
 *   past its end to finish its last record.
 * - **chunk / part**: every `checkpointEvery` records a worker writes that chunk's
 *   results as one part object, then commits the checkpoint that lists it.
 * - **epoch**: bumped each time a worker claims a partition; part names carry it, and
 *   a worker whose epoch is stale can't commit (fencing), so its writes are never merged.
 * - **checkpoint**: the partition row: next byte offset, counts, committed parts.
 */

/** Value type of an output column (see src/tasks/task.ts OutputColumn). */
export type OutputColumnType = "string" | "float32" | "float64" | "int" | "float32[]" | "string[]";

/**
 * What a job reads: lines of a CSV or JSON Lines object, the row groups of a Parquet
 * object, or every object under a prefix (one record each: images, documents).
 */
export type InputFormat = "csv" | "jsonl" | "parquet" | "objects";
/**
 * Field delimiters a CSV input may use (one character; the job spec schema lists
 * the same): comma, semicolon, tab, pipe, colon, space, caret, tilde, and the
 * control characters Hive (\u0001) and others (\u001f, unit separator) export with.
 */
export const CSV_DELIMITERS = [
  ",",
  ";",
  "\t",
  "|",
  ":",
  " ",
  "^",
  "~",
  "\u0001",
  "\u001f",
] as const;
/** One of {@link CSV_DELIMITERS}. */
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

/** Output formats the merger writes. */
export type OutputFormat = "jsonl" | "csv" | "parquet";

/** Where a job's outputs go. */
export interface OutputLocation {
  bucket: string;
  /** Folder-like prefix; the job writes `<prefix>/<jobId>/...`. */
  prefix: string;
  format: OutputFormat;
}

/** Bad-record budget: the job fails once either limit is crossed. */
export interface ErrorThreshold {
  /** Most bad records allowed (absent = no count limit). */
  maxCount?: number;
  /** Most bad records allowed as a fraction of records read, 0..1 (absent = no limit). */
  maxFraction?: number;
}

/** A job spec after defaults are applied (see src/core/job-spec.ts for the schema). */
export interface JobSpec {
  /**
   * One object (`object`), or every object under `prefix` (format "objects").
   * `delimiter`: a CSV's field delimiter when it is not a comma (absent = ",").
   */
  input: {
    bucket: string;
    object?: string;
    prefix?: string;
    format: InputFormat;
    delimiter?: CsvDelimiter;
  };
  output: OutputLocation;
  /** Model descriptor location: a local path (local) or bucket object (OCI). */
  model: { descriptor: string };
  /** Target partition size in bytes. */
  partitionBytes: number;
  /** Records per checkpoint (and per part object). */
  checkpointEvery: number;
  /** Most records per partition (objects under a prefix, Parquet rows); absent = the input kind's default. */
  partitionRecords?: number;
  /** Records per onnxruntime call. */
  batchSize: number;
  errorThreshold: ErrorThreshold;
  /** Input columns copied into every output row; default: the model descriptor's. */
  keyColumns?: string[];
  /** Deliveries of a partition before it is marked failed and dead-lettered. */
  maxAttempts: number;
  /** Queue visibility (lease) per partition; heartbeats extend it. */
  visibilitySeconds: number;
  /** Longest record in bytes (default 1 MiB); job-wide, since it decides where an unterminated CSV record ends. */
  maxRecordBytes?: number;
  /** Distinguishes deliberate reruns of the same input; part of the job id. */
  runTag?: string;
}

/** Lifecycle of a job. */
export type JobState =
  | "splitting"
  | "running"
  | "merging"
  | "completed"
  | "completed_with_errors"
  | "failed";

/** Terminal job states. */
export const TERMINAL_JOB_STATES: readonly JobState[] = [
  "completed",
  "completed_with_errors",
  "failed",
];

/** Lifecycle of a partition. */
export type PartitionState = "pending" | "running" | "done" | "failed";

/** One committed part object of a partition. */
export interface PartRef {
  seq: number;
  epoch: number;
  /** Byte offsets of the chunk in the input: first record start, next record start. */
  startOffset: number;
  endOffset: number;
  records: number;
  errors: number;
  /** Input lines owned by this chunk (records, bad records and blank lines). */
  lines: number;
  /** Output part object: size and sha256 of its bytes. */
  bytes: number;
  sha256: string;
  /** Errors part object size (0 = none written). */
  errorBytes: number;
  /**
   * For output formats whose parts are merged by copying one section of each (Parquet:
   * its column chunks; the footer is rewritten), that section's size and sha256;
   * absent = the whole part is copied.
   */
  section?: { bytes: number; sha256: string };
  /** When the chunk was committed (ISO time): throughput over time in the job report. */
  committedAt?: string;
  /** Worker that committed it. */
  worker?: string;
}

/** One claim of a partition by a worker, for status and the job report. */
export interface Attempt {
  epoch: number;
  worker: string;
  startedAt: string;
  endedAt?: string;
  outcome?: "done" | "failed" | "handed_back" | "lost" | "error";
  detail?: string;
  /** Offset the attempt resumed from. */
  fromOffset: number;
}

/** The partition row: its range and its checkpoint. */
export interface PartitionRecord {
  jobId: string;
  index: number;
  /** Byte range [start, end) in the input whose record starts it owns. */
  start: number;
  end: number;
  state: PartitionState;
  /** Fencing token, bumped on every claim. */
  epoch: number;
  owner?: string;
  /** Epoch ms after which another worker may take the partition over. */
  leaseUntil?: number;
  /** Next record start to read (the checkpoint). */
  offset: number;
  /**
   * The first record start this partition's read took (speculated at `start` for CSV
   * unless `startIsRecordStart`), and the offset after its last record once done. The
   * finalize step chains them (src/records/partition-chain.ts).
   */
  firstRecordStart?: number;
  nextRecordStart?: number;
  /** Set when the chaining check moved `offset` to a known record start: read it as one. */
  startIsRecordStart?: boolean;
  records: number;
  errors: number;
  lines: number;
  parts: PartRef[];
  attempts: Attempt[];
  lastError?: string;
  /** Attempts with an epoch at or below this were before a `rerun --failed` and don't count. */
  retryFromEpoch?: number;
  updatedAt: string;
}

/** What the model is, as recorded in the job and manifest. */
export interface ModelIdentity {
  name: string;
  version: string;
  descriptor: string;
  /** sha256 of the ONNX file. */
  sha256: string;
  /**
   * sha256 of the parsed descriptor (canonical JSON): features, imputation and
   * outputs change the scores as much as the weights do. Absent on jobs created
   * before it was recorded.
   */
  descriptorSha256?: string;
  /** Length of the vectors an embedding model writes (text embedding). */
  dimension?: number;
}

/**
 * Identity of the input object the job was created from: the object whose etag must
 * not change while the job runs. For an object list that is the manifest the
 * splitter wrote (`objects` says what was listed); positions are byte offsets (lines,
 * manifest lines) or row indexes (Parquet).
 */
export interface InputIdentity {
  bucket: string;
  object: string;
  etag: string;
  size: number;
  format: InputFormat;
  /** Header columns (CSV), the columns read (Parquet), or empty (JSONL, objects). */
  columns: string[];
  /** Byte offset where records start (after the CSV header). */
  dataStart: number;
  /**
   * CSV read as RFC 4180 records (quoted newlines), with this record limit for every
   * reader of the object. Absent on jobs created before: those read lines.
   */
  csvRecords?: { maxRecordBytes: number };
  /**
   * CSV: the field delimiter every reader of the job uses (header, records, fields,
   * verify). Absent on jobs created before it was recorded: ",".
   */
  delimiter?: CsvDelimiter;
  /** Physical lines of the CSV header (a quoted name may span lines); absent = 1. */
  headerLines?: number;
  /** Parquet: rows in the file, and the columns read (flat), with their types. */
  parquet?: {
    rows: number;
    columns: {
      name: string;
      type?: string;
      logical?: string;
      nullable: boolean;
      nested: boolean;
    }[];
    /** Columns read as plain numbers (number features), NaN for null. */
    numeric?: string[];
    /** Text columns read as UTF-8 bytes (keys), never decoded to strings. */
    text?: string[];
  };
  /** Object lists: where the listed objects are, how many, their bytes, and the listing's sha256. */
  objects?: { bucket: string; prefix: string; count: number; bytes: number; sha256: string };
}

/** Counts and locations once a job has finished. */
export interface JobResult {
  records: number;
  errors: number;
  failedPartitions: number[];
  output: { bucket: string; object: string; bytes: number; sha256: string };
  /** `sha256` absent on jobs finished before it was recorded. */
  errorsOutput: { bucket: string; object: string; bytes: number; sha256?: string };
  manifest: { bucket: string; object: string };
  /** The HTML job report (absent for jobs finished before reports existed). */
  report?: { bucket: string; object: string };
  durationMs: number;
}

/** Which partitions finished (done or failed): a bitmap by index (base64), how many, their bad records. */
export interface CompletionTally {
  bitmap: string;
  count: number;
  errors: number;
}

/** The job row. */
export interface JobRecord {
  jobId: string;
  state: JobState;
  spec: JobSpec;
  input: InputIdentity;
  model: ModelIdentity;
  /** Columns of an output row (key columns, model outputs, label), fixed when the job is created. */
  outputColumns: string[];
  /**
   * Their types as known when the job was created (absent on older jobs). Typed
   * outputs (Parquet) take each part's schema from the model as it runs; these are
   * for an output with no part at all.
   */
  outputTypes?: OutputColumnType[];
  /** The task the model does (absent = tabular, on jobs created before tasks existed). */
  task?: string;
  /** The key columns at the front of each output row (["_offset"] when the input has none). */
  keyNames: string[];
  partitionCount: number;
  createdAt: string;
  updatedAt: string;
  /** Incremented by `rerun --failed`. */
  runAttempt: number;
  /** Why the job failed (state failed), in words a user can act on. */
  error?: string;
  result?: JobResult;
  /** Outbox flag: the completion event has been published. */
  completionPublished?: boolean;
  /** Partitions finished so far (src/pipeline/completion-tally.ts); absent until the first. */
  tally?: CompletionTally;
  /**
   * Set on the embedding job of a corpus refresh (src/refresh/): the corpus head it
   * belongs to and the generation it makes. Its merge finishes the refresh.
   */
  refresh?: { bucket: string; head: string; generation: number };
}
