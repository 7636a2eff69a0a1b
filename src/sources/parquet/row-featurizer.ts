/**
 * Tabular features from Parquet rows: typed column values (number, bigint, boolean,
 * string, Date, null) → the model's float32 feature row, with the descriptor's
 * missing-value rules for nulls. The same reasons as the CSV/JSONL featurizers, so a
 * bad record reads the same whatever the input format. Columns are checked against
 * the file's schema before any row is read: a type that can never fit is a
 * ModelError up front, not a million bad records.
 */
import { ModelError } from "../../core/errors.ts";
import type { Feature, ModelDescriptor } from "../../model/descriptor.ts";
import { featureWidth } from "../../model/descriptor.ts";
import type { RowBlock } from "../record-source.ts";
import type { ParquetColumn } from "./columns.ts";

const NUMERIC = new Set(["INT32", "INT64", "FLOAT", "DOUBLE", "BOOLEAN", "INT96"]);
const TRUE_WORDS = new Set(["true", "1", "yes", "y", "t"]);
const FALSE_WORDS = new Set(["false", "0", "no", "n", "f"]);

/** Turns row i of a RowBlock into features; returns why the row is bad, or undefined. */
export interface RowFeaturizer {
  readonly width: number;
  featurize(block: RowBlock, i: number, out: Float32Array, rowOffset: number): string | undefined;
  /** Key column values of row i as strings (null stays null). */
  keys(block: RowBlock, i: number): (string | null)[];
}

/** A key or text value as a string (Date as ISO, bigint exact). */
export function valueToString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "string") return v;
  if (typeof v === "object")
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x));
  return String(v);
}

function checkType(f: Feature, c: ParquetColumn): void {
  const t = c.type ?? "";
  const isString = t === "BYTE_ARRAY" || t === "FIXED_LEN_BYTE_ARRAY";
  if (f.type === "number" && !(NUMERIC.has(t) || c.logical === "DECIMAL" || isString)) {
    throw new ModelError(
      `feature column "${f.column}" is ${t}; a number feature needs a numeric column`,
    );
  }
  if (f.type === "boolean" && !(t === "BOOLEAN" || t === "INT32" || t === "INT64" || isString)) {
    throw new ModelError(
      `feature column "${f.column}" is ${t}; a boolean feature needs BOOLEAN, an integer 0/1 or text`,
    );
  }
}

/** A featurizer for the descriptor's features over the given Parquet columns. */
export function createRowFeaturizer(
  descriptor: ModelDescriptor,
  keyColumns: readonly string[],
  columns: readonly ParquetColumn[],
): RowFeaturizer {
  const byName = new Map(columns.map((c) => [c.name, c]));
  let slot = 0;
  const plan = descriptor.features.map((f) => {
    const c = byName.get(f.column);
    if (!c)
      throw new ModelError(`feature column "${f.column}" was not read from the Parquet input`);
    checkType(f, c);
    const entry = {
      f,
      slot,
      index: f.type === "category" ? new Map(f.categories.map((v, k) => [v, k])) : undefined,
    };
    slot += featureWidth(f);
    return entry;
  });
  const width = slot;
  // The block's column arrays in plan order, looked up once per block, not per value.
  let seen: RowBlock | undefined;
  const arrays: ArrayLike<unknown>[] = [];
  return {
    width,
    featurize(block, i, out, rowOffset) {
      if (block !== seen) {
        seen = block;
        plan.forEach((e, k) => {
          arrays[k] = block.columns[e.f.column] as ArrayLike<unknown>;
        });
      }
      for (let p = 0; p < plan.length; p++) {
        const { f, slot: s, index } = plan[p] as (typeof plan)[number];
        const v = (arrays[p] as ArrayLike<unknown>)[i];
        if (f.type === "number" && typeof v === "number" && !Number.isNaN(v)) {
          out[rowOffset + s] = v; // the common case, first
          continue;
        }
        const at = rowOffset + s;
        if (f.type === "number") {
          let n: number;
          if (typeof v === "number") n = v;
          else if (typeof v === "bigint") n = Number(v);
          else if (typeof v === "boolean") n = v ? 1 : 0;
          else if (v === null || v === undefined || v === "") {
            if (f.missing === undefined) return `column ${f.column}: missing value`;
            n = f.missing;
          } else if (typeof v === "string") {
            n = Number(v.trim());
            if (Number.isNaN(n) || v.trim() === "")
              return `column ${f.column}: ${JSON.stringify(v.slice(0, 40))} is not a number`;
          } else return `column ${f.column}: ${valueToString(v)?.slice(0, 40)} is not a number`;
          if (Number.isNaN(n)) {
            if (f.missing === undefined) return `column ${f.column}: missing value`;
            n = f.missing;
          }
          out[at] = n;
        } else if (f.type === "boolean") {
          if (v === null || v === undefined) {
            if (f.missing === undefined) return `column ${f.column}: missing value`;
            out[at] = f.missing ? 1 : 0;
          } else if (typeof v === "boolean") out[at] = v ? 1 : 0;
          else if (v === 0 || v === 1 || v === 0n || v === 1n) out[at] = Number(v);
          else if (typeof v === "string" && TRUE_WORDS.has(v.toLowerCase())) out[at] = 1;
          else if (typeof v === "string" && FALSE_WORDS.has(v.toLowerCase())) out[at] = 0;
          else return `column ${f.column}: ${JSON.stringify(valueToString(v))} is not a boolean`;
        } else {
          const n = f.categories.length;
          out.fill(0, at, at + n);
          const k =
            v === null || v === undefined ? undefined : index?.get(valueToString(v) as string);
          if (k !== undefined) out[at + k] = 1;
          else if (f.unknown === "error") {
            return `column ${f.column}: ${JSON.stringify(valueToString(v))} is not one of its ${n} categories`;
          }
        }
      }
      return undefined;
    },
    keys(block, i) {
      return keyColumns.map((k) => valueToString((block.columns[k] as ArrayLike<unknown>)[i]));
    },
  };
}
