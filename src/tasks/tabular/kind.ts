/**
 * Tabular scoring as a task kind: rows of CSV, JSON Lines or Parquet → the model's
 * feature tensor → one output row per record with the descriptor's output columns.
 */
import { PipelineError } from "../../core/errors.ts";
import type { JobSpec } from "../../core/records.ts";
import type { TabularModel } from "../../model/descriptor.ts";
import { checkColumns } from "../../model/featurizer.ts";
import { createRowFeaturizer } from "../../sources/parquet/row-featurizer.ts";
import type { OutputColumn } from "../task.ts";
import type { OpenedModel, TaskModule } from "../task-module.ts";
import { openTabularSession, type TabularSession, tabularRuntime } from "./tabular-task.ts";

function keyColumnsOf(model: TabularModel, spec: JobSpec): string[] {
  return spec.keyColumns ?? model.descriptor.keyColumns ?? [];
}

/** The tabular task. */
export const tabularTask: TaskModule<TabularModel, TabularSession & OpenedModel> = {
  kind: "tabular",
  inputs: ["csv", "jsonl", "parquet"],
  inputHint:
    "a tabular model scores rows: give one .csv, .jsonl or .parquet object (input.object; `--input FILE`)",
  specDefaults: {},
  neededColumns(model, spec) {
    const keys = keyColumnsOf(model, spec);
    const features = model.descriptor.features;
    const numbers = features.filter((f) => f.type === "number").map((f) => f.column);
    return {
      columns: [...new Set([...features.map((f) => f.column), ...keys])],
      // Keys stay exact (an INT64 id past 2^53), and so does a column also read as a
      // category or boolean; the rest are only ever numbers.
      numeric: numbers.filter(
        (c) => !keys.includes(c) && features.every((f) => f.column !== c || f.type === "number"),
      ),
      // A key that is no feature is only copied to the output: its bytes will do.
      text: keys.filter((c) => features.every((f) => f.column !== c)),
    };
  },
  plan(model, spec, planned) {
    const d = model.descriptor;
    const keyColumns = keyColumnsOf(model, spec);
    const input = planned.input;
    if (input.format === "csv") {
      if (input.columns.length === 0)
        throw new PipelineError("INVALID_ARGUMENT", "the CSV has no header line");
      checkColumns(d, keyColumns, input.columns, input.delimiter);
    } else if (input.format === "parquet") {
      // Every column's type against its feature, before any row is read.
      createRowFeaturizer(d, keyColumns, input.parquet?.columns ?? []);
    }
    const keyNames = keyColumns.length > 0 ? keyColumns : ["_offset"];
    // Outputs are declared float32 here: the worker's parts carry the types the
    // model really produces (float64, int64), which it learns by running it.
    const columns: OutputColumn[] = [
      ...keyNames.map((name) => ({ name, type: "string" as const })),
      ...d.outputs.map((o) => ({ name: o.column, type: "float32" as const })),
      ...(d.label ? [{ name: d.label.column, type: "string" as const }] : []),
    ];
    return { keyNames, columns };
  },
  open: (model, options) => openTabularSession(model, options),
  runtime: (job, model, opened) => tabularRuntime(job, model, opened),
};
