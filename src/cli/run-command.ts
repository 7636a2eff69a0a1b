/** `batch-infer run`: score a local file or folder end to end on this machine. */
import { statSync } from "node:fs";
import { InvalidArgumentError } from "../core/errors.ts";
import type { LogLevel } from "../core/log.ts";

import { thousands } from "../core/numbers.ts";
import { type JobProgress, runLocalJob } from "../runner/local-runner.ts";
import { parsePort, parsePositiveInt } from "./args.ts";
import {
  backendOf,
  inputHints,
  LOCAL_PARTITION_BYTES,
  objectPath,
  out,
  specFromOptions,
  type Values,
} from "./cli-options.ts";
import { startForeground } from "./foreground.ts";
import { exitCodeForState, forUser } from "./messages.ts";
import { checkOutputDir, requireFile, requireFileOrDirectory } from "./paths.ts";
import { type PlacedOutputs, placeOutputs } from "./place-outputs.ts";
import { compactNumber, duration } from "./progress.ts";

/** `run`: stage the input, split, drive the workers to the end, print or place the outputs. */
export async function cmdRun(v: Values): Promise<number> {
  if (backendOf(v) === "oci") {
    throw new InvalidArgumentError(
      "`run` scores a local file on this machine. On OCI, upload the file to the input bucket (the Events rule starts the job: `oci os object put -bn INPUT_BUCKET --file FILE`) or create a job from an uploaded object with `batch-infer submit --input BUCKET/OBJECT --model LOCATION --backend oci`",
    );
  }
  if (!v.input) {
    throw new InvalidArgumentError(
      "run needs --input FILE (a .csv, .jsonl or .parquet file) or --input DIRECTORY (a media library: every file is a record)",
    );
  }
  if (!v.model)
    throw new InvalidArgumentError(
      "run needs --model DESCRIPTOR.json (write one with `batch-infer init-model`, or see `npm run train`)",
    );
  requireFileOrDirectory("input", v.input, "input file");
  requireFile("model", v.model, "model descriptor");
  if (v.output) checkOutputDir(v.output);
  const hints = inputHints(v);
  if (Object.keys(hints).length > 0 && statSync(v.input).isDirectory()) {
    throw new InvalidArgumentError(
      "--format and --delimiter say how to read one file; a directory's files are read one per record",
    );
  }
  const dataDir = v["data-dir"] ?? ".batch-infer";
  // Log lines (this process's and the workers') go above the progress bar, not through it.
  const { reporter, log, signal } = startForeground(v["log-level"] as LogLevel | undefined);
  // On one machine, smaller partitions than OCI's 64 MiB keep the workers busy to the
  // end (the last partition doesn't run alone for long); each costs a few store calls.
  const spec = {
    partitionBytes: LOCAL_PARTITION_BYTES,
    ...specFromOptions(v, "output"),
    ...(Object.keys(hints).length > 0 ? { input: hints } : {}),
  };
  let last: JobProgress | undefined;
  const result = await runLocalJob({
    dataDir,
    inputFile: v.input,
    descriptor: v.model,
    workers: parsePositiveInt("workers", v.workers) ?? 2,
    intraOpThreads: parsePositiveInt("threads", v.threads) ?? 1,
    spec,
    log,
    signal,
    onProgress: (p) => {
      last = p;
      if (!v.json) reporter.update(p);
    },
    onWorkerOutput: (line) => reporter.log(line),
    ...(v["metrics-port"] !== undefined
      ? { metricsPort: parsePort("metrics-port", v["metrics-port"]) }
      : {}),
  });
  if (!v.json) reporter.done(last);
  const job = result.job;
  if (result.interrupted) {
    out(
      `stopped job ${job.jobId} at ${compactNumber(result.progress.records)} records; run the same command again to resume it`,
    );
    return 130;
  }
  const placed: PlacedOutputs | undefined = v.output
    ? await placeOutputs(job, dataDir, v.output)
    : undefined;
  if (v.json) {
    out(
      JSON.stringify(
        {
          jobId: job.jobId,
          created: result.split.created,
          state: job.state,
          result: job.result,
          error: job.error,
          ...(placed ? { placed } : {}),
        },
        null,
        2,
      ),
    );
  } else {
    const r = job.result;
    out(
      `job ${job.jobId} ${job.state}${result.split.created ? "" : " (existing job: same input, model and options)"}`,
    );
    if (r) {
      const secs = r.durationMs / 1000;
      out(
        `  records   ${thousands(r.records)} scored, ${thousands(r.errors)} bad, in ${duration(secs)} (${compactNumber(r.records / Math.max(secs, 0.001))} records/s overall)`,
      );
      if (job.state !== "failed")
        out(
          `  output    ${placed?.output ?? objectPath(dataDir, r.output.bucket, r.output.object)}`,
        );
      out(
        `  errors    ${placed?.errors ?? objectPath(dataDir, r.errorsOutput.bucket, r.errorsOutput.object)}`,
      );
      out(
        `  manifest  ${placed?.manifest ?? objectPath(dataDir, r.manifest.bucket, r.manifest.object)}`,
      );
      if (r.report)
        out(
          `  report    ${placed?.report ?? objectPath(dataDir, r.report.bucket, r.report.object)}`,
        );
    }
    if (job.error) out(`  ${job.state === "failed" ? "error" : "note"}     ${forUser(job.error)}`);
  }
  return exitCodeForState(job.state);
}
