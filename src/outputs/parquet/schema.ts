/**
 * Parquet schema for a job's output columns (src/tasks/task.ts OutputColumn):
 * strings as nullable UTF-8, float32 as FLOAT, int as INT64, vectors and label lists
 * as three-level LIST columns (list<float>, list<string>) that DuckDB, pyarrow and
 * Spark read as arrays.
 */
import type { SchemaElement } from "hyparquet";
import type { OutputColumn } from "../../tasks/task.ts";

function listOf(name: string, element: SchemaElement): SchemaElement[] {
  return [
    {
      name,
      repetition_type: "OPTIONAL",
      num_children: 1,
      converted_type: "LIST",
      logical_type: { type: "LIST" },
    },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    element,
  ];
}

const STRING: Omit<SchemaElement, "name"> = {
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
};

/** Flattened Parquet schema (root first) for `columns`. */
export function outputSchema(columns: readonly OutputColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: "schema", num_children: columns.length }];
  for (const c of columns) {
    switch (c.type) {
      case "string":
        schema.push({ name: c.name, repetition_type: "OPTIONAL", ...STRING });
        break;
      case "float32":
        schema.push({ name: c.name, repetition_type: "OPTIONAL", type: "FLOAT" });
        break;
      case "float64":
        schema.push({ name: c.name, repetition_type: "OPTIONAL", type: "DOUBLE" });
        break;
      case "int":
        schema.push({ name: c.name, repetition_type: "OPTIONAL", type: "INT64" });
        break;
      case "float32[]":
        schema.push(
          ...listOf(c.name, { name: "element", repetition_type: "REQUIRED", type: "FLOAT" }),
        );
        break;
      case "string[]":
        schema.push(...listOf(c.name, { name: "element", repetition_type: "REQUIRED", ...STRING }));
        break;
    }
  }
  return schema;
}
