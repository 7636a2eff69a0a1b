/**
 * Text embedding as a task kind: documents (JSON Lines or CSV rows with an id and a
 * text field or template, Parquet rows, or one object per document under a prefix)
 * → token-budget batches on the inference thread → one row per document (or per
 * chunk): id, [chunk], embedding, and for objects the sha256 of the bytes embedded.
 */
import { InvalidArgumentError, ModelError } from "../../core/errors.ts";
import { openModelSession } from "../../model/session.ts";
import { delimiterByte } from "../../records/csv-fields.ts";
import type { RecordBlock, RowBlock } from "../../sources/record-source.ts";
import type { OpenedModel, TaskModule } from "../task-module.ts";
import { TextEmbeddingDecoder, textOutputColumns } from "./decoder.ts";
import { TextEmbeddingEncoder } from "./encoder.ts";
import type { LoadedTextModel } from "./loaded-model.ts";
import type { TextModel } from "./model-dir.ts";
import { TextRecordReader } from "./text-records.ts";

/**
 * Documents per checkpoint (and per part object) unless the job says otherwise. Rows'
 * 50,000 would be minutes of inference per chunk on CPU; 1,000 documents are a few
 * seconds on a small encoder and well under a minute on a MiniLM-sized one.
 */
export const TEXT_CHECKPOINT_EVERY = 1000;

/** One short document in the fields the task reads: the probe batch. */
function probeBlock(model: TextModel): RowBlock {
  const columns: Record<string, string[]> = { [model.settings.idField]: ["probe"] };
  for (const f of model.settings.text.fields) columns[f] = ["probe text"];
  return { kind: "rows", count: 1, firstRow: 0, columns };
}

/** Run one probe document: the graph must take the feeds and give the output the loader chose. */
async function checkRuns(model: TextModel, opened: OpenedModel): Promise<void> {
  const encoder = new TextEmbeddingEncoder(model);
  const reason = encoder.add(probeBlock(model), 0);
  const window = encoder.take(true)[0];
  const batch = window?.batches[0];
  if (reason !== undefined || !window || !batch) {
    throw new ModelError(
      `model ${model.onnxPath}: the probe text could not be encoded (${reason})`,
    );
  }
  try {
    const out = await opened.session.run(batch.feeds);
    new TextEmbeddingDecoder(model).reduce(window, 0, out);
  } catch (err) {
    throw new ModelError(
      `model ${model.onnxPath} does not run on one tokenized text as its config and tokenizer describe: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The text-embedding task. */
export const textEmbeddingTask: TaskModule<LoadedTextModel, OpenedModel> = {
  kind: "text-embedding",
  inputs: ["jsonl", "csv", "parquet", "objects"],
  inputHint:
    "a text-embedding model reads JSON Lines, CSV or Parquet rows with an id and a text field, or one document per object under a prefix",
  specDefaults: { checkpointEvery: TEXT_CHECKPOINT_EVERY },
  // Ids and texts are strings: no column takes the numeric fast path.
  neededColumns: (model) => ({
    columns: [...new Set([model.text.settings.idField, ...model.text.settings.text.fields])],
    numeric: [],
  }),
  plan(model, _spec, planned) {
    const input = planned.input;
    const s = model.text.settings;
    if (input.format === "csv") {
      // Throws naming the id or text column the header lacks.
      new TextRecordReader(s.idField, s.text, { columns: input.columns });
    } else if (input.format === "parquet") {
      const have = new Set((input.parquet?.columns ?? []).map((c) => c.name));
      const required = [s.idField, ...(s.text.missingFields === "empty" ? [] : s.text.fields)];
      const missing = required.filter((c) => !have.has(c));
      if (missing.length > 0) {
        throw new InvalidArgumentError(
          `the Parquet input has no column ${missing.map((m) => JSON.stringify(m)).join(", ")} (its columns are ${JSON.stringify([...have])}): set the task's idField / text to its columns`,
        );
      }
    }
    return {
      keyNames: ["id"],
      columns: textOutputColumns(model.text, input.format === "objects"),
    };
  },
  async open(model, options) {
    // A text batch blocks its thread for up to seconds: off the event loop, so
    // heartbeats, fetching and tokenizing the next window go on (unless told otherwise).
    const session = await openModelSession(model.text.onnxBytes, model.onnxPath, {
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      thread: options.thread !== false,
    });
    try {
      await checkRuns(model.text, { session });
    } catch (err) {
      await session.close();
      throw err;
    }
    return { session };
  },
  runtime(job, model, opened) {
    const objects = job.input.format === "objects";
    const csv =
      job.input.format === "csv"
        ? { columns: job.input.columns, delimiter: delimiterByte(job.input.delimiter) }
        : undefined;
    const s = model.text.settings;
    const reader = new TextRecordReader(s.idField, s.text, csv);
    return {
      session: opened.session,
      encoder: () =>
        new TextEmbeddingEncoder(model.text, { ...(csv ? { csv } : {}), hashContent: objects }),
      decoder: new TextEmbeddingDecoder(model.text, objects),
      outputColumns: textOutputColumns(model.text, objects),
      keysOf: (block: RecordBlock, i: number) => {
        const id = reader.read(block, i).id;
        return id === undefined ? null : { id };
      },
      close: () => opened.session.close(),
    };
  },
};
