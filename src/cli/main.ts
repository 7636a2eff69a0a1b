#!/usr/bin/env node
import { existsSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { InvalidArgumentError, NotFoundError, PipelineError } from "../core/errors.ts";
import { createLogger, type LogLevel } from "../core/log.ts";
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
import { thousands } from "../core/numbers.ts";
import type { JobRecord } from "../core/records.ts";
import { TERMINAL_JOB_STATES } from "../core/records.ts";
import { rerunFailedPartitions } from "../pipeline/rerun.ts";
import { splitJob } from "../pipeline/splitter.ts";
import { verifyJob } from "../pipeline/verify.ts";
import { backendFromEnv, type OpenPipeline, openPipelineFromEnv } from "../runner/backend.ts";
import {
  type JobProgress,
  resumeLocalJob,
  runLocalJob,
  summarize,
} from "../runner/local-runner.ts";
import { localPaths } from "../runner/local-stores.ts";
import {
  joinNegativeValues,
  parseCount,
  parseDelimiter,
  parseFraction,
  parseInputFormat,
  parseLogLevel,
  parsePort,
  parsePositiveInt,
  parseSize,
} from "./args.ts";
import { startForeground } from "./foreground.ts";
import { cmdInitModel } from "./init-model.ts";
import { cmdRerunAsNew, cmdResume, type DriveFlags, idleJobHint } from "./job-commands.ts";
import { exitCodeForError, exitCodeForState, forUser, resolveEventType } from "./messages.ts";
import {
  checkOutputDir,
  dataDirFlag,
  isLocalModelPath,
  requireDataDir,
  requireFile,
  requireFileOrDirectory,
  userPath,
} from "./paths.ts";
import { type PlacedOutputs, placeOutputs } from "./place-outputs.ts";
import { compactNumber, createProgressReporter, duration, progressLine } from "./progress.ts";
import { cmdRefresh } from "./refresh-command.ts";
import { COMMAND_NAMES, commandUsage, overviewUsage } from "./usage.ts";

const OPTIONS = {
  input: { type: "string" },
  format: { type: "string" },
  delimiter: { type: "string" },
  model: { type: "string" },
  output: { type: "string" },
  "output-format": { type: "string" },
  workers: { type: "string" },
  "partition-size": { type: "string" },
  "checkpoint-every": { type: "string" },
  "batch-size": { type: "string" },
  "max-errors": { type: "string" },
  "max-error-rate": { type: "string" },
  "max-attempts": { type: "string" },
  key: { type: "string" },
  threads: { type: "string" },
  visibility: { type: "string" },
  "metrics-port": { type: "string" },
  "data-dir": { type: "string" },
  backend: { type: "string" },
  "output-bucket": { type: "string" },
  "log-level": { type: "string" },
  json: { type: "boolean" },
  failed: { type: "boolean" },
  job: { type: "string" },
  type: { type: "string" },
  help: { type: "boolean", short: "h" },
  "run-tag": { type: "string" },
  onnx: { type: "string" },
  sample: { type: "string" },
  out: { type: "string" },
  features: { type: "string" },
  name: { type: "string" },
  force: { type: "boolean" },
  corpus: { type: "string" },
  watch: { type: "boolean" },
  "output-prefix": { type: "string" },
  "partition-records": { type: "string" },
} as const;

/** Options that take a value (a negative number after one is its value, not a flag). */
const VALUE_OPTIONS: ReadonlySet<string> = new Set(
  Object.entries(OPTIONS)
    .filter(([, o]) => o.type === "string")
    .map(([k]) => k),
);

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function objectPath(dataDir: string, bucket: string, object: string): string {
  return path.join(localPaths(dataDir).buckets, bucket, object);
}

/** `run`'s default partition size (16 MiB). */
const LOCAL_PARTITION_BYTES = 16 * 1024 * 1024;

/** How to read the input, from `--format` and `--delimiter` (run and submit). */
function inputHints(v: Values) {
  const format = parseInputFormat(v.format);
  const delimiter = parseDelimiter(v.delimiter);
  return {
    ...(format !== undefined ? { format } : {}),
    ...(delimiter !== undefined ? { delimiter } : {}),
  };
}

/** The job spec fields the run/submit options set. */
function specFromOptions(v: Values, outputBucket: string) {
  const format = v["output-format"];
  if (format !== undefined && format !== "jsonl" && format !== "csv" && format !== "parquet") {
    throw new InvalidArgumentError(
      `--output-format must be jsonl, csv or parquet, got "${format}"`,
    );
  }
  const maxErrors = parseCount("max-errors", v["max-errors"]);
  const maxRate = parseFraction("max-error-rate", v["max-error-rate"]);
  const partitionBytes = v["partition-size"]
    ? parseSize("partition-size", v["partition-size"])
    : undefined;
  const spec = {
    output: {
      bucket: outputBucket,
      ...(format ? { format: format as "jsonl" | "csv" | "parquet" } : {}),
    },
    ...(partitionBytes !== undefined ? { partitionBytes } : {}),
    ...(v["checkpoint-every"]
      ? { checkpointEvery: parsePositiveInt("checkpoint-every", v["checkpoint-every"]) }
      : {}),
    ...(v["batch-size"] ? { batchSize: parsePositiveInt("batch-size", v["batch-size"]) } : {}),
    ...(v["max-attempts"]
      ? { maxAttempts: parsePositiveInt("max-attempts", v["max-attempts"]) }
      : {}),
    ...(v.visibility ? { visibilitySeconds: parsePositiveInt("visibility", v.visibility) } : {}),
    ...(v.key
      ? {
          keyColumns: v.key
            .split(",")
            .map((k) => k.trim())
            .filter(Boolean),
        }
      : {}),
    errorThreshold: {
      ...(maxErrors !== undefined ? { maxCount: maxErrors } : {}),
      ...(maxRate !== undefined ? { maxFraction: maxRate } : {}),
    },
  };
  return spec;
}

async function cmdRun(v: Values): Promise<number> {
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

/** The backend the command talks to: --backend, else BATCH_INFER_BACKEND, else the embedded default. */
function backendOf(v: Values) {
  return backendFromEnv({ BATCH_INFER_BACKEND: v.backend ?? process.env.BATCH_INFER_BACKEND });
}

async function withPipeline<T>(v: Values, fn: (p: OpenPipeline) => Promise<T>): Promise<T> {
  if (backendOf(v) === "local") requireDataDir(v["data-dir"] ?? ".batch-infer");
  const log = createLogger({ level: (v["log-level"] as LogLevel | undefined) ?? "warn" });
  const p = await openPipelineFromEnv(
    {
      ...process.env,
      BATCH_INFER_BACKEND: backendOf(v),
      BATCH_INFER_DATA_DIR: v["data-dir"] ?? ".batch-infer",
    },
    { log },
  );
  try {
    return await fn(p);
  } finally {
    p.close();
  }
}

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

async function cmdStatus(v: Values, jobId: string | undefined): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("status needs a JOB_ID (see `batch-infer jobs`)");
  return withPipeline(v, async (p) => {
    const row = await p.checkpoints.getJob(jobId);
    if (!row)
      throw new NotFoundError(
        `no job ${jobId} in ${path.resolve(v["data-dir"] ?? ".batch-infer")}: list jobs with \`batch-infer jobs\``,
      );
    const job = row.value;
    const parts = await p.checkpoints.readPartitions(jobId);
    const created = Date.parse(job.createdAt);
    const end = TERMINAL_JOB_STATES.includes(job.state) ? Date.parse(job.updatedAt) : Date.now();
    const prog = summarize(job, parts, created, end, 0);
    // Partitions leased right now = workers at work; with none, an ETA would never arrive.
    // (On OCI, GetStats needs `read queues`: without it, status shows what it showed before.)
    const leased = TERMINAL_JOB_STATES.includes(job.state)
      ? 0
      : await p.queue.stats().then(
          (st) => st.inFlight,
          () => undefined,
        );
    const idle =
      leased === undefined
        ? undefined
        : idleJobHint(job, leased, p.backend, dataDirFlag(v["data-dir"]));
    if (leased !== undefined) prog.workers = leased;
    if (idle) {
      delete prog.etaSeconds;
      prog.rate = 0;
    }
    if (v.json) {
      out(JSON.stringify({ job, progress: prog, partitions: parts }, null, 2));
      return 0;
    }
    out(`job ${job.jobId}  ${job.state}  run ${job.runAttempt}`);
    out(
      `  input  ${job.input.bucket}/${job.input.object} (${compactNumber(job.input.size)}B, etag ${job.input.etag})`,
    );
    out(`  model  ${job.model.name}@${job.model.version} sha256 ${job.model.sha256.slice(0, 12)}`);
    out(`  ${progressLine(prog, 20)}`);
    if (idle) out(`  ${idle}`);
    if (job.error) out(`  ${forUser(job.error)}`);
    out("");
    out("  part  state     records    bad  progress  attempts  last");
    for (const x of parts) {
      const span = x.end - x.start;
      const pct =
        x.state === "done"
          ? 100
          : span === 0
            ? 0
            : ((Math.min(x.end, x.offset) - x.start) / span) * 100;
      const last = x.attempts.at(-1);
      const lastText = x.lastError ?? (last ? `${last.worker} ${last.outcome ?? "running"}` : "");
      out(
        `  ${String(x.index).padStart(4)}  ${x.state.padEnd(8)} ${String(x.records).padStart(8)} ${String(x.errors).padStart(6)}  ${pct.toFixed(1).padStart(6)}%  ${String(x.attempts.length).padStart(8)}  ${lastText.slice(0, 80)}`,
      );
    }
    return 0;
  });
}

async function cmdJobs(v: Values): Promise<number> {
  return withPipeline(v, async (p) => {
    const jobs = (await p.checkpoints.listJobs({ limit: 50 })).map((r) => r.value);
    if (v.json) {
      out(JSON.stringify(jobs, null, 2));
      return 0;
    }
    if (jobs.length === 0)
      out("no jobs yet: start one with `batch-infer run --input FILE --model DESCRIPTOR.json`");
    for (const j of jobs) {
      out(
        `${j.jobId}  ${j.state.padEnd(21)} ${j.createdAt}  ${j.input.bucket}/${j.input.object}  ${j.model.name}@${j.model.version}  ${j.result ? `${j.result.records} records` : ""}`,
      );
    }
    return 0;
  });
}

async function cmdEvents(v: Values): Promise<number> {
  return withPipeline(v, async (p) => {
    // On OCI this reads the completion stream from its oldest retained message.
    const events = await p.eventLog.read({
      ...(v.job ? { jobId: v.job } : {}),
      ...(v.type ? { eventType: resolveEventType(v.type) } : {}),
    });
    for (const e of events) {
      out(v.json ? JSON.stringify(e) : `${e.eventTime}  ${e.eventType}  ${JSON.stringify(e.data)}`);
    }
    return 0;
  });
}

async function cmdVerify(v: Values, jobId: string | undefined): Promise<number> {
  if (!jobId) throw new InvalidArgumentError("verify needs a JOB_ID (see `batch-infer jobs`)");
  return withPipeline(v, async (p) => {
    const row = await p.checkpoints.getJob(jobId);
    if (!row) throw new NotFoundError(`no job ${jobId}: list jobs with \`batch-infer jobs\``);
    const report = await verifyJob(p, row.value);
    if (v.json) {
      out(JSON.stringify(report, null, 2));
    } else {
      for (const c of report.checks) out(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
      out(
        report.ok
          ? `verified: each of the ${thousands(report.inputRecords)} input records is in the output exactly once (${thousands(report.scored)} scored, ${thousands(report.errors)} in errors${report.inFailedPartitions ? `, ${thousands(report.inFailedPartitions)} in failed partitions` : ""})`
          : `NOT verified: ${report.checks.find((c) => !c.ok)?.detail ?? "see above"}`,
      );
    }
    return report.ok ? 0 : 1;
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
