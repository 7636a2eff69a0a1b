import { ConflictError, NotFoundError, PipelineError } from "../core/errors.ts";
import { deriveJobId } from "../core/ids.ts";
import { type JobSpecInput, resolveJobSpec } from "../core/job-spec.ts";
import type { InputIdentity, JobRecord, PartitionRecord } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import { checkColumns } from "../model/featurizer.ts";
import { parseCsvHeader } from "../records/csv-fields.ts";
import { readFirstLine } from "../records/header.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent, type ObjectEvent, parseObjectEvent } from "./events.ts";
import { taskMessage } from "./messages.ts";
import { outputColumns } from "./output-rows.ts";

/** Extra checks the splitter runs on the model before creating a job (e.g. an onnxruntime dry run). */
export type ModelCheck = (model: LoadedModel) => Promise<void>;

/** Splitter dependencies. */
export interface SplitterDeps extends PipelineDeps {
  checkModel?: ModelCheck;
  /** A job stuck in "splitting" longer than this is re-enqueued (its splitter died). */
  staleSplitMs?: number;
}

/** What the splitter did. */
export interface SplitResult {
  jobId: string;
  /** False when the job already existed (duplicate event or manual rerun of the same input). */
  created: boolean;
  state: JobRecord["state"];
  partitions: number;
}

// Largest CSV header we read; a header longer than this is almost surely not a header.
const MAX_HEADER_BYTES = 1024 * 1024;
const SEND_BATCH = 100;
/** Longest record unless the spec says otherwise. */
const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** Byte ranges of about `partitionBytes` covering [dataStart, size). */
export function planPartitions(
  dataStart: number,
  size: number,
  partitionBytes: number,
): { start: number; end: number }[] {
  const span = size - dataStart;
  if (span <= 0) return [];
  const n = Math.max(1, Math.ceil(span / partitionBytes));
  const ranges: { start: number; end: number }[] = [];
  for (let i = 0; i < n; i++) {
    ranges.push({
      start: dataStart + Math.floor((span * i) / n),
      end: dataStart + Math.floor((span * (i + 1)) / n),
    });
  }
  return ranges;
}

async function inspectInput(
  deps: SplitterDeps,
  bucket: string,
  object: string,
  format: InputIdentity["format"],
  maxRecordBytes: number,
): Promise<InputIdentity> {
  const info = await deps.store.head(bucket, object);
  if (!info) {
    throw new NotFoundError(
      `input object ${bucket}/${object} does not exist: upload it first or fix the name`,
    );
  }
  const base = { bucket, object, etag: info.etag, size: info.size, format };
  if (format === "jsonl" || info.size === 0) return { ...base, columns: [], dataStart: 0 };
  const stream = await deps.store.read(bucket, object, {
    start: 0,
    end: Math.min(info.size, MAX_HEADER_BYTES),
  });
  // RFC 4180: a quoted header name may hold a newline too.
  const first = await readFirstLine(stream, MAX_HEADER_BYTES, { records: "csv" });
  if (!first) return { ...base, columns: [], dataStart: 0 };
  return {
    ...base,
    columns: parseCsvHeader(first.line, 0, first.line.length),
    dataStart: first.dataStart,
    // Records are read as RFC 4180 records (newlines inside quotes), with one record
    // limit for every reader of the job: it decides where an unterminated one ends.
    csvRecords: { maxRecordBytes },
    headerLines: first.lines,
  };
}

/**
 * Create the job for `rawSpec` and enqueue its partitions. Reads only the
 * object's header, never the whole object. Idempotent: the job id is derived
 * from the input's etag, the model hash and the spec, so a repeated call (a
 * duplicate event) returns the existing job without enqueueing anything.
 */
export async function splitJob(deps: SplitterDeps, rawSpec: unknown): Promise<SplitResult> {
  const spec = resolveJobSpec(rawSpec);
  const model = await deps.loadModel(spec.model.descriptor);
  const input = await inspectInput(
    deps,
    spec.input.bucket,
    spec.input.object,
    spec.input.format,
    spec.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
  );
  if (input.size <= input.dataStart) {
    throw new PipelineError(
      "INVALID_ARGUMENT",
      `input object ${input.bucket}/${input.object} has no records (${input.size} bytes${input.dataStart > 0 ? ", a header only" : ""}): nothing to score`,
    );
  }
  const keyColumns = spec.keyColumns ?? model.descriptor.keyColumns ?? [];
  if (input.format === "csv") {
    if (input.columns.length === 0)
      throw new PipelineError("INVALID_ARGUMENT", "the CSV has no header line");
    checkColumns(model.descriptor, keyColumns, input.columns);
  }
  await deps.checkModel?.(model);

  const jobId = deriveJobId({
    bucket: input.bucket,
    object: input.object,
    etag: input.etag,
    modelSha256: model.identity.sha256,
    ...(model.identity.descriptorSha256
      ? { descriptorSha256: model.identity.descriptorSha256 }
      : {}),
    spec,
  });
  const keyNames = keyColumns.length > 0 ? keyColumns : ["_offset"];
  const ranges = planPartitions(input.dataStart, input.size, spec.partitionBytes);
  const nowIso = new Date(deps.now()).toISOString();
  const job: JobRecord = {
    jobId,
    state: "splitting",
    spec,
    input,
    model: model.identity,
    outputColumns: outputColumns(model.descriptor, keyNames),
    keyNames,
    partitionCount: ranges.length,
    createdAt: nowIso,
    updatedAt: nowIso,
    runAttempt: 1,
  };
  const log = deps.log.child({ jobId });
  const { created, row } = await deps.checkpoints.createJob(job);
  if (!created) {
    const stale =
      row.value.state === "splitting" &&
      deps.now() - Date.parse(row.value.updatedAt) > (deps.staleSplitMs ?? 5 * 60_000);
    if (!stale) {
      log.info("job already exists; nothing enqueued", { state: row.value.state });
      return {
        jobId,
        created: false,
        state: row.value.state,
        partitions: row.value.partitionCount,
      };
    }
    log.warn("job was left half-split; enqueueing its partitions again");
  }

  const partitions: PartitionRecord[] = ranges.map((r, index) => ({
    jobId,
    index,
    start: r.start,
    end: r.end,
    state: "pending",
    epoch: 0,
    offset: r.start,
    records: 0,
    errors: 0,
    lines: 0,
    parts: [],
    attempts: [],
    updatedAt: nowIso,
  }));
  await deps.checkpoints.createPartitions(partitions);
  const tasks = partitions.map((p) =>
    taskMessage({ kind: "partition", jobId, partition: p.index }),
  );
  for (let i = 0; i < tasks.length; i += SEND_BATCH) {
    await deps.queue.send(tasks.slice(i, i + SEND_BATCH));
  }
  let current = row;
  for (;;) {
    try {
      const next: JobRecord = {
        ...current.value,
        state: "running",
        updatedAt: new Date(deps.now()).toISOString(),
      };
      current = await deps.checkpoints.updateJob(jobId, next, current.version);
      break;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const again = await deps.checkpoints.getJob(jobId);
      if (again?.value.state !== "splitting") break;
      current = again;
    }
  }
  await deps.events.publish([
    jobEvent(EVENT_TYPES.jobCreated, job, "1", {
      input: `${input.bucket}/${input.object}`,
      etag: input.etag,
      bytes: input.size,
      partitions: partitions.length,
      model: `${model.identity.name}@${model.identity.version}`,
    }),
  ]);
  log.info("job created", { partitions: partitions.length, bytes: input.size });
  return { jobId, created: true, state: current.value.state, partitions: partitions.length };
}

/**
 * Handle an OCI Events object upload: the event names the input; `defaults`
 * supply the rest of the job spec (model, output, options) from function config.
 */
export async function splitFromEvent(
  deps: SplitterDeps,
  rawEvent: unknown,
  defaults: Omit<JobSpecInput, "input">,
): Promise<SplitResult & { event: ObjectEvent }> {
  const event = parseObjectEvent(rawEvent);
  const result = await splitJob(deps, {
    ...defaults,
    input: { bucket: event.data.additionalDetails.bucketName, object: event.data.resourceName },
  });
  return { ...result, event };
}
