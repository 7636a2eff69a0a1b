import jobSpecSchema from "../../events/schemas/job-spec.schema.json" with { type: "json" };
import { InvalidArgumentError } from "./errors.ts";
import type { InputFormat, JobSpec } from "./records.ts";
import { compileValidator } from "./schema.ts";

/** A job spec as a user writes it: everything but input, output bucket and model is optional. */
export type JobSpecInput = Omit<
  Partial<JobSpec>,
  "input" | "output" | "model" | "errorThreshold"
> & {
  input: { bucket: string; object: string; format?: InputFormat };
  output: { bucket: string; prefix?: string; format?: JobSpec["output"]["format"] };
  model: { descriptor: string };
  errorThreshold?: JobSpec["errorThreshold"];
};

const validateSpec = compileValidator<JobSpecInput>("job spec", "INVALID_SPEC", jobSpecSchema);

/** The input format implied by an object name, or undefined. */
export function formatFromName(name: string): InputFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  return undefined;
}

/**
 * Validate a job spec against events/schemas/job-spec.schema.json and apply
 * defaults. Throws ValidationError (code INVALID_SPEC) naming the failing path.
 */
export function resolveJobSpec(raw: unknown): JobSpec {
  // Validate a copy: Ajv fills defaults in place and callers keep their object.
  const spec = validateSpec(structuredClone(raw));
  const format = spec.input.format ?? formatFromName(spec.input.object);
  if (!format) {
    throw new InvalidArgumentError(
      `cannot tell the input format of "${spec.input.object}": name it .csv or .jsonl, or set input.format`,
    );
  }
  return {
    ...spec,
    input: { ...spec.input, format },
    output: {
      bucket: spec.output.bucket,
      prefix: (spec.output.prefix ?? "jobs").replace(/\/+$/, ""),
      format: spec.output.format ?? "jsonl",
    },
    partitionBytes: spec.partitionBytes ?? 67108864,
    checkpointEvery: spec.checkpointEvery ?? 50000,
    batchSize: spec.batchSize ?? 4096,
    errorThreshold: spec.errorThreshold ?? {},
    maxAttempts: spec.maxAttempts ?? 3,
    visibilitySeconds: spec.visibilitySeconds ?? 60,
  } as JobSpec;
}
