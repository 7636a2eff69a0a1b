/**
 * A worker's Prometheus metrics: a WorkerObserver that fills a prom-client
 * registry of its own (never the global one, so tests and several workers in
 * one process don't collide).
 */
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
  type RegistryContentType,
} from "prom-client";
import type { AttemptOutcome, WorkerObserver } from "./worker-observer.ts";

/** Prefix of every metric the pipeline defines. */
export const METRIC_PREFIX = "batch_infer_";

/** Who this worker is, as constant labels of `batch_infer_worker_info`. */
export interface WorkerIdentity {
  workerId: string;
  backend: string;
  /** The configured execution providers, in order (e.g. "cuda,cpu"). */
  providers: string;
}

const OUTCOMES: AttemptOutcome[] = ["done", "failed", "handed_back", "lost", "error"];

/** Prometheus metrics of one worker process, fed through the WorkerObserver hooks. */
export class WorkerMetrics implements WorkerObserver {
  readonly registry: Registry<RegistryContentType>;
  private readonly recordsScored: Counter;
  private readonly badRecordsTotal: Counter;
  private readonly checkpoints: Counter;
  private readonly batchSeconds: Histogram;
  private readonly batchRows: Histogram;
  private readonly queueWaitSeconds: Histogram;
  private readonly checkpointSeconds: Histogram;
  private readonly attempts: Counter<"outcome">;
  private readonly provider: Gauge<"provider">;
  private readonly inHand: Gauge<"job_id" | "partition">;
  private readonly busy: Gauge;

  constructor(identity: WorkerIdentity, options: { processMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    new Gauge({
      name: `${p}worker_info`,
      help: "Constant 1, labelled with the worker's id, backend and configured execution providers.",
      labelNames: ["worker", "backend", "providers"],
      registers,
      // Pool aggregation must keep one series per worker, not add them up.
      aggregator: "first",
    }).set(
      { worker: identity.workerId, backend: identity.backend, providers: identity.providers },
      1,
    );
    this.recordsScored = new Counter({
      name: `${p}records_scored_total`,
      help: "Records scored and committed at a checkpoint (records scored again after a crash count again).",
      registers,
    });
    this.badRecordsTotal = new Counter({
      name: `${p}bad_records_total`,
      help: "Bad records (unparseable, wrong field count, invalid UTF-8, ...) committed to the errors.",
      registers,
    });
    this.checkpoints = new Counter({
      name: `${p}checkpoints_total`,
      help: "Checkpoints committed.",
      registers,
    });
    this.batchSeconds = new Histogram({
      name: `${p}batch_duration_seconds`,
      help: "onnxruntime time per batch.",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.batchRows = new Histogram({
      name: `${p}batch_size_records`,
      help: "Records per onnxruntime batch.",
      buckets: [1, 16, 64, 256, 1024, 4096, 16384, 65536],
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: `${p}queue_wait_seconds`,
      help: "Time a free worker waited for the queue to hand it a task.",
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 15, 60, 300],
      registers,
    });
    this.checkpointSeconds = new Histogram({
      name: `${p}checkpoint_duration_seconds`,
      help: "Checkpoint commit latency: part object writes plus the partition row's compare-and-set.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.attempts = new Counter({
      name: `${p}partition_attempts_total`,
      help: "Partition attempts ended, by outcome (done, handed_back, lost, error, failed).",
      labelNames: ["outcome"],
      registers,
    });
    // Zero series for every outcome, so rate() works before the first of each.
    for (const outcome of OUTCOMES) this.attempts.inc({ outcome }, 0);
    this.provider = new Gauge({
      name: `${p}execution_provider`,
      help: "1 for the onnxruntime execution provider the worker's session runs on (after any fallback).",
      labelNames: ["provider"],
      registers,
    });
    this.inHand = new Gauge({
      name: `${p}partition_in_hand`,
      help: 'Constant 1 for the task in hand: its job and partition ("merge" for a merge task); absent when idle.',
      labelNames: ["job_id", "partition"],
      registers,
    });
    this.busy = new Gauge({
      name: `${p}worker_busy`,
      help: "1 while the worker holds a task, 0 while it waits for one.",
      registers,
    });
    this.busy.set(0);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  queueWait(ms: number): void {
    this.queueWaitSeconds.observe(ms / 1000);
  }

  claimed(jobId: string, partition: number | undefined): void {
    this.inHand.reset();
    this.inHand.set({ job_id: jobId, partition: partition === undefined ? "merge" : partition }, 1);
    this.busy.set(1);
  }

  released(): void {
    this.inHand.reset();
    this.busy.set(0);
  }

  batchScored(rows: number, ms: number): void {
    this.batchRows.observe(rows);
    this.batchSeconds.observe(ms / 1000);
  }

  checkpointCommitted(chunk: { records: number; badRecords: number; ms?: number }): void {
    this.checkpoints.inc();
    if (chunk.records > 0) this.recordsScored.inc(chunk.records);
    if (chunk.badRecords > 0) this.badRecordsTotal.inc(chunk.badRecords);
    if (chunk.ms !== undefined) this.checkpointSeconds.observe(chunk.ms / 1000);
  }

  attemptEnded(outcome: AttemptOutcome): void {
    this.attempts.inc({ outcome });
  }

  executionProvider(provider: string): void {
    this.provider.reset();
    this.provider.set({ provider }, 1);
  }

  /** The text exposition format, as `/metrics` serves it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
