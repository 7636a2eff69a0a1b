/**
 * What a source kind implements (src/sources/registry.ts lists the kinds): planning a
 * job's partitions at split time, and opening one partition's records in a worker.
 */
import type { InputFormat, InputIdentity, JobRecord, JobSpec } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import type { ReadStats } from "../records/line-reader.ts";
import type { RecordSource } from "./record-source.ts";

/** A job's input as the splitter planned it. */
export interface PlannedInput {
  /** What the job records as its input: the one object whose etag must hold still while it runs. */
  input: InputIdentity;
  /** What the job id derives from (a prefix: its listing's hash, not the manifest's etag). */
  identity: { bucket: string; object: string; etag: string };
  /** Partition ranges in the kind's positions, in input order. */
  ranges: { start: number; end: number }[];
  /** Undo what planning wrote (a manifest), when no job takes it over. */
  discard(): Promise<void>;
}

/** Columns a task reads from a columnar input (Parquet). */
export interface ColumnNeeds {
  columns: string[];
  /** Those read as numbers only (NaN = missing): they may take a faster, typed path. */
  numeric: string[];
  /** Text columns only ever copied to the output (keys): they may stay UTF-8 bytes. */
  text?: string[];
}

/** Reader limits a worker passes to every source. */
export interface SourceOptions {
  /** Longer input lines are bad records. */
  maxLineBytes: number;
  /** Filled by a byte-range source: where the read began and ended (the CSV chaining check). */
  readStats?: ReadStats;
}

/** One kind of record source. */
export interface SourceModule {
  formats: readonly InputFormat[];
  /**
   * Read what planning needs (a header, a footer, a listing) and cut partitions.
   * `needs`: what the task reads from a columnar input, and which of those it reads
   * as plain numbers. Throws when the input can't be read or has no records, saying
   * what to fix.
   */
  plan(store: ObjectStore, spec: JobSpec, needs: ColumnNeeds): Promise<PlannedInput>;
  /** The records of one partition of a job. */
  open(
    store: ObjectStore,
    job: JobRecord,
    partition: { start: number; end: number; startIsRecordStart?: boolean },
    options: SourceOptions,
  ): RecordSource;
}
