import { ConflictError } from "../core/errors.ts";
import { deriveJobId } from "../core/ids.ts";
import { type JobSpecInput, resolveJobSpec } from "../core/job-spec.ts";
import type { JobRecord, JobSpec, PartitionRecord } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import { inputLabel, type PlannedInput, sourceModule } from "../sources/registry.ts";
import { taskOf } from "../tasks/registry.ts";
import type { PipelineDeps } from "./deps.ts";
import { EVENT_TYPES, jobEvent, type ObjectEvent, parseObjectEvent } from "./events.ts";
import { taskMessage } from "./messages.ts";

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

const SEND_BATCH = 100;

/** What a caller that planned the input itself gives {@link splitJob}. */
export interface SplitOptions {
  /**
   * The input, planned by the caller instead of the input kind (a corpus refresh lists
   * the prefix itself and writes the manifest of only the documents to embed).
   */
  planned?: (spec: JobSpec) => Promise<PlannedInput>;
  /** The corpus refresh the job belongs to (JobRecord.refresh). */
  refresh?: JobRecord["refresh"];
}

/** Byte ranges of a CSV/JSON Lines object (kept here for callers of the splitter). */
export { planPartitions } from "../sources/line-kind.ts";

/**
 * Create the job for `rawSpec` and enqueue its partitions. Reads only the
 * object's header, never the whole object. Idempotent: the job id is derived
 * from the input's etag, the model hash and the spec, so a repeated call (a
 * duplicate event) returns the existing job without enqueueing anything.
 */
export async function splitJob(
  deps: SplitterDeps,
  rawSpec: unknown,
  options: SplitOptions = {},
): Promise<SplitResult> {
  const model = await deps.loadModel(resolveJobSpec(rawSpec).model.descriptor);
  const task = taskOf(model);
  const spec = resolveJobSpec(rawSpec, task.specDefaults);
  task.checkInput(spec.input.format);
  // The input kind plans partitions (a header, a footer, or a listing into a manifest).
  const planned = options.planned
    ? await options.planned(spec)
    : await sourceModule(spec.input.format).plan(deps.store, spec, task.neededColumns(spec));
  const input = planned.input;
  let plan: ReturnType<typeof task.plan>;
  try {
    plan = task.plan(spec, planned);
    await deps.checkModel?.(model);
  } catch (err) {
    await planned.discard().catch(() => undefined);
    throw err;
  }

  const jobId = deriveJobId({
    ...planned.identity,
    modelSha256: model.identity.sha256,
    ...(model.identity.descriptorSha256
      ? { descriptorSha256: model.identity.descriptorSha256 }
      : {}),
    spec,
  });
  const { keyNames } = plan;
  const ranges = planned.ranges;
  const nowIso = new Date(deps.now()).toISOString();
  const job: JobRecord = {
    jobId,
    state: "splitting",
    spec,
    input,
    model: model.identity,
    outputColumns: plan.columns.map((c) => c.name),
    outputTypes: plan.columns.map((c) => c.type),
    keyNames,
    task: model.kind,
    partitionCount: ranges.length,
    createdAt: nowIso,
    updatedAt: nowIso,
    runAttempt: 1,
    ...(options.refresh ? { refresh: options.refresh } : {}),
  };
  const log = deps.log.child({ jobId });
  const { created, row } = await deps.checkpoints.createJob(job);
  // A job that already existed has its own manifest (if any): this listing is a copy.
  if (!created) await planned.discard().catch(() => undefined);
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
      input: inputLabel(input),
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
 * The job spec fields an upload event doesn't carry: model, output, options, and how
 * to read the object when its name doesn't say (`input.format`, `input.delimiter`).
 */
export type EventJobDefaults = Omit<JobSpecInput, "input"> & {
  input?: Pick<JobSpecInput["input"], "format" | "delimiter">;
};

/**
 * Handle an OCI Events object upload: the event names the input; `defaults`
 * supply the rest of the job spec (model, output, options) from function config.
 */
export async function splitFromEvent(
  deps: SplitterDeps,
  rawEvent: unknown,
  defaults: EventJobDefaults,
): Promise<SplitResult & { event: ObjectEvent }> {
  const event = parseObjectEvent(rawEvent);
  const { format, delimiter } = defaults.input ?? {};
  const result = await splitJob(deps, {
    ...defaults,
    input: {
      bucket: event.data.additionalDetails.bucketName,
      object: event.data.resourceName,
      ...(format !== undefined ? { format } : {}),
      ...(delimiter !== undefined ? { delimiter } : {}),
    },
  });
  return { ...result, event };
}
