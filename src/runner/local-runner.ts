import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";
import { sha256Hex } from "../core/ids.ts";
import type { JobRecord, PartitionRecord } from "../core/records.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import type { MetricsServer } from "../metrics/server.ts";
import { objectCreatedEvent } from "../pipeline/events.ts";
import { recoverStalledJob } from "../pipeline/recover.ts";
import { DEFAULT_POLICY, decideReplicas, type ScalingPolicy } from "../pipeline/scaler.ts";
import { type SplitResult, splitFromEvent } from "../pipeline/splitter.ts";
import { identifyLocalInput, stageLocalInput } from "./local-input.ts";
import { splitLocalDirectory } from "./local-media-job.ts";
import { preflightLocalFile } from "./local-preflight.ts";
import type { JobProgress, LocalRunOptions } from "./local-run-options.ts";
import { type LocalPipeline, openLocalPipeline } from "./local-stores.ts";
import { ProcessPool } from "./process-pool.ts";

export type { JobProgress, LocalRunOptions };

/** What `run` ended with. */
export interface LocalRunResult {
  split: SplitResult;
  job: JobRecord;
  interrupted: boolean;
  progress: JobProgress;
}

/** Summarize partitions into progress figures. */
export function summarize(
  job: JobRecord,
  partitions: PartitionRecord[],
  startedAt: number,
  now: number,
  startRecords: number,
): JobProgress {
  let records = 0;
  let errors = 0;
  let bytesDone = 0;
  let bytesTotal = 0;
  let done = 0;
  let failed = 0;
  for (const p of partitions) {
    records += p.records;
    errors += p.errors;
    bytesTotal += p.end - p.start;
    if (p.state === "done" || p.state === "failed") bytesDone += p.end - p.start;
    else bytesDone += Math.min(p.end, p.offset) - p.start;
    if (p.state === "done") done++;
    if (p.state === "failed") failed++;
  }
  const elapsedMs = Math.max(1, now - startedAt);
  const rate = ((records + errors - startRecords) * 1000) / elapsedMs;
  const byteRate = bytesDone / elapsedMs;
  const etaSeconds =
    byteRate > 0 && bytesDone < bytesTotal ? (bytesTotal - bytesDone) / byteRate / 1000 : undefined;
  return {
    jobId: job.jobId,
    state: job.state,
    records,
    errors,
    bytesDone,
    bytesTotal,
    partitions: partitions.length,
    partitionsDone: done,
    partitionsFailed: failed,
    workers: 0,
    rate,
    ...(etaSeconds !== undefined ? { etaSeconds } : {}),
    elapsedMs,
  };
}

/**
 * Put a local file into a bucket under a name of the caller's choosing (a new
 * version every time: tests and tools that need one). `run` stages its input with
 * {@link stageLocalInput} instead: named by content, never copied.
 */
export async function uploadFile(
  pipeline: LocalPipeline,
  bucket: string,
  name: string,
  file: string,
): Promise<{ etag: string; uploaded: boolean }> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(file);
  } catch {
    throw new NotFoundError(`input file ${file} does not exist`);
  }
  if (!st.isFile()) throw new InvalidArgumentError(`input ${file} is not a regular file`);
  const { etag } = await pipeline.store.put(bucket, name, createReadStream(file));
  return { etag, uploaded: true };
}

/**
 * Run a job on the embedded default: upload → object event → splitter → queue →
 * a scaled pool of worker processes → merge → completion event. Returns when
 * the job is finished (or the signal stops it; running it again resumes).
 */
export async function runLocalJob(options: LocalRunOptions): Promise<LocalRunResult> {
  const pipeline = openLocalPipeline(options.dataDir, { log: options.log });
  const bucket = options.inputBucket ?? "input";
  // Start the workers now: they load (a few hundred ms each) while the input is
  // hashed, staged and split, and take the first partitions the moment they exist.
  // Held until the pre-flight passes: a refused run writes nothing.
  // Each opens the run's model meanwhile (reading files only), so its first claim finds it open.
  const warmPool = startPool(pipeline, options, options.spec?.visibilitySeconds ?? 60, {
    BATCH_INFER_PRELOAD_MODEL: path.resolve(options.descriptor),
    ...(options.spec?.batchSize
      ? { BATCH_INFER_PRELOAD_BATCH: String(options.spec.batchSize) }
      : {}),
  });
  let handedOver = false;
  try {
    await warmPool.scaleTo(Math.max(1, options.workers));
    const media = await splitLocalDirectory(pipeline, bucket, options);
    if (media) {
      warmPool.release();
      handedOver = true;
      return {
        split: media,
        ...(await driveLocalJob(pipeline, media.jobId, { ...options, warmPool })),
      };
    }
    // The input is hashed on a thread of its own while the splitter's checks (options,
    // model, onnxruntime, header) run on the local file; both before anything is
    // written: a refused run stages nothing and logs no event.
    const hashing = new AbortController();
    const identity = identifyLocalInput(pipeline, options.inputFile, hashing.signal);
    identity.catch(() => undefined); // the preflight's error, if any, is the one to report
    try {
      await preflightLocalFile(pipeline, bucket, options);
    } catch (err) {
      hashing.abort(err);
      throw err;
    }
    warmPool.release();
    const staged = await stageLocalInput(pipeline, bucket, options.inputFile, await identity);
    const { etag, object: objectName } = staged;
    options.log.info("input staged", {
      object: objectName,
      how: staged.how,
      sha256: staged.sha256,
    });
    const event = objectCreatedEvent({
      bucket,
      object: objectName,
      etag,
      eventId: `local-${sha256Hex(`${bucket}/${objectName}@${etag}`).slice(0, 16)}`,
    });
    await pipeline.events.publish([event]);
    // The preflight opened the model with onnxruntime already.
    const split = await splitFromEvent(pipeline, event, {
      ...options.spec,
      output: { bucket: "output", ...options.spec?.output },
      model: { descriptor: path.resolve(options.descriptor) },
    });
    handedOver = true;
    warmPool.nudge();
    const driven = await driveLocalJob(pipeline, split.jobId, { ...options, warmPool });
    return { split, ...driven };
  } finally {
    // Refused before a job existed (a bad model or input): the warm workers go.
    if (!handedOver) await warmPool.close();
    pipeline.close();
  }
}

/** What driving a job needs (the run options without the input). */
export type DriveOptions = Omit<
  LocalRunOptions,
  "inputFile" | "inputBucket" | "descriptor" | "spec"
> & {
  /** Workers started while the input was staged and split (they wait on the queue). */
  warmPool?: ProcessPool;
};

/** A pool of worker processes for the data dir (empty until scaled). */
function startPool(
  pipeline: LocalPipeline,
  options: DriveOptions,
  visibilitySeconds: number,
  /** Start the workers held (see ProcessPool), with these variables (the model to open meanwhile). */
  held?: Record<string, string>,
): ProcessPool {
  return new ProcessPool({
    held: held !== undefined,
    env: {
      ...process.env,
      ...held,
      BATCH_INFER_DATA_DIR: pipeline.paths.dataDir,
      ORT_INTRA_OP_THREADS: String(options.intraOpThreads ?? 1),
      // A message a worker takes before it has read the job is leased for the job's
      // own visibility, not a fixed default (a worker that dies then holds it that long).
      BATCH_INFER_RECEIVE_VISIBILITY: String(visibilitySeconds),
      // Workers answer the pool's metrics requests over IPC (no port each).
      ...(options.metricsPort !== undefined ? { BATCH_INFER_METRICS_IPC: "1" } : {}),
    },
    queue: pipeline.queue,
    log: options.log,
    ...(options.workerCommand ? { command: options.workerCommand } : {}),
    ...(options.onWorkerExit ? { onExit: options.onWorkerExit } : {}),
    ...(options.onWorkerOutput ? { onOutput: options.onWorkerOutput } : {}),
  });
}

/**
 * Drive an existing job to a terminal state with a scaled pool of worker
 * processes: what `run` does after the split, and what `rerun --failed` does
 * with the job it put back in play (by id: the input and model are the job's).
 */
export async function driveLocalJob(
  pipeline: LocalPipeline,
  jobId: string,
  options: DriveOptions,
): Promise<Omit<LocalRunResult, "split">> {
  let pool: ProcessPool | undefined;
  let metrics: MetricsServer | undefined;
  try {
    const first = await pipeline.checkpoints.getJob(jobId);
    if (!first) throw new NotFoundError(`no job ${jobId} in ${pipeline.paths.dataDir}`);
    const policy: ScalingPolicy = {
      ...DEFAULT_POLICY,
      maxReplicas: Math.max(1, options.workers),
      // Long enough to ride out the gap between a hand-back and its re-claim, or the
      // last partition and the merge, without stopping and restarting workers.
      cooldownSeconds: 5,
      ...options.scaling,
    };
    pool = options.warmPool ?? startPool(pipeline, options, first.value.spec.visibilitySeconds);
    options.onPool?.(pool);
    const poolOf = pool;
    if (options.metricsPort !== undefined) {
      // prom-client loads only when metrics are asked for.
      const { aggregateMetrics, requestWorkerMetrics } = await import("../metrics/pool-metrics.ts");
      const { startMetricsServer } = await import("../metrics/server.ts");
      metrics = await startMetricsServer({
        port: options.metricsPort,
        render: async () => {
          const { live, departed } = await poolOf.collectMetrics((c) => requestWorkerMetrics(c));
          return aggregateMetrics(live, departed);
        },
      });
    }
    if (metrics) options.log.warn(`serving the worker pool's metrics on :${metrics.port}/metrics`);

    const startedAt = Date.now();
    let startRecords: number | undefined;
    let lastActiveAt: number | undefined;
    let progress: JobProgress | undefined;
    let interrupted = false;
    const interval = options.progressIntervalMs ?? 250;
    // A job that is running with no message in the queue can't finish by itself (a
    // message was lost): seen twice in a row, at least a second apart, it is re-enqueued.
    let orphanedSince: number | undefined;
    const aborted = new Promise<void>((resolve) =>
      options.signal?.addEventListener("abort", () => resolve(), { once: true }),
    );
    for (;;) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const row = await pipeline.checkpoints.getJob(jobId);
      if (!row) throw new NotFoundError(`job ${jobId} vanished from the checkpoint store`);
      const parts = await pipeline.checkpoints.readPartitions(jobId);
      startRecords ??= parts.reduce((n, p) => n + p.records + p.errors, 0);
      progress = {
        ...summarize(row.value, parts, startedAt, Date.now(), startRecords),
        workers: pool.list().length,
      };
      options.onProgress?.(progress);
      if (TERMINAL_JOB_STATES.includes(row.value.state) && row.value.completionPublished) break;
      if (row.value.state === "running" || row.value.state === "merging") {
        if ((await pipeline.tasks.liveMessagesFor(jobId)) > 0) orphanedSince = undefined;
        else if (orphanedSince === undefined) orphanedSince = Date.now();
        else if (Date.now() - orphanedSince >= 1000) {
          await recoverStalledJob(pipeline, jobId);
          orphanedSince = undefined;
        }
      }

      const stats = await pipeline.queue.stats();
      const decision = decideReplicas(policy, {
        visible: stats.visible,
        inFlight: stats.inFlight,
        currentReplicas: await pool.current(),
        now: Date.now(),
        ...(lastActiveAt !== undefined ? { lastActiveAt } : {}),
      });
      lastActiveAt = decision.lastActiveAt;
      if (decision.replicas !== (await pool.current())) {
        options.log.info("scaling workers", {
          replicas: decision.replicas,
          reason: decision.reason,
        });
        await pool.scaleTo(decision.replicas);
      }
      // Wait for the next thing a worker reports (a checkpoint, the merge task's release,
      // an exit) or the interval, whichever comes first: the job's end is seen at once,
      // and progress at most every 50 ms.
      const iterationStart = Date.now();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        pool.changed(),
        new Promise((r) => {
          timer = setTimeout(r, interval);
        }),
        aborted,
      ]);
      clearTimeout(timer);
      const spent = Date.now() - iterationStart;
      if (spent < 50) await new Promise((r) => setTimeout(r, 50 - spent));
    }
    await pool.close();
    const job = (await pipeline.checkpoints.getJob(jobId))?.value as JobRecord;
    return { job, interrupted, progress: progress as JobProgress };
  } finally {
    await metrics?.close();
    await pool?.close();
  }
}

/** Drive the job `jobId` in `dataDir` (see {@link driveLocalJob}). */
export async function resumeLocalJob(
  options: DriveOptions & { jobId: string },
): Promise<Omit<LocalRunResult, "split">> {
  const pipeline = openLocalPipeline(options.dataDir, { log: options.log });
  try {
    return await driveLocalJob(pipeline, options.jobId, options);
  } finally {
    pipeline.close();
  }
}
