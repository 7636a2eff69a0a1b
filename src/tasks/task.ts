/**
 * The worker's seam, second half: what is done to records.
 *
 * Terminology
 * - **record source** (src/sources/): where records come from — byte-range lines of
 *   CSV/JSONL, the objects listed under a prefix, Parquet row groups. It yields
 *   {@link RecordBlock}s; a partition's position is neutral (a byte offset, a
 *   manifest line, a row index).
 * - **task**: what is done to the records — tabular scoring, text embedding, image
 *   classification. Chosen by the model descriptor's `task` (absent = tabular). A
 *   task turns records into batches of named, typed input tensors (plus bad records
 *   with a reason), and model outputs into output rows.
 * - **window**: a run of accepted records whose output rows are written together, in
 *   input order. A task may reorder records inside a window (text sorts by length so
 *   padding stays small); the rows still come out in input order.
 *
 * The worker loop (claim, heartbeat, checkpoint, hand-back, finalize) is one piece of
 * code for every task: it feeds records to a {@link TaskEncoder}, runs each
 * {@link EncodedBatch} through the scorer, and hands the outputs to the
 * {@link TaskDecoder}, which writes rows into a {@link RowSink}.
 */

import type { Feeds, Outputs } from "../model/tensors.ts";

// The tensor vocabulary lives beside the session (src/model/tensors.ts); the seam speaks it.
export type { Feeds, Outputs, Tensor, TensorData, TensorType } from "../model/tensors.ts";

/** One onnxruntime call's worth of input. */
export interface EncodedBatch {
  feeds: Feeds;
  /** Rows in the batch (records, or chunks of records for chunked text). */
  rows: number;
}

/** A run of accepted records, ready to score; `meta` is the task's own bookkeeping. */
export interface Window<M = unknown> {
  batches: EncodedBatch[];
  /** Accepted records in the window (output rows may be more, e.g. text chunks). */
  records: number;
  meta: M;
}

/**
 * Per-attempt state of a task: turns records into windows. One per partition
 * attempt, never shared.
 */
export interface TaskEncoder<M = unknown> {
  /**
   * Optional asynchronous work on a whole block before its records are added:
   * decoding images (sharp runs on libuv's pool), native tokenization. The worker
   * runs it through {@link prepareAhead} (src/tasks/prepare-ahead.ts), so later blocks
   * are prepared while earlier windows are scored. Contract: `add(block, i)` is called
   * only after `prepare(block)` resolved; `prepare` may run for several later blocks
   * at once and must not touch state that `add` or `take` use. A rejection fails the
   * attempt (per-record problems are for `add` to return). Tasks that parse
   * synchronously (tabular) leave it out.
   */
  prepare?(block: import("../sources/record-source.ts").RecordBlock): Promise<void>;
  /** Take record `i` of `block`: undefined when accepted, else why it is bad. */
  add(block: import("../sources/record-source.ts").RecordBlock, i: number): string | undefined;
  /**
   * Optional: the key columns of record `i` (e.g. `{ id }`) when it has them, for the
   * errors output of a bad record; undefined when they can't be read.
   */
  keyOf?(
    block: import("../sources/record-source.ts").RecordBlock,
    i: number,
  ): Record<string, string> | undefined;
  /** Windows complete now; `flush` also closes the open one (checkpoint, end of partition). */
  take(flush: boolean): Window<M>[];
  /**
   * Optional: `window` was scored and its rows written, so its buffers may be filled
   * again (tabular reuses its feature buffers). Not called for a window whose attempt failed.
   */
  recycle?(window: Window<M>): void;
}

/** Writes output rows, column by column in the job's output column order. */
export interface RowSink {
  startRow(): void;
  /** A key column: bytes of the input (valid UTF-8) or a string. */
  keyBytes(buf: Buffer, start: number, end: number): void;
  string(value: string | null): void;
  /** A float32 scalar (printed with 9 significant digits: round-trips exactly); non-finite is null. */
  float32(value: number): void;
  /** A float64 scalar (shortest round-trip form); non-finite is null. */
  float64(value: number): void;
  /** An integer scalar. */
  int(value: number): void;
  /** A vector column (embedding, logits). */
  float32s(values: Float32Array): void;
  /** A list of strings (top-k labels). */
  strings(values: string[]): void;
  endRow(): void;
}

/** Turns a scored window into output rows. */
export interface TaskDecoder<M = unknown> {
  /**
   * Optional: shrink batch `batch`'s outputs as soon as they arrive, before the rest of
   * the window is scored; what it returns is what `write` gets as `outputs[batch]`.
   * Text pools [rows, seq, dim] token vectors into [rows, dim] here, so a window never
   * holds every batch's per-token outputs (a 64k-token window of a 384-wide model would
   * be 100 MB); tabular and images need not implement it.
   */
  reduce?(window: Window<M>, batch: number, outputs: Outputs): Outputs;
  /** Write the window's rows in input order; `outputs[b]` are batch b's model outputs (reduced, when `reduce` exists). */
  write(window: Window<M>, outputs: Outputs[], sink: RowSink): void;
}

/** One output column as the job records it. */
export interface OutputColumn {
  name: string;
  type: import("../core/records.ts").OutputColumnType;
}

/**
 * A job's task, ready to run: built once per job and model in a worker (the session
 * is the expensive part), then asked for a fresh encoder per partition attempt.
 */
export interface TaskRuntime<M = unknown> {
  /** A fresh encoder for one partition attempt. */
  encoder(): TaskEncoder<M>;
  decoder: TaskDecoder<M>;
  /** The output row's columns and their types, in row order (a Parquet part's schema). */
  outputColumns: OutputColumn[];
  /** Runs the batches. */
  session: import("../model/session.ts").ModelSession;
  /** Best-effort key values of a bad record, for the errors output (null when none can be read). */
  keysOf(
    block: import("../sources/record-source.ts").RecordBlock,
    i: number,
  ): Record<string, string> | null;
  close(): Promise<void>;
}
