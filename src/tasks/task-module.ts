/**
 * What a task kind implements (src/tasks/registry.ts lists the kinds): its inputs,
 * spec defaults, split-time plan, how it opens its model and builds a job's runtime.
 */
import type { TaskSpecDefaults } from "../core/job-spec.ts";
import type { InputFormat, JobRecord, JobSpec } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import type { ModelSession, SessionOptions } from "../model/session.ts";
import type { ColumnNeeds, PlannedInput } from "../sources/source-module.ts";
import type { OutputColumn, TaskRuntime } from "./task.ts";

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
