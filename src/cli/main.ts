#!/usr/bin/env node
/**
 * batch-infer: the command line, on the embedded default or (--backend oci) on OCI.
 *   run     score a file end to end (upload → split → workers → merge → event)
 *   submit  create a job from objects already in a bucket (what `fn invoke` does)
 *   status  a job's partitions, attempts, progress
 *   jobs    recent jobs
 *   events  the event log
 *   verify  prove a finished job's exactly-once property
 *   rerun   rerun a job's failed partitions (--failed) or the whole job
 *   resume  drive an existing job with local workers
 *   init-model  write a model descriptor from an ONNX file and a sample
 *   refresh keep a corpus's embeddings fresh (only new and changed documents embedded)
 */
import { existsSync, realpathSync } from "node:fs";
import { parseArgs } from "node:util";
import { InvalidArgumentError, PipelineError } from "../core/errors.ts";
import { createLogger, type LogLevel } from "../core/log.ts";
import type { JobRecord } from "../core/records.ts";
import { rerunFailedPartitions } from "../pipeline/rerun.ts";
import { splitJob } from "../pipeline/splitter.ts";
import { resumeLocalJob } from "../runner/local-runner.ts";
import { joinNegativeValues, parseLogLevel, parsePositiveInt } from "./args.ts";
import {
  backendOf,
  inputHints,
  OPTIONS,
  out,
  specFromOptions,
  VALUE_OPTIONS,
  type Values,
  withPipeline,
} from "./cli-options.ts";
import { cmdInitModel } from "./init-model.ts";
import { cmdEvents, cmdJobs, cmdStatus, cmdVerify } from "./inspect-commands.ts";
import { cmdRerunAsNew, cmdResume, type DriveFlags } from "./job-commands.ts";
import { exitCodeForError, exitCodeForState, forUser } from "./messages.ts";
import {
  checkOutputDir,
  dataDirFlag,
  isLocalModelPath,
  requireDataDir,
  userPath,
} from "./paths.ts";
import { placeOutputs } from "./place-outputs.ts";
import { createProgressReporter } from "./progress.ts";
import { cmdRefresh } from "./refresh-command.ts";
import { cmdRun } from "./run-command.ts";
import { COMMAND_NAMES, commandUsage, overviewUsage } from "./usage.ts";

async function cmdSubmit(v: Values): Promise<number> {
  const input = v.input ?? "";
  const slash = input.indexOf("/");
  if (slash <= 0) {
    throw new InvalidArgumentError(
      `submit needs --input BUCKET/OBJECT (an object already uploaded) or BUCKET/PREFIX/ (every object under the prefix, e.g. images), got "${input}"`,
    );
  }
  if (!v.model) {
    throw new InvalidArgumentError(
      "submit needs --model LOCATION: a descriptor path, oci://BUCKET@NAMESPACE/PATH/descriptor.json or a Data Science model OCID",
    );
  }
  const bucket = input.slice(0, slash);
  const name = input.slice(slash + 1);
  const spec = {
    ...specFromOptions(v, v["output-bucket"] ?? "output"),
    // A trailing slash names a prefix: every object under it is one record.
    input:
      name === "" || name.endsWith("/")
        ? { bucket, prefix: name, ...inputHints(v) }
        : { bucket, object: name, ...inputHints(v) },
    model: { descriptor: v.model },
  };
  return withPipeline(v, async (p) => {
    const result = await splitJob(p, spec);
    if (v.json) out(JSON.stringify(result, null, 2));
    else {
      out(
        `${result.created ? "created" : "found existing"} job ${result.jobId}: ${result.partitions} partitions enqueued`,
      );
      if (p.backend === "local") {
        // The embedded default has no workers of its own between commands: say who scores it.
        out(
          `  nothing scores it until local workers run: \`batch-infer resume ${result.jobId}${dataDirFlag(v["data-dir"])}\``,
        );
      } else {
        out(
          `  follow it with \`batch-infer status ${result.jobId}${v.backend ? ` --backend ${v.backend}` : ""}\``,
        );
      }
    }
    return 0;
  });
}

async function cmdRerun(v: Values, jobId: string | undefined): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("rerun needs a JOB_ID (see `batch-infer jobs`)");
  if (!v.failed) return rerunAsNew(v, jobId);
  const dataDir = v["data-dir"] ?? ".batch-infer";
  const { job, partitions } = await withPipeline(v, (p) => rerunFailedPartitions(p, jobId));
  out(`rerunning partitions ${partitions.join(", ")} of ${jobId} (run ${job.runAttempt})`);
  if (backendOf(v) === "oci") {
    out("  re-enqueued on OCI Queue: the workers on OKE pick them up (the scaler sizes the pool)");
    return 0;
  }
  // Drive this job, by id, to completion with the local pool (its input and model are the job's).
  const log = createLogger({ level: (v["log-level"] as LogLevel | undefined) ?? "warn" });
  const reporter = createProgressReporter(process.stderr);
  const result = await resumeLocalJob({
    dataDir,
    jobId,
    workers: parsePositiveInt("workers", v.workers) ?? 2,
    intraOpThreads: parsePositiveInt("threads", v.threads) ?? 1,
    log,
    onProgress: (pr) => reporter.update(pr),
    onWorkerOutput: (line) => reporter.log(line),
  });
  reporter.done(result.progress);
  out(
    `job ${jobId} ${result.job.state}${result.job.error ? `: ${forUser(result.job.error)}` : ""}`,
  );
  const place = placeFor(v, dataDir);
  if (place) {
    for (const placedPath of await place(result.job)) out(`  placed    ${placedPath}`);
  }
  return exitCodeForState(result.job.state);
}

/** The flags the local drive commands (resume, rerun as a new job) read. */
function driveFlags(v: Values): DriveFlags {
  requireDataDir(v["data-dir"] ?? ".batch-infer");
  if (v.output) checkOutputDir(v.output);
  return {
    dataDir: v["data-dir"] ?? ".batch-infer",
    workers: v.workers,
    threads: v.threads,
    logLevel: v["log-level"] as LogLevel | undefined,
    json: v.json,
  };
}

/** `--output DIR`: independent copies of the job's outputs, refreshed after every completion. */
function placeFor(v: Values, dataDir: string) {
  const dir = v.output;
  return dir
    ? async (job: JobRecord) => Object.values((await placeOutputs(job, dataDir, dir)) ?? {})
    : undefined;
}

async function rerunAsNew(v: Values, jobId: string): Promise<number> {
  if (backendOf(v) === "oci") {
    throw new InvalidArgumentError(
      `on OCI, score a job's input again with the splitter: echo '{"rerun":"${jobId}"}' | fn invoke <app> <prefix>-splitter (see README, Manual runs)`,
    );
  }
  const flags = driveFlags(v);
  return cmdRerunAsNew({ ...flags, runTag: v["run-tag"] }, jobId, placeFor(v, flags.dataDir));
}

async function resume(v: Values, jobId: string | undefined): Promise<number> {
  if (backendOf(v) === "oci") {
    throw new InvalidArgumentError(
      "resume drives a job with local workers; on OCI the workers on OKE score every job (see `batch-infer status JOB_ID --backend oci`)",
    );
  }
  const flags = driveFlags(v);
  return cmdResume(flags, jobId, placeFor(v, flags.dataDir));
}

/** Relative paths on the command line mean from where the user stands (see paths.ts). */
function resolvePaths(v: Values, command: string): void {
  for (const flag of ["output", "data-dir", "onnx", "sample", "out"] as const) {
    const value = v[flag];
    if (value !== undefined) v[flag] = userPath(value);
  }
  v["data-dir"] ??= userPath(".batch-infer");
  if (v.model !== undefined && isLocalModelPath(v.model)) v.model = userPath(v.model);
  // `submit --input` names BUCKET/OBJECT, not a file.
  if (v.input !== undefined && command !== "submit") v.input = userPath(v.input);
  // `refresh --corpus` is a directory, or BUCKET/PREFIX/ (which is left as it is).
  if (v.corpus !== undefined && command === "refresh" && v.backend !== "oci") {
    const local = userPath(v.corpus);
    if (existsSync(local) || !/^[A-Za-z0-9][A-Za-z0-9._-]*\//.test(v.corpus)) v.corpus = local;
  }
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Run the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, VALUE_OPTIONS),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(
      `batch-infer: ${(err as Error).message}\nRun \`batch-infer --help\` for usage.\n`,
    );
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, arg] = positionals;
  if (values.help || !command) {
    // `batch-infer run --help` and `batch-infer help run` show the command's own page.
    const topic = command === "help" ? arg : command;
    process.stdout.write((topic && commandUsage(topic)) || overviewUsage());
    return command || values.help ? 0 : 2;
  }
  if (command === "help") {
    process.stdout.write((arg && commandUsage(arg)) || overviewUsage());
    return 0;
  }
  try {
    const level = parseLogLevel(values["log-level"]);
    // Workers read LOG_LEVEL: --log-level reaches them too.
    if (level) process.env.LOG_LEVEL = level;
    resolvePaths(values, command);
    switch (command) {
      case "run":
        return await cmdRun(values);
      case "submit":
        return await cmdSubmit(values);
      case "status":
        return await cmdStatus(values, arg);
      case "jobs":
        return await cmdJobs(values);
      case "events":
        return await cmdEvents(values);
      case "rerun":
        return await cmdRerun(values, arg);
      case "verify":
        return await cmdVerify(values, arg);
      case "resume":
        return await resume(values, arg);
      case "init-model":
        return await cmdInitModel(values);
      case "refresh":
        return await cmdRefresh({
          corpus: values.corpus,
          model: values.model,
          watch: values.watch,
          backend: backendOf(values),
          dataDir: values["data-dir"] ?? ".batch-infer",
          outputBucket: values["output-bucket"],
          outputPrefix: values["output-prefix"],
          workers: values.workers,
          threads: values.threads,
          checkpointEvery: values["checkpoint-every"],
          partitionRecords: values["partition-records"],
          visibility: values.visibility,
          maxAttempts: values["max-attempts"],
          logLevel: values["log-level"] as LogLevel | undefined,
          json: values.json,
        });
      default:
        process.stderr.write(
          `batch-infer: unknown command "${command}" (commands: ${COMMAND_NAMES.join(", ")})\nRun \`batch-infer --help\` for usage.\n`,
        );
        return 2;
    }
  } catch (err) {
    if (err instanceof PipelineError) {
      process.stderr.write(`batch-infer: error: ${forUser(err.message)}\n`);
      return exitCodeForError(err);
    }
    throw err;
  }
}

// Through the package's bin (`npx batch-infer`, `npm link`) argv[1] is a symlink named batch-infer.
const invokedDirectly = process.argv[1] && /(cli|main)\.(ts|js)$/.test(realPath(process.argv[1]));
if (invokedDirectly) {
  // Exit once stdout and stderr are flushed: on a pipe the last writes may still be
  // queued (a 64 KiB pipe buffer), and process.exit would drop them.
  const exit = (code: number) =>
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  main(process.argv.slice(2)).then(
    (code) => exit(code),
    (err: unknown) => {
      process.stderr.write(`batch-infer: internal error: ${(err as Error).stack ?? String(err)}\n`);
      exit(1);
    },
  );
}
