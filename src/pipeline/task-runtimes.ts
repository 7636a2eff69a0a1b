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

  constructor(
    private readonly loadModel: (descriptor: string) => Promise<LoadedModel>,
    private readonly options: TaskSessionOptions = {},
    private readonly maxModels = 2,
    private readonly onOpen?: (s: OpenedModel) => void,
  ) {}

  /** The runtime for a job; throws ModelError if the model changed since the job was created. */
  async forJob(job: JobRecord): Promise<TaskRuntime> {
    const key = `${job.model.descriptor}#${job.model.sha256}#${job.model.descriptorSha256 ?? ""}`;
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
      this.sessions.set(key, entry);
      while (this.sessions.size > this.maxModels) {
        const oldest = this.sessions.keys().next().value as string;
        const old = this.sessions.get(oldest);
        this.sessions.delete(oldest);
        void old?.then((o) => o.opened.session.close()).catch(() => undefined);
      }
    }
    const { model, opened } = await entry;
    const cached = this.lastJob;
    if (cached && cached.jobId === job.jobId && cached.opened === opened) return cached.runtime;
    const runtime = taskOf(model).runtime(job, opened);
    this.lastJob = { jobId: job.jobId, runtime, opened };
    return runtime;
  }

  /** Release every session. */
  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      all.map((p) => p.then((o) => o.opened.session.close()).catch(() => undefined)),
    );
  }
}
