/**
 * The command line's options, and what several commands build from them: the job
 * spec fields, the input hints, the backend and the open pipeline.
 */
import path from "node:path";
import type { parseArgs } from "node:util";
import { InvalidArgumentError } from "../core/errors.ts";
import { createLogger, type LogLevel } from "../core/log.ts";

import { backendFromEnv, type OpenPipeline, openPipelineFromEnv } from "../runner/backend.ts";
import { localPaths } from "../runner/local-stores.ts";
import {
  parseCount,
  parseDelimiter,
  parseFraction,
  parseInputFormat,
  parsePositiveInt,
  parseSize,
} from "./args.ts";
import { requireDataDir } from "./paths.ts";

/** Every option of every command (parseArgs); each command reads the ones it knows. */
export const OPTIONS = {
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
export const VALUE_OPTIONS: ReadonlySet<string> = new Set(
  Object.entries(OPTIONS)
    .filter(([, o]) => o.type === "string")
    .map(([k]) => k),
);

/** The parsed options. */
export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

/** A line on stdout (what a command prints for the user or as JSON). */
export function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** Where an object of the embedded store lies on disk. */
export function objectPath(dataDir: string, bucket: string, object: string): string {
  return path.join(localPaths(dataDir).buckets, bucket, object);
}

/** `run`'s default partition size (16 MiB). */
export const LOCAL_PARTITION_BYTES = 16 * 1024 * 1024;

/** How to read the input, from `--format` and `--delimiter` (run and submit). */
export function inputHints(v: Values) {
  const format = parseInputFormat(v.format);
  const delimiter = parseDelimiter(v.delimiter);
  return {
    ...(format !== undefined ? { format } : {}),
    ...(delimiter !== undefined ? { delimiter } : {}),
  };
}

/** The job spec fields the run/submit options set. */
export function specFromOptions(v: Values, outputBucket: string) {
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

/** The backend the command talks to: --backend, else BATCH_INFER_BACKEND, else the embedded default. */
export function backendOf(v: Values) {
  return backendFromEnv({ BATCH_INFER_BACKEND: v.backend ?? process.env.BATCH_INFER_BACKEND });
}

/** Run `fn` with the pipeline of the chosen backend open, and close it after. */
export async function withPipeline<T>(v: Values, fn: (p: OpenPipeline) => Promise<T>): Promise<T> {
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
