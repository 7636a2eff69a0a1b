/**
 * Which top-level columns a Parquet file has, and a clear refusal for the ones the
 * pipeline can't take as inputs: nested columns (LIST, MAP, STRUCT) and missing ones.
 */
import { type FileMetaData, parquetSchema, type SchemaTree } from "hyparquet";
import { ModelError } from "../../core/errors.ts";

/** One top-level column as the pipeline sees it. */
export interface ParquetColumn {
  name: string;
  /** Physical type of a flat column; undefined for a nested one. */
  type?: string | undefined;
  /** Logical or converted type when there is one (STRING, DATE, DECIMAL, LIST...). */
  logical?: string | undefined;
  nullable: boolean;
  nested: boolean;
}

function describe(node: SchemaTree): ParquetColumn {
  const e = node.element;
  const nested = node.children.length > 0 || e.repetition_type === "REPEATED";
  return {
    name: e.name,
    type: nested ? undefined : e.type,
    logical: e.logical_type?.type ?? e.converted_type,
    nullable: e.repetition_type === "OPTIONAL",
    nested,
  };
}

/** The file's top-level columns in schema order. */
export function parquetColumns(metadata: FileMetaData): ParquetColumn[] {
  return parquetSchema(metadata).children.map(describe);
}

/**
 * Check that every needed column exists and is flat; throws ModelError naming the
 * column and what to do. Returns the needed columns' descriptions in `needed` order.
 */
export function checkParquetColumns(
  metadata: FileMetaData,
  needed: readonly string[],
  what: string,
): ParquetColumn[] {
  const all = parquetColumns(metadata);
  const byName = new Map(all.map((c) => [c.name, c]));
  return needed.map((name) => {
    const c = byName.get(name);
    if (!c) {
      throw new ModelError(
        `column "${name}" is not in ${what}; its columns are: ${all
          .slice(0, 40)
          .map((x) => x.name)
          .join(", ")}${all.length > 40 ? ", ..." : ""}`,
      );
    }
    if (c.nested) {
      throw new ModelError(
        `column "${name}" of ${what} is nested (${c.logical ?? "group"}); inputs must be flat columns — flatten it first (e.g. DuckDB: SELECT ..., UNNEST(${name}) or ${name}.field AS ${name}_field)`,
      );
    }
    return c;
  });
}
