import { ModelError } from "../../core/errors.ts";
import type { JobRecord } from "../../core/records.ts";
import { createCsvFeaturizer } from "../../model/csv-featurizer.ts";
import type { LoadedModel, TabularModel } from "../../model/descriptor.ts";
import { createJsonlFeaturizer } from "../../model/featurizer.ts";
import { type ModelSession, openModelSession, type SessionOptions } from "../../model/session.ts";
import { delimiterByte } from "../../records/csv-fields.ts";
import { createRowFeaturizer } from "../../sources/parquet/row-featurizer.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { OutputColumn, TaskRuntime } from "../task.ts";
import { TabularDecoder } from "./decoder.ts";
import { TabularEncoder } from "./encoder.ts";
import type { TabularMeta } from "./feature-batches.ts";
import { checkTabularModel, zeroFeeds } from "./model-check.ts";
import { TabularRowEncoder } from "./row-encoder.ts";

/** Batches faster than this stay on the calling thread when the thread is left to `auto`. */
export const INLINE_BATCH_MS = 50;

/** Session settings plus the inference thread choice. */
export interface TabularSessionOptions extends Omit<SessionOptions, "thread"> {
  /**
   * Run inference on a worker thread so parsing, heartbeats and I/O overlap it.
   * "auto" (default): on a GPU (any non-CPU provider in use) always, so the device
   * works while the CPU parses; on CPU, a batch is timed once and a model whose
   * batch runs in under INLINE_BATCH_MS stays on the calling thread. Measured on 2
   * cores with 2 workers, the hand-off then costs more than it overlaps, and blocking
   * the event loop that briefly never starves a heartbeat (they fire every visibility/3).
   */
  thread?: boolean | "auto";
  /** Batch size used to time the model for "auto" (default 4096). */
  batchSize?: number;
}

/** A checked session for a tabular model and how to read its outputs. */
export interface TabularSession {
  session: ModelSession;
  inputType: "float32" | "float64";
  readers: Awaited<ReturnType<typeof checkTabularModel>>["readers"];
}

async function openChecked(model: TabularModel, options: SessionOptions): Promise<TabularSession> {
  const session = await openModelSession(model.onnxBytes, model.onnxPath, options);
  try {
    return { session, ...(await checkTabularModel(model, session)) };
  } catch (err) {
    await session.close();
    throw err;
  }
}

/**
 * Open and check a tabular model: the descriptor against the model's inputs, outputs
 * and real output shapes (a probe batch), on the first execution provider that works.
 */
export async function openTabularSession(
  loaded: LoadedModel,
  options: TabularSessionOptions = {},
): Promise<TabularSession> {
  if (loaded.kind !== "tabular") {
    throw new ModelError(
      `model ${loaded.descriptorPath} is a ${loaded.kind} model, not a tabular one (features and outputs)`,
    );
  }
  const model = loaded;
  const thread = options.thread ?? "auto";
  if (thread !== "auto") return openChecked(model, { ...options, thread });
  const inline = await openChecked(model, { ...options, thread: false });
  if (inline.session.provider !== "cpu") {
    await inline.session.close();
    return openChecked(model, { ...options, thread: true });
  }
  // Time a small batch and scale up: probing a full batch of a heavy model would
  // cost a noticeable part of a short job's start.
  const rows = options.batchSize ?? 4096;
  const probeRows = Math.min(rows, 256);
  const probe = () => inline.session.run(zeroFeeds(model, inline.inputType, probeRows));
  await probe();
  const t0 = performance.now();
  await probe();
  await probe();
  const batchMs = ((performance.now() - t0) / 2) * (rows / probeRows);
  if (batchMs <= INLINE_BATCH_MS) return inline;
  await inline.session.close();
  return openChecked(model, { ...options, thread: true });
}

/** The output columns of a tabular job, typed as the model's outputs really are. */
function tabularColumns(job: JobRecord, opened: TabularSession): OutputColumn[] {
  const keys = job.keyNames.length;
  return job.outputColumns.map((name, j) => {
    const reader = j >= keys ? opened.readers[j - keys] : undefined;
    return { name, type: reader ? reader.kind : "string" };
  });
}

/** The task runtime of a tabular job over an open session. */
export function tabularRuntime(
  job: JobRecord,
  model: TabularModel,
  opened: TabularSession,
): TaskRuntime<TabularMeta> {
  const keyColumns = job.keyNames.length === 1 && job.keyNames[0] === "_offset" ? [] : job.keyNames;
  const offsetKeys = keyColumns.length === 0;
  const decoder = new TabularDecoder(model.descriptor, opened.readers, job.keyNames.length);
  const base = {
    session: opened.session,
    decoder,
    outputColumns: tabularColumns(job, opened),
    close: () => opened.session.close(),
  };
  if (job.input.format === "parquet") {
    const rowFeaturizer = createRowFeaturizer(
      model.descriptor,
      keyColumns,
      job.input.parquet?.columns ?? [],
    );
    return {
      ...base,
      encoder: () =>
        new TabularRowEncoder(rowFeaturizer, {
          inputName: model.descriptor.input.name,
          inputType: opened.inputType,
          batchSize: job.spec.batchSize,
          offsetKeys,
        }),
      keysOf(block: RecordBlock, i: number) {
        if (offsetKeys || block.kind !== "rows") return null;
        const values = rowFeaturizer.keys(block, i);
        return Object.fromEntries(keyColumns.map((k, j) => [k, values[j] ?? ""]));
      },
    };
  }
  const featurizer =
    job.input.format === "csv"
      ? createCsvFeaturizer(model.descriptor, keyColumns, job.input.columns, job.input.delimiter)
      : createJsonlFeaturizer(model.descriptor, keyColumns);
  return {
    ...base,
    encoder: () =>
      new TabularEncoder(featurizer, {
        inputName: model.descriptor.input.name,
        inputType: opened.inputType,
        batchSize: job.spec.batchSize,
        format: job.input.format,
        columns: job.input.columns,
        delimiter: delimiterByte(job.input.delimiter),
        offsetKeys,
      }),
    keysOf(block: RecordBlock, i: number) {
      if (offsetKeys || block.kind !== "lines") return null;
      const l = block.lines;
      const s = l.starts[i] as number;
      const e = l.ends[i] as number;
      if (s < 0) return null;
      const values = featurizer.keysOf(l.buf, s, e);
      return values ? Object.fromEntries(keyColumns.map((k, j) => [k, values[j] ?? ""])) : null;
    },
  };
}

/** Score `rows` rows of features (row-major floats): one array of values per descriptor output. */
export async function scoreTabular(
  opened: TabularSession,
  model: TabularModel,
  features: Float32Array,
  rows: number,
): Promise<Float64Array[]> {
  const values = features.subarray(0, rows * model.width);
  const out = await opened.session.run({
    [model.descriptor.input.name]:
      opened.inputType === "float64"
        ? { type: "float64", data: Float64Array.from(values), dims: [rows, model.width] }
        : { type: "float32", data: values.slice(), dims: [rows, model.width] },
  });
  return opened.readers.map((reader) => {
    const t = out[reader.name];
    const col = new Float64Array(rows);
    if (!t) return col;
    const per = rows === 0 ? 0 : t.data.length / rows;
    for (let r = 0; r < rows; r++) {
      const v = t.data[r * per + (per === 1 ? 0 : reader.index)];
      col[r] = typeof v === "bigint" ? Number(v) : (v as number);
    }
    return col;
  });
}
