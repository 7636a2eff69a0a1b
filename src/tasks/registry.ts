/**
 * Task kinds: what the pipeline needs from each kind of task beyond its encoder and
 * decoder (src/tasks/task.ts) — the inputs it reads, its spec defaults, its split-time
 * plan (key names, output columns), how to open its model and build a job's runtime.
 *
 * The descriptor's `task` block chooses the kind (absent = tabular). Adding a kind:
 * its module exports a {@link TaskModule}; its loaded model joins `LoadedModel` and
 * `loadModel` (src/model/descriptor.ts), and its schema the descriptor schema; then
 * one case in {@link taskOf}. Splitter, worker, merger and verify need nothing else.
 */
import { InvalidArgumentError } from "../core/errors.ts";
import type { TaskSpecDefaults } from "../core/job-spec.ts";
import type { InputFormat, JobRecord, JobSpec } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import type { ModelSession, SessionOptions } from "../model/session.ts";
import type { ColumnNeeds, PlannedInput } from "../sources/registry.ts";
import { imageClassificationTask } from "./image-classification/kind.ts";
import { tabularTask } from "./tabular/kind.ts";
import type { OutputColumn, TaskRuntime } from "./task.ts";
import { textEmbeddingTask } from "./text-embedding/kind.ts";

/** onnxruntime settings a worker passes to every task; each task decides its thread. */
export interface TaskSessionOptions extends Omit<SessionOptions, "thread"> {
  /** Inference thread: true, false, or "auto" (tabular times a batch; others always use one). */
  thread?: boolean | "auto";
  /** The job's batch size (tabular times a batch of it for "auto"). */
  batchSize?: number;
}

/** A model opened and checked for its task: the session plus what the task keeps. */
export interface OpenedModel {
  session: ModelSession;
}

/** What a job's task fixes at split time. */
export interface TaskPlan {
  /** Key columns at the front of each output row (["_offset"] when the input has none). */
  keyNames: string[];
  /** Output columns with their types as far as the model file says without running it. */
  columns: OutputColumn[];
}

/** One kind of task. */
export interface TaskModule<Model extends LoadedModel, Opened extends OpenedModel> {
  kind: Model["kind"];
  /** Input formats its records can come from. */
  inputs: readonly InputFormat[];
  /** What to give instead when the input is another format (a sentence with the fix). */
  inputHint: string;
  /** Values for spec fields the job leaves unset. */
  specDefaults: TaskSpecDefaults;
  /** Columns read from a columnar input (Parquet), e.g. features and keys. */
  neededColumns(model: Model, spec: JobSpec): ColumnNeeds;
  /** Check the model against the planned input; throws ModelError saying what to fix. */
  plan(model: Model, spec: JobSpec, input: PlannedInput): TaskPlan;
  /** Open and check the model (once per worker and model: the expensive part). */
  open(model: Model, options: TaskSessionOptions): Promise<Opened>;
  /** The runtime of one job over an opened model. */
  runtime(job: JobRecord, model: Model, opened: Opened): TaskRuntime;
}

/** A task module bound to its loaded model. */
export interface BoundTask {
  kind: LoadedModel["kind"];
  specDefaults: TaskSpecDefaults;
  /** Throws InvalidArgumentError when the task can't read `format`. */
  checkInput(format: InputFormat): void;
  neededColumns(spec: JobSpec): ColumnNeeds;
  plan(spec: JobSpec, input: PlannedInput): TaskPlan;
  open(options: TaskSessionOptions): Promise<OpenedModel>;
  runtime(job: JobRecord, opened: OpenedModel): TaskRuntime;
}

function bind<M extends LoadedModel, O extends OpenedModel>(
  task: TaskModule<M, O>,
  model: M,
): BoundTask {
  return {
    kind: task.kind,
    specDefaults: task.specDefaults,
    checkInput(format) {
      if (!task.inputs.includes(format)) {
        throw new InvalidArgumentError(
          `model ${model.identity.name} is a ${task.kind} model and can't read ${format === "objects" ? "the objects under a prefix" : `a ${format} object`}: ${task.inputHint}`,
        );
      }
    },
    neededColumns: (spec) => task.neededColumns(model, spec),
    plan: (spec, input) => task.plan(model, spec, input),
    open: (options) => task.open(model, options),
    // The opened model came from this task's own open().
    runtime: (job, opened) => task.runtime(job, model, opened as O),
  };
}

/** The task of a loaded model. */
export function taskOf(model: LoadedModel): BoundTask {
  switch (model.kind) {
    case "tabular":
      return bind(tabularTask, model);
    case "image-classification":
      return bind(imageClassificationTask, model);
    case "text-embedding":
      return bind(textEmbeddingTask, model);
  }
}

/**
 * Open the model as its task would and close it again: the splitter's dry run, so a
 * model onnxruntime can't run here is refused before a job exists. Returns the
 * providers skipped on the way.
 */
export async function checkModelOpens(
  model: LoadedModel,
  options: TaskSessionOptions,
): Promise<ModelSession["fallbacks"]> {
  const opened = await taskOf(model).open({ ...options, thread: false });
  const fallbacks = opened.session.fallbacks;
  await opened.session.close();
  return fallbacks;
}
