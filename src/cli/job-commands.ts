/**
 * Commands that drive an existing job with the local worker pool: `resume`
 * (a job made by `submit`, or a stopped `run`) and `rerun JOB_ID` without
 * --failed (the same input again as a new job). Also what `status` says about
 * a job nobody is working on.
 */

import path from "node:path";
import { InvalidArgumentError } from "../core/errors.ts";
import { createLogger, type LogLevel } from "../core/log.ts";
import { thousands } from "../core/numbers.ts";
import type { JobRecord } from "../core/records.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import { rerunAsNewJob } from "../pipeline/rerun-job.ts";
import type { JobProgress } from "../runner/local-runner.ts";
import { resumeLocalJob } from "../runner/local-runner.ts";
import { localPaths, openLocalPipeline } from "../runner/local-stores.ts";
import { checkModelOpens } from "../tasks/registry.ts";
import { parsePositiveInt } from "./args.ts";
import { startForeground } from "./foreground.ts";
import { exitCodeForState, forUser } from "./messages.ts";
import { compactNumber, duration } from "./progress.ts";

/** What these commands read from the parsed flags. */
export interface DriveFlags {
  dataDir: string;
  workers?: string | undefined;
  threads?: string | undefined;
  logLevel?: LogLevel | undefined;
  json?: boolean | undefined;
}

/** Places a finished job's outputs in the user's --output DIR; returns the paths placed. */
export type PlaceOutputs = (job: JobRecord) => Promise<string[]>;

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** Local path of an object in the embedded store. */
function objectPath(dataDir: string, o: { bucket: string; object: string }): string {
  return path.join(localPaths(dataDir).buckets, o.bucket, o.object);
}

/** The summary `run` prints, for a job driven by `resume` or `rerun`. */
export function printJobSummary(job: JobRecord, dataDir: string, placed: string[] = []): void {
  const r = job.result;
  out(`job ${job.jobId} ${job.state}`);
  if (r) {
    const secs = r.durationMs / 1000;
    out(
      `  records   ${thousands(r.records)} scored, ${thousands(r.errors)} bad (${duration(secs)} since the job was created)`,
    );
    const byName = (o: { bucket: string; object: string }) =>
      placed.find((p) => path.basename(p) === path.basename(o.object)) ?? objectPath(dataDir, o);
    if (job.state !== "failed") out(`  output    ${byName(r.output)}`);
    out(`  errors    ${byName(r.errorsOutput)}`);
    out(`  manifest  ${byName(r.manifest)}`);
    if (r.report) out(`  report    ${byName(r.report)}`);
  }
  if (job.error) out(`  ${job.state === "failed" ? "error" : "note"}     ${forUser(job.error)}`);
}

/**
 * Drive `jobId` to the end with the local pool, with the progress bar (worker
 * log lines above it) and Ctrl-C handling of `run`; print the summary.
 */
export async function driveWithProgress(
  flags: DriveFlags,
  jobId: string,
  place?: PlaceOutputs,
): Promise<number> {
  const { reporter, log, signal, dispose } = startForeground(flags.logLevel);
  let last: JobProgress | undefined;
  try {
    const result = await resumeLocalJob({
      dataDir: flags.dataDir,
      jobId,
      workers: parsePositiveInt("workers", flags.workers) ?? 2,
      intraOpThreads: parsePositiveInt("threads", flags.threads) ?? 1,
      log,
      signal,
      onProgress: (p) => {
        last = p;
        if (!flags.json) reporter.update(p);
      },
      onWorkerOutput: (line) => reporter.log(line),
    });
    if (!flags.json) reporter.done(last);
    const job = result.job;
    if (result.interrupted) {
      out(
        `stopped job ${jobId} at ${compactNumber(result.progress.records)} records; \`batch-infer resume ${jobId}\` goes on from its checkpoints`,
      );
      return 130;
    }
    const placed = place && job.result ? await place(job) : [];
    if (flags.json) out(JSON.stringify({ jobId, state: job.state, result: job.result, placed }));
    else printJobSummary(job, flags.dataDir, placed);
    return exitCodeForState(job.state);
  } finally {
    dispose();
  }
}

/** `resume JOB_ID`: score an existing job with local workers. */
export async function cmdResume(
  flags: DriveFlags,
  jobId: string | undefined,
  place?: PlaceOutputs,
): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("resume needs a JOB_ID (see `batch-infer jobs`)");
  const pipeline = openLocalPipeline(flags.dataDir);
  let job: JobRecord | undefined;
  try {
    job = (await pipeline.checkpoints.getJob(jobId))?.value;
  } finally {
    pipeline.close();
  }
  if (!job) {
    throw new InvalidArgumentError(
      `no job ${jobId} in ${flags.dataDir}: list jobs with \`batch-infer jobs\``,
    );
  }
  if (TERMINAL_JOB_STATES.includes(job.state) && job.completionPublished) {
    if (!flags.json) out(`job ${jobId} is already ${job.state}: nothing to resume`);
    const placed = place && job.result ? await place(job) : [];
    if (flags.json) out(JSON.stringify({ jobId, state: job.state, result: job.result, placed }));
    else printJobSummary(job, flags.dataDir, placed);
    return exitCodeForState(job.state);
  }
  return driveWithProgress(flags, jobId, place);
}

/** `rerun JOB_ID` without --failed: the same input, model and options as a new job, scored locally. */
export async function cmdRerunAsNew(
  flags: DriveFlags & { runTag?: string | undefined },
  jobId: string,
  place?: PlaceOutputs,
): Promise<number> {
  const pipeline = openLocalPipeline(flags.dataDir, {
    log: createLogger({ level: flags.logLevel ?? "warn" }),
  });
  let split: Awaited<ReturnType<typeof rerunAsNewJob>>;
  try {
    split = await rerunAsNewJob(
      {
        ...pipeline,
        // As `run`: refuse before anything is written if onnxruntime can't run the model.
        checkModel: async (model) => {
          await checkModelOpens(model, {});
        },
      },
      jobId,
      flags.runTag,
    );
  } finally {
    pipeline.close();
  }
  if (!flags.json) {
    out(
      `${split.created ? "created" : "found existing"} job ${split.jobId} (run tag ${split.runTag}): the input of ${jobId} again, ${split.partitions} partitions`,
    );
  }
  return driveWithProgress(flags, split.jobId, place);
}

/**
 * What `status` says of a job that is not finished: how many partitions are
 * leased right now (workers at work), and when none are, what to run instead
 * of an ETA that would never arrive.
 */
export function idleJobHint(
  job: JobRecord,
  leased: number,
  backend: "local" | "oci",
  dataDirFlag = "",
): string | undefined {
  if (TERMINAL_JOB_STATES.includes(job.state) || leased > 0) return undefined;
  return backend === "local"
    ? `nobody is working on this job: \`batch-infer resume ${job.jobId}${dataDirFlag}\` scores it with local workers (partitions resume from their checkpoints)`
    : "no worker holds a partition right now: the scaler starts workers on OKE while the queue has messages";
}
