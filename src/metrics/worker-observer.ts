/**
 * What a worker tells whoever watches it (Prometheus metrics, tests). The
 * worker loop calls these at the moments they name; each call is cheap and
 * synchronous, and an observer never throws into the loop.
 */

/** How a partition attempt ended (the `outcome` of an attempt in the partition row). */
export type AttemptOutcome = "done" | "failed" | "handed_back" | "lost" | "error";

/** Hooks a partition worker calls; pass `noopObserver` when nobody watches. */
export interface WorkerObserver {
  /**
   * The worker waited `ms` for the queue to hand it a task, from being free
   * (start, or the previous task released) to a task in hand.
   */
  queueWait(ms: number): void;
  /** A task is in hand: a partition of `jobId`, or the job's merge when `partition` is undefined. */
  claimed(jobId: string, partition: number | undefined): void;
  /** The task in hand was released (finished, handed back, lost or failed). */
  released(): void;
  /** One onnxruntime batch of `rows` records ran in `ms` (scoring only, not parsing). */
  batchScored(rows: number, ms: number): void;
  /**
   * A checkpoint committed a chunk of `records` scored and `badRecords` bad
   * records; `ms` is the commit's latency (part writes + the row's CAS), when measured.
   */
  checkpointCommitted(chunk: { records: number; badRecords: number; ms?: number }): void;
  /** A partition attempt ended. */
  attemptEnded(outcome: AttemptOutcome): void;
  /** The onnxruntime execution provider the session actually runs on (after any fallback). */
  executionProvider(provider: string): void;
}

/** An observer that records nothing. */
export const noopObserver: WorkerObserver = {
  queueWait() {},
  claimed() {},
  released() {},
  batchScored() {},
  checkpointCommitted() {},
  attemptEnded() {},
  executionProvider() {},
};
