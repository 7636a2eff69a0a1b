/**
 * What `run` on the embedded default takes, and the progress it reports: apart from
 * the runner, so the pieces the runner calls (the media job) can name them too.
 */
import type { Logger } from "../core/log.ts";
import type { JobRecord } from "../core/records.ts";
import type { ScalingPolicy } from "../pipeline/scaler.ts";
import type { PreflightOptions } from "./local-preflight.ts";
import type { PoolMember, ProcessPool, WorkerCommand } from "./process-pool.ts";

/** Progress of a job, as the CLI's bar shows it. */
export interface JobProgress {
  jobId: string;
  state: JobRecord["state"];
  records: number;
  errors: number;
  bytesDone: number;
  bytesTotal: number;
  partitions: number;
  partitionsDone: number;
  partitionsFailed: number;
  workers: number;
  /** Records per second since the run started. */
  rate: number;
  /** Seconds left, from the byte rate (undefined until measurable). */
  etaSeconds?: number;
  elapsedMs: number;
}

/** Options of `run` on the embedded default. */
export interface LocalRunOptions {
  dataDir: string;
  /**
   * A local file to score: it is "uploaded" to the input bucket, which fires the upload
   * event. A directory (a media library) becomes the objects under a prefix instead.
   */
  inputFile: string;
  inputBucket?: string;
  descriptor: string;
  /** Most worker processes (the scaler decides how many run). */
  workers: number;
  /** Job spec options; `input` only says how to read the file (format, delimiter). */
  spec?: PreflightOptions["spec"];
  intraOpThreads?: number;
  log: Logger;
  onProgress?: (p: JobProgress) => void;
  /** Abort = stop gracefully: workers checkpoint and hand back; run again to resume. */
  signal?: AbortSignal;
  /** Tests and chaos: see the pool, kill its workers. */
  onPool?: (pool: ProcessPool) => void;
  onWorkerExit?: (m: PoolMember, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Workers' stdout/stderr lines (the CLI prints them above its progress bar); unset: inherited. */
  onWorkerOutput?: ConstructorParameters<typeof ProcessPool>[0]["onOutput"];
  workerCommand?: WorkerCommand;
  scaling?: Partial<ScalingPolicy>;
  progressIntervalMs?: number;
  /** Serve the pool's summed Prometheus metrics on this port while the job runs (0 = any free port). */
  metricsPort?: number;
}
