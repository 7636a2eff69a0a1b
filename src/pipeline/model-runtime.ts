import { ModelError } from "../core/errors.ts";
import type { JobRecord } from "../core/records.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import {
  createCsvFeaturizer,
  createJsonlFeaturizer,
  type RecordFeaturizer,
} from "../model/featurizer.ts";
import { createScorer, type Scorer, type ScorerOptions } from "../model/scorer.ts";
import { createRowFormatter, type RowFormatter } from "./output-rows.ts";

/** Everything a worker needs to score one job's records. */
export interface JobRuntime {
  model: LoadedModel;
  scorer: Scorer;
  featurizer: RecordFeaturizer;
  formatter: RowFormatter;
  /** Output key column names ("_offset" when the job has none). */
  keyNames: string[];
  /** True when keys are byte offsets rather than input columns. */
  offsetKeys: boolean;
}

/** Key columns a job uses: the spec's, else the descriptor's. */
export function jobKeyColumns(job: JobRecord, model: LoadedModel): string[] {
  return job.spec.keyColumns ?? model.descriptor.keyColumns ?? [];
}

/**
 * Caches one scorer per model (by content hash): loading a session costs far
 * more than a partition's bookkeeping, and consecutive partitions usually share a model.
 */
export class ModelRuntimeCache {
  private readonly scorers = new Map<string, Promise<{ model: LoadedModel; scorer: Scorer }>>();
  private lastJob: { jobId: string; runtime: JobRuntime } | undefined;

  constructor(
    private readonly loadModel: (descriptor: string) => Promise<LoadedModel>,
    private readonly scorerOptions: ScorerOptions = {},
    private readonly maxModels = 2,
  ) {}

  /** The runtime for a job; throws ModelError if the model changed since the job was created. */
  async forJob(job: JobRecord): Promise<JobRuntime> {
    const key = `${job.model.descriptor}#${job.model.sha256}#${job.model.descriptorSha256 ?? ""}`;
    let entry = this.scorers.get(key);
    if (!entry) {
      entry = (async () => {
        const model = await this.loadModel(job.spec.model.descriptor);
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
        return { model, scorer: await createScorer(model, this.scorerOptions) };
      })();
      entry.catch(() => this.scorers.delete(key));
      this.scorers.set(key, entry);
      while (this.scorers.size > this.maxModels) {
        const oldest = this.scorers.keys().next().value as string;
        const old = this.scorers.get(oldest);
        this.scorers.delete(oldest);
        void old?.then((o) => o.scorer.close()).catch(() => undefined);
      }
    }
    const { model, scorer } = await entry;
    // Consecutive partitions are usually of one job: reuse its featurizer and formatter.
    const cached = this.lastJob;
    if (cached && cached.jobId === job.jobId && cached.runtime.scorer === scorer)
      return cached.runtime;
    const keyColumns = jobKeyColumns(job, model);
    const offsetKeys = keyColumns.length === 0;
    const keyNames = offsetKeys ? ["_offset"] : keyColumns;
    const featurizer =
      job.input.format === "csv"
        ? createCsvFeaturizer(model.descriptor, offsetKeys ? [] : keyColumns, job.input.columns)
        : createJsonlFeaturizer(model.descriptor, offsetKeys ? [] : keyColumns);
    const formatter = createRowFormatter(model.descriptor, keyNames, job.spec.output.format);
    const runtime = { model, scorer, featurizer, formatter, keyNames, offsetKeys };
    this.lastJob = { jobId: job.jobId, runtime };
    return runtime;
  }

  /** Release every session. */
  async close(): Promise<void> {
    const all = [...this.scorers.values()];
    this.scorers.clear();
    await Promise.all(all.map((p) => p.then((o) => o.scorer.close()).catch(() => undefined)));
  }
}
