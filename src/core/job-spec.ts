import jobSpecSchema from "../../events/schemas/job-spec.schema.json" with { type: "json" };
import { InvalidArgumentError, UnsafePathError, ValidationError } from "./errors.ts";
import type { CsvDelimiter, InputFormat, JobSpec } from "./records.ts";
import { compileValidator } from "./schema.ts";

/** A job spec as a user writes it: everything but input, output bucket and model is optional. */
export type JobSpecInput = Omit<
  Partial<JobSpec>,
  "input" | "output" | "model" | "errorThreshold"
> & {
  /**
   * One object, or every object under a prefix (`prefix`; format "objects"). Format
   * "tsv" is CSV with a tab delimiter; `delimiter` is a CSV's field delimiter.
   */
  input: {
    bucket: string;
    object?: string;
    prefix?: string;
    format?: InputFormat | "tsv";
    delimiter?: CsvDelimiter;
  };
  output: { bucket: string; prefix?: string; format?: JobSpec["output"]["format"] };
  model: { descriptor: string };
  errorThreshold?: JobSpec["errorThreshold"];
};

/** Largest job spec accepted, as JSON (a real one is a few hundred bytes). */
export const MAX_SPEC_BYTES = 64 * 1024;
/** Deepest nesting a job spec may have (a real one nests two levels). */
export const MAX_SPEC_DEPTH = 8;

const validateSpec = compileValidator<JobSpecInput>("job spec", "INVALID_SPEC", jobSpecSchema);

/** Size and nesting bounds for {@link checkJsonLimits}. */
export interface JsonLimits {
  /** Most bytes the value may take as JSON (strings counted as UTF-8, escapes aside). */
  maxBytes: number;
  /** Most levels of objects/arrays inside the top-level value. */
  maxDepth: number;
}

/**
 * Reject a value that is too big, too deeply nested, or not JSON data (functions,
 * symbols, bigints) before anything clones, serializes or validates it: those
 * recurse natively and a hostile payload would throw RangeError instead of a
 * ValidationError. Iterative, and stops as soon as a limit is crossed.
 * `what` and `code` shape the error like the schema's own (schemaPath "#").
 */
export function checkJsonLimits(
  what: string,
  code: "INVALID_SPEC" | "INVALID_EVENT",
  value: unknown,
  limits: JsonLimits,
): void {
  const fail = (instancePath: string, detail: string): never => {
    const at = instancePath === "" ? "(top level)" : instancePath;
    throw new ValidationError(code, `${what} invalid at ${at}: ${detail} (schema #)`, {
      schemaPath: "#",
      instancePath,
    });
  };
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: "", depth: 0 }];
  let bytes = 0;
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const v = item.value;
    if (v === null || v === undefined || typeof v === "boolean") bytes += 5;
    else if (typeof v === "number") bytes += 24;
    else if (typeof v === "string") {
      // A string over the limit in UTF-16 units is over it in bytes too; skip measuring it.
      bytes += v.length > limits.maxBytes ? v.length : Buffer.byteLength(v) + 2;
    } else if (typeof v === "object") {
      if (item.depth >= limits.maxDepth) {
        fail(item.path, `nests deeper than ${limits.maxDepth} levels`);
      }
      const keys = Array.isArray(v) ? null : Object.keys(v);
      const entries = keys ?? (v as unknown[]);
      bytes += 2 + entries.length;
      if (bytes > limits.maxBytes) break;
      if (keys) {
        for (const k of keys) {
          bytes += Buffer.byteLength(k) + 3;
          const path = `${item.path}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
          stack.push({ value: (v as Record<string, unknown>)[k], path, depth: item.depth + 1 });
        }
      } else {
        (v as unknown[]).forEach((e, i) => {
          stack.push({ value: e, path: `${item.path}/${i}`, depth: item.depth + 1 });
        });
      }
    } else {
      fail(item.path, `is a ${typeof v}, which is not JSON data`);
    }
    if (bytes > limits.maxBytes) break;
  }
  if (bytes > limits.maxBytes) {
    fail("", `is larger than ${limits.maxBytes} bytes as JSON: put large data in the object store`);
  }
}

/** The input format implied by an object name, or undefined (.tsv and .tab are CSV). */
export function formatFromName(name: string): InputFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith(".csv") || lower.endsWith(".tsv") || lower.endsWith(".tab")) return "csv";
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".parquet") || lower.endsWith(".pq")) return "parquet";
  return undefined;
}

/** The CSV delimiter an object name implies: a tab for .tsv and .tab, else undefined. */
export function delimiterFromName(name: string): CsvDelimiter | undefined {
  const lower = name.toLowerCase();
  return lower.endsWith(".tsv") || lower.endsWith(".tab") ? "\t" : undefined;
}

/** True for a gzip-compressed object's name (`.gz`). */
export function isGzipName(name: string): boolean {
  return name.toLowerCase().endsWith(".gz");
}

/**
 * Why a gzip object can't be a job's input here, and what to do instead: a gzip
 * stream can't be split by byte ranges, and the splitter can't decompress a large
 * object within a function's time limit (README, "Compressed input").
 */
export function gzipInputRefusal(bucket: string, object: string): string {
  return `input object ${bucket}/${object} is gzip-compressed: a gzip stream can't be split into byte ranges, and the splitter can't decompress a large object within its time limit. Upload it decompressed (\`gunzip -k\`, then upload the .csv/.jsonl), or score the file with \`batch-infer run --input FILE.gz\`, which decompresses it once while staging`;
}

/** The name a reader sees for a format hint: `.gz` taken off (`x.csv.gz` reads as `x.csv`). */
export function withoutGzipSuffix(name: string): string {
  return isGzipName(name) ? name.slice(0, -3) : name;
}

/** Why `name` could address something outside its bucket, or undefined when it can't. */
function unsafeNameReason(name: string, strictSegments: boolean): string | undefined {
  if (name.includes("\0")) return "it contains a NUL character";
  if (name.includes("\\")) return "it contains a backslash";
  if (name.startsWith("/")) return "it is absolute (starts with '/')";
  const segments = name.split("/");
  // A prefix's trailing slashes are dropped when it is resolved.
  if (strictSegments) while (segments.length > 1 && segments.at(-1) === "") segments.pop();
  for (const segment of segments) {
    if (segment === "..") return "it has a '..' segment";
    // Job outputs must be nameable in every store, the local one included.
    if (strictSegments && (segment === "." || segment === "")) {
      return "it has an empty or '.' segment";
    }
  }
  return undefined;
}

/**
 * The path-like fields of a raw spec: object names and the output prefix stay in
 * their bucket, bucket names are names, and the model location has no NUL byte.
 * Checked before the schema so that an escape is an UnsafePathError, not a
 * generic pattern mismatch; the details carry the schema path all the same.
 */
function checkSpecPaths(raw: unknown): void {
  if (raw === null || typeof raw !== "object") return;
  const spec = raw as Record<string, unknown>;
  const field = (section: string, key: string): unknown => {
    const s = spec[section];
    return s !== null && typeof s === "object" ? (s as Record<string, unknown>)[key] : undefined;
  };
  const reject = (instancePath: string, schemaPath: string, value: string, why: string): never => {
    const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
    throw new UnsafePathError(
      `job spec invalid at ${instancePath}: ${shown} would escape its bucket or folder: ${why} (schema ${schemaPath})`,
      { details: { schemaPath, instancePath } },
    );
  };
  const object = field("input", "object");
  if (typeof object === "string") {
    const why = unsafeNameReason(object, false);
    if (why) reject("/input/object", "#/$defs/objectName/pattern", object, why);
  }
  const inputPrefix = field("input", "prefix");
  if (typeof inputPrefix === "string" && inputPrefix !== "") {
    const why = unsafeNameReason(inputPrefix, true);
    if (why) {
      reject("/input/prefix", "#/properties/input/properties/prefix/pattern", inputPrefix, why);
    }
  }
  const prefix = field("output", "prefix");
  if (typeof prefix === "string" && prefix !== "") {
    const why = unsafeNameReason(prefix, true);
    if (why) {
      reject("/output/prefix", "#/properties/output/properties/prefix/pattern", prefix, why);
    }
  }
  for (const section of ["input", "output"]) {
    const bucket = field(section, "bucket");
    if (typeof bucket === "string" && (/[/\\\0]/.test(bucket) || /^\.\.?$/.test(bucket))) {
      reject(
        `/${section}/bucket`,
        "#/$defs/bucket/pattern",
        bucket,
        "a bucket name is a name, not a path",
      );
    }
  }
  const descriptor = field("model", "descriptor");
  if (typeof descriptor === "string" && descriptor.includes("\0")) {
    reject(
      "/model/descriptor",
      "#/properties/model/properties/descriptor",
      descriptor,
      "it contains a NUL character",
    );
  }
}

/** Defaults that depend on the model's task (an image is far more work than a row). */
export interface TaskSpecDefaults {
  checkpointEvery?: number;
  batchSize?: number;
}

/** The one-object or prefix form of the input, or a ValidationError saying which to give. */
function checkInputForm(raw: unknown): void {
  const input = (raw as { input?: unknown } | null)?.input;
  if (input === null || typeof input !== "object") return; // the schema says what is missing
  const { object, prefix, format } = input as Record<string, unknown>;
  const fail = (detail: string, at = "/input") => {
    throw new ValidationError("INVALID_SPEC", `job spec invalid at ${at}: ${detail}`, {
      schemaPath: "#/properties/input/oneOf",
      instancePath: at,
    });
  };
  if (object === undefined && prefix === undefined) {
    fail(
      'needs "object" (one CSV, JSON Lines or Parquet object) or "prefix" (every object under it is a record: images, documents)',
    );
  }
  if (object !== undefined && prefix !== undefined) {
    fail('has both "object" and "prefix": give one');
  }
  if (prefix !== undefined && format !== undefined && format !== "objects") {
    fail(
      `format "${String(format)}" reads one object; a prefix is read as "objects"`,
      "/input/format",
    );
  }
  if (object !== undefined && format === "objects") {
    fail(
      'format "objects" reads every object under a prefix: give "prefix", not "object"',
      "/input/format",
    );
  }
}

/**
 * The input's format and CSV delimiter: set, or implied by the object's name (a
 * tab for .tsv). The delimiter is kept only when it is not a comma, so a spec that
 * spells out the default is the same job as one that doesn't.
 */
function resolveInput(input: JobSpecInput["input"]): JobSpec["input"] {
  const { delimiter: given, format: givenFormat, ...where } = input;
  const object = input.object ?? "";
  const fail = (at: "format" | "delimiter", detail: string): never => {
    throw new ValidationError("INVALID_SPEC", `job spec invalid at /input/${at}: ${detail}`, {
      schemaPath: `#/properties/input/properties/${at}`,
      instancePath: `/input/${at}`,
    });
  };
  let format: InputFormat | undefined =
    input.prefix !== undefined
      ? "objects"
      : givenFormat === "tsv"
        ? "csv"
        : // A delimiter says CSV when the name doesn't say anything (a .txt export).
          (givenFormat ?? formatFromName(object) ?? (given !== undefined ? "csv" : undefined));
  if (!format) {
    if (isGzipName(object)) {
      throw new InvalidArgumentError(gzipInputRefusal(input.bucket, object));
    }
    fail(
      "format",
      `cannot tell the input format of "${object}": name it .csv, .tsv, .jsonl or .parquet, or say it (--format csv|tsv|jsonl|parquet; input.format in a job spec)`,
    );
  }
  format = format as InputFormat;
  if (givenFormat === "tsv" && given !== undefined && given !== "\t") {
    fail(
      "delimiter",
      `format "tsv" is tab-separated; use format "csv" with delimiter ${JSON.stringify(given)}`,
    );
  }
  const delimiter =
    givenFormat === "tsv"
      ? "\t"
      : (given ?? (format === "csv" ? delimiterFromName(object) : undefined));
  if (given !== undefined && format !== "csv") {
    fail("delimiter", `a delimiter is for CSV input, and this input is ${format}`);
  }
  return {
    ...where,
    format,
    ...(delimiter !== undefined && delimiter !== "," ? { delimiter } : {}),
  };
}

/**
 * Validate a job spec against events/schemas/job-spec.schema.json and apply
 * defaults (`task`'s where it has its own). Throws ValidationError (code
 * INVALID_SPEC) naming the failing path and schema path, or UnsafePathError (with
 * the same details) for an object name, prefix or bucket that would escape its bucket.
 */
export function resolveJobSpec(raw: unknown, task: TaskSpecDefaults = {}): JobSpec {
  checkJsonLimits("job spec", "INVALID_SPEC", raw, {
    maxBytes: MAX_SPEC_BYTES,
    maxDepth: MAX_SPEC_DEPTH,
  });
  checkSpecPaths(raw);
  checkInputForm(raw);
  // Validate a copy: Ajv fills defaults in place and callers keep their object.
  const spec = validateSpec(structuredClone(raw));
  const input = resolveInput(spec.input);
  return {
    ...spec,
    input,
    output: {
      bucket: spec.output.bucket,
      prefix: (spec.output.prefix ?? "jobs").replace(/\/+$/, ""),
      format: spec.output.format ?? "jsonl",
    },
    partitionBytes: spec.partitionBytes ?? 67108864,
    checkpointEvery: spec.checkpointEvery ?? task.checkpointEvery ?? 50000,
    batchSize: spec.batchSize ?? task.batchSize ?? 4096,
    errorThreshold: spec.errorThreshold ?? {},
    maxAttempts: spec.maxAttempts ?? 3,
    visibilitySeconds: spec.visibilitySeconds ?? 60,
  } as JobSpec;
}
