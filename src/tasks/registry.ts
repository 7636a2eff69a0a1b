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
import type { ModelSession } from "../model/session.ts";
import type { ColumnNeeds, PlannedInput } from "../sources/source-module.ts";
import { imageClassificationTask } from "./image-classification/kind.ts";
import { tabularTask } from "./tabular/kind.ts";
import type { TaskRuntime } from "./task.ts";
import type { OpenedModel, TaskModule, TaskPlan, TaskSessionOptions } from "./task-module.ts";
import { textEmbeddingTask } from "./text-embedding/kind.ts";

export type {
  OpenedModel,
  TaskModule,
  TaskPlan,
  TaskSessionOptions,
} from "./task-module.ts";

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
