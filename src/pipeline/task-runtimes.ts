import { ModelError } from "../core/errors.ts";
import type { JobRecord } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import { type OpenedModel, type TaskSessionOptions, taskOf } from "../tasks/registry.ts";
import type { TaskRuntime } from "../tasks/task.ts";

/** Throw ModelError when the model loaded now is not the one the job was created with. */
export function assertSameModel(job: JobRecord, model: LoadedModel): void {
  if (model.identity.sha256 !== job.model.sha256) {
    throw new ModelError(
      `model ${model.onnxPath} changed since job ${job.jobId} was created (sha256 ${model.identity.sha256.slice(0, 12)} != ${job.model.sha256.slice(0, 12)}): restore it or start a new job`,
    );
  }
  const want = job.model.descriptorSha256;
  if (want !== undefined && model.identity.descriptorSha256 !== want) {
    throw new ModelError(
      `model descriptor ${model.descriptorPath} changed since job ${job.jobId} was created (features, imputation or outputs differ): restore it or start a new job`,
    );
  }
}

/** A model loaded and opened before any job named it (see {@link openModelEarly}). */
export interface EarlyModel {
  model: LoadedModel;
  opened: OpenedModel;
}

/**
 * Load and open the model of `descriptor` now, for a worker that knows which model its
 * first job will use before it may take one (a held local worker, booted while the run
 * checks its input): the first claim then finds the session open instead of spending
 * ~50 ms opening it. Never rejects: a model that fails here fails again, with the
 * job's own error, when a job opens it.
 */
export function openModelEarly(
  loadModel: (descriptor: string) => Promise<LoadedModel>,
  descriptor: string,
  options: TaskSessionOptions = {},
): Promise<EarlyModel | undefined> {
  return (async () => {
    const model = await loadModel(descriptor);
    return { model, opened: await taskOf(model).open(options) };
  })().catch(() => undefined);
}

function keyOf(m: { descriptor: string; sha256: string; descriptorSha256?: string }): string {
  return `${m.descriptor}#${m.sha256}#${m.descriptorSha256 ?? ""}`;
}

/**
 * One open model session per model (by content hash), opened as the model's task
 * says (src/tasks/registry.ts), and the runtime of the job in hand: loading a
 * session costs far more than a partition's bookkeeping, and consecutive partitions
 * usually share a model and a job.
 */
export class TaskRuntimeCache {
  private readonly sessions = new Map<
    string,
    Promise<{ model: LoadedModel; opened: OpenedModel }>
  >();
  private lastJob: { jobId: string; runtime: TaskRuntime; opened: OpenedModel } | undefined;

  /** `early`: a model opened before the first job (see {@link openModelEarly}), taken in as the first job asks. */
  constructor(
    private readonly loadModel: (descriptor: string) => Promise<LoadedModel>,
    private readonly options: TaskSessionOptions = {},
    private readonly maxModels = 2,
    private readonly onOpen?: (s: OpenedModel) => void,
    private early?: Promise<EarlyModel | undefined>,
  ) {}

  /** The runtime for a job; throws ModelError if the model changed since the job was created. */
  async forJob(job: JobRecord): Promise<TaskRuntime> {
    if (this.early) {
      // Cached under the model's identity as loaded: a job whose model is another one
      // (or the same file changed since) does not match it and opens its own.
      const early = await this.early;
      this.early = undefined;
      if (early) {
        this.onOpen?.(early.opened);
        this.remember(keyOf(early.model.identity), Promise.resolve(early));
      }
    }
    const key = keyOf(job.model);
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = (async () => {
        const model = await this.loadModel(job.spec.model.descriptor);
        assertSameModel(job, model);
        const opened = await taskOf(model).open({
          ...this.options,
          batchSize: job.spec.batchSize,
        });
        this.onOpen?.(opened);
        return { model, opened };
      })();
      entry.catch(() => this.sessions.delete(key));
      this.remember(key, entry);
    }
    const { model, opened } = await entry;
    const cached = this.lastJob;
    if (cached && cached.jobId === job.jobId && cached.opened === opened) return cached.runtime;
    const runtime = taskOf(model).runtime(job, opened);
    this.lastJob = { jobId: job.jobId, runtime, opened };
    return runtime;
  }

  private remember(key: string, entry: Promise<{ model: LoadedModel; opened: OpenedModel }>): void {
    this.sessions.set(key, entry);
    while (this.sessions.size > this.maxModels) {
      const oldest = this.sessions.keys().next().value as string;
      const old = this.sessions.get(oldest);
      this.sessions.delete(oldest);
      void old?.then((o) => o.opened.session.close()).catch(() => undefined);
    }
  }

  /** Release every session (and one opened early that no job took). */
  async close(): Promise<void> {
    const early = this.early;
    this.early = undefined;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all([
      ...all.map((p) => p.then((o) => o.opened.session.close()).catch(() => undefined)),
      early?.then((e) => e?.opened.session.close()).catch(() => undefined),
    ]);
  }
}
