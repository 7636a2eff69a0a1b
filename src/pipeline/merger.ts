import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { ConflictError, type ErrorCode } from "../core/errors.ts";
import type { JobRecord, JobResult, JobState, PartitionRecord } from "../core/records.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import { finishRefreshOf } from "../refresh/refresh.ts";
import { inputLabel } from "../sources/registry.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent } from "./events.ts";
import { failedPartitionsMessage } from "./failed-partitions.ts";
import { type JobLayout, jobLayout } from "./layout.ts";
import type { Manifest } from "./manifest.ts";
import { mergedErrors } from "./merge-errors.ts";
import { mergedOutput } from "./merge-output.ts";
import { deleteAll } from "./object-batches.ts";
import { ErrorTally, renderJobReport } from "./report.ts";

/**
 * The job's bad records measured against its errorThreshold: the sentence
 * saying which limit they exceed, or undefined when within both.
 */
export function thresholdBreach(
  threshold: JobRecord["spec"]["errorThreshold"],
  records: number,
  errors: number,
): string | undefined {
  const { maxCount, maxFraction } = threshold;
  if (maxCount !== undefined && errors > maxCount) {
    return `${errors} bad records exceed errorThreshold.maxCount ${maxCount} (see the errors output)`;
  }
  const fraction = records + errors === 0 ? 0 : errors / (records + errors);
  if (maxFraction !== undefined && fraction > maxFraction) {
    return `${(fraction * 100).toFixed(3)}% bad records exceed errorThreshold.maxFraction ${maxFraction} (see the errors output)`;
  }
  return undefined;
}

/** The code of a failed job's failure (the only way a job fails today is its error threshold). */
export function failureCode(job: JobRecord): ErrorCode | undefined {
  if (job.state !== "failed") return undefined;
  const r = job.result;
  if (r && thresholdBreach(job.spec.errorThreshold, r.records, r.errors) !== undefined) {
    return "ERROR_THRESHOLD_EXCEEDED";
  }
  return "INTERNAL";
}

function decideStatus(
  job: JobRecord,
  partitions: PartitionRecord[],
): { status: JobState; message?: string; errorCode?: ErrorCode } {
  const records = partitions.reduce((n, p) => n + p.records, 0);
  const errors = partitions.reduce((n, p) => n + p.errors, 0);
  const failed = partitions.filter((p) => p.state === "failed").map((p) => p.index);
  // Set only by a worker that stopped the job early on its error threshold.
  if (job.error)
    return { status: "failed", message: job.error, errorCode: "ERROR_THRESHOLD_EXCEEDED" };
  const breach = thresholdBreach(job.spec.errorThreshold, records, errors);
  if (breach) return { status: "failed", message: breach, errorCode: "ERROR_THRESHOLD_EXCEEDED" };
  if (failed.length > 0) {
    return {
      status: "completed_with_errors",
      message: failedPartitionsMessage(
        job.jobId,
        partitions.filter((p) => p.state === "failed"),
      ),
    };
  }
  return { status: "completed" };
}

/** The completion event for a finished job. */
export function completionEvent(job: JobRecord, now: Date) {
  const r = job.result;
  const layout = jobLayout(job);
  return jobEvent(
    EVENT_TYPES.jobCompleted,
    job,
    `r${job.runAttempt}`,
    {
      status: job.state,
      records: r?.records ?? 0,
      errors: r?.errors ?? 0,
      failedPartitions: r?.failedPartitions ?? [],
      durationMs: r?.durationMs ?? 0,
      output: r && job.state !== "failed" ? `${layout.bucket}/${r.output.object}` : undefined,
      errorsOutput: r ? `${layout.bucket}/${r.errorsOutput.object}` : undefined,
      manifest: `${layout.bucket}/${layout.manifest}`,
      model: `${job.model.name}@${job.model.version}`,
      input: inputLabel(job.input),
      ...(job.error ? { message: job.error } : {}),
      ...(job.state === "failed" ? { errorCode: failureCode(job) } : {}),
    },
    now,
  );
}

async function publishCompletion(deps: PipelineDeps, jobId: string): Promise<void> {
  for (;;) {
    const row = await deps.checkpoints.getJob(jobId);
    if (!row || row.value.completionPublished) return;
    // Outbox: publish, then mark. A crash in between republishes the same eventID (consumers dedupe).
    await deps.events.publish([completionEvent(row.value, new Date(deps.now()))]);
    try {
      await deps.checkpoints.updateJob(
        jobId,
        { ...row.value, completionPublished: true },
        row.version,
      );
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
}

async function deletePrefix(deps: PipelineDeps, bucket: string, prefix: string): Promise<void> {
  let start: string | undefined;
  do {
    const page = await deps.store.list(bucket, {
      prefix,
      ...(start ? { start } : {}),
      limit: 1000,
    });
    // Hundreds of parts for a job checkpointed often: deleted several at a time.
    await deleteAll(
      deps.store,
      bucket,
      page.objects.map((o) => o.name),
    );
    start = page.nextStart;
  } while (start);
}

/**
 * Write the HTML job report next to the manifest. A rendering bug must not stop
 * a job from finishing, so it is logged and the job goes on without a report;
 * a store failure propagates like any other put (the merge task is retried).
 */
async function writeReport(
  deps: PipelineDeps,
  layout: JobLayout,
  manifest: Manifest,
  tally: ErrorTally,
  log: PipelineDeps["log"],
): Promise<{ bucket: string; object: string } | undefined> {
  let html: string;
  try {
    html = renderJobReport({
      manifest,
      errorReasons: tally.reasons,
      errorSamples: tally.samples,
    });
  } catch (err) {
    log.warn("job report not written", { error: (err as Error).message });
    return undefined;
  }
  await deps.store.put(layout.bucket, layout.report, html, {
    contentType: "text/html; charset=utf-8",
  });
  return { bucket: layout.bucket, object: layout.report };
}

/**
 * Merge a job whose partitions are all terminal: concatenate the committed
 * parts in input order into the final output, rewrite error line numbers,
 * write the manifest and the HTML report, move the job to its final state by
 * compare-and-set and publish the completion event once. Idempotent: running it again (a redelivered
 * merge task) rewrites identical bytes and publishes nothing new.
 */
export async function mergeJob(deps: PipelineDeps, jobId: string): Promise<JobRecord | undefined> {
  const row = await deps.checkpoints.getJob(jobId);
  if (!row) return undefined;
  const job = row.value;
  const log = deps.log.child({ jobId });
  if (TERMINAL_JOB_STATES.includes(job.state)) {
    await publishCompletion(deps, jobId);
    await afterCompletion(deps, jobId);
    return job;
  }
  if (job.state !== "merging") return job;

  const partitions = await deps.checkpoints.readPartitions(jobId);
  const layout = jobLayout(job);
  const { status, message, errorCode } = decideStatus(job, partitions);
  // Counts describe the outputs: a failed partition's checkpointed rows are not in
  // them. A job stopped on its threshold publishes every bad record it found.
  const published = (p: PartitionRecord) => (status === "failed" ? true : p.state === "done");
  const records = partitions.reduce((n, p) => n + (published(p) ? p.records : 0), 0);
  const errors = partitions.reduce((n, p) => n + (published(p) ? p.errors : 0), 0);
  const failedPartitions = partitions.filter((p) => p.state === "failed").map((p) => p.index);
  const columns = job.outputColumns;

  const errDigest = { hash: createHash("sha256"), bytes: 0 };
  const tally = new ErrorTally();
  await deps.store.put(
    layout.bucket,
    layout.errors,
    Readable.from(mergedErrors(deps, layout, job, partitions, published, errDigest, tally)),
  );
  let output: Manifest["output"];
  if (status !== "failed") {
    const outDigest = { hash: createHash("sha256"), bytes: 0 };
    await deps.store.put(
      layout.bucket,
      layout.output,
      Readable.from(mergedOutput(deps, layout, job, partitions, outDigest)),
    );
    output = {
      object: layout.output,
      bytes: outDigest.bytes,
      sha256: outDigest.hash.digest("hex"),
    };
  }
  const finishedAt = new Date(deps.now());
  const durationMs = finishedAt.getTime() - Date.parse(job.createdAt);
  const manifest: Manifest = {
    jobId,
    status,
    ...(message ? { message } : {}),
    ...(errorCode ? { errorCode } : {}),
    runAttempt: job.runAttempt,
    input: job.input,
    model: job.model,
    spec: job.spec,
    columns,
    counts: {
      records,
      errors,
      lines: partitions.reduce((n, p) => n + (published(p) ? p.lines : 0), 0),
      partitions: partitions.length,
      failedPartitions,
    },
    unscored: partitions
      .filter((p) => p.state === "failed")
      .map((p) => ({
        partition: p.index,
        start: p.start,
        end: p.end,
        checkpointedRecords: p.records + p.errors,
        ...(p.lastError ? { reason: p.lastError } : {}),
      })),
    ...(output ? { output } : {}),
    errorsOutput: {
      object: layout.errors,
      bytes: errDigest.bytes,
      sha256: errDigest.hash.digest("hex"),
    },
    timings: { createdAt: job.createdAt, finishedAt: finishedAt.toISOString(), durationMs },
    partitions: partitions.map((p) => ({
      index: p.index,
      start: p.start,
      end: p.end,
      state: p.state,
      records: p.records,
      errors: p.errors,
      lines: p.lines,
      attempts: p.attempts,
      ...(p.lastError ? { lastError: p.lastError } : {}),
      ...(p.retryFromEpoch !== undefined ? { retryFromEpoch: p.retryFromEpoch } : {}),
      parts: p.parts.map((r) => ({
        seq: r.seq,
        epoch: r.epoch,
        records: r.records,
        bytes: r.bytes,
        sha256: r.sha256,
        ...(r.committedAt ? { committedAt: r.committedAt } : {}),
        ...(r.worker ? { worker: r.worker } : {}),
      })),
    })),
  };
  await deps.store.put(layout.bucket, layout.manifest, `${JSON.stringify(manifest, null, 2)}\n`, {
    contentType: "application/json",
  });
  const report = await writeReport(deps, layout, manifest, tally, log);

  const result: JobResult = {
    records,
    errors,
    failedPartitions,
    output: {
      bucket: layout.bucket,
      object: layout.output,
      bytes: output?.bytes ?? 0,
      sha256: output?.sha256 ?? "",
    },
    errorsOutput: {
      bucket: layout.bucket,
      object: layout.errors,
      bytes: errDigest.bytes,
      sha256: manifest.errorsOutput.sha256,
    },
    manifest: { bucket: layout.bucket, object: layout.manifest },
    ...(report ? { report } : {}),
    durationMs,
  };
  const final: JobRecord = {
    ...job,
    state: status,
    ...(message ? { error: message } : {}),
    result,
    completionPublished: false,
    updatedAt: finishedAt.toISOString(),
  };
  try {
    await deps.checkpoints.updateJob(jobId, final, row.version);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    log.info("another merger finished this job first");
  }
  await publishCompletion(deps, jobId);
  if (status === "completed") await deletePrefix(deps, layout.bucket, layout.partsPrefix);
  log.info("job finished", { status, records, errors, failedPartitions, durationMs });
  await afterCompletion(deps, jobId);
  return (await deps.checkpoints.getJob(jobId))?.value;
}

/** What follows a published completion: a corpus refresh's job finishes its refresh. */
async function afterCompletion(deps: PipelineDeps, jobId: string): Promise<void> {
  const job = (await deps.checkpoints.getJob(jobId))?.value;
  if (job?.refresh) await finishRefreshOf(deps, job);
}
