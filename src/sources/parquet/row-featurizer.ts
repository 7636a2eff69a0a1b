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

type PlanEntry = { f: Feature; slot: number; index: Map<string, number> | undefined };

/**
 * Value `v` of feature `e` into `out[at..]` (one slot, or one-hot for a category);
 * the reason when it can't be used. The per-value path for untyped columns.
 */
function featureValue(e: PlanEntry, v: unknown, out: Float32Array, at: number): string | undefined {
  const { f, index } = e;
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
    const k = v === null || v === undefined ? undefined : index?.get(valueToString(v) as string);
    if (k !== undefined) out[at + k] = 1;
    else if (f.unknown === "error") {
      return `column ${f.column}: ${JSON.stringify(valueToString(v))} is not one of its ${n} categories`;
    }
  }
  return undefined;
}

/** A typed array of plain numbers (Float64Array from the fast path, Int32Array, ...). */
function isNumberArray(a: ArrayLike<unknown>): a is ArrayLike<number> {
  return ArrayBuffer.isView(a) && !(a instanceof BigInt64Array) && !(a instanceof BigUint64Array);
}

/**
 * A featurizer for the descriptor's features over the given Parquet columns. The
 * block's column arrays are looked up once per block; a number feature over a typed
 * column (the Float32Array of the numeric fast path, Int32Array, ...) is one load
 * and a NaN check per value, everything else goes through the per-value rules. A
 * row's reason is its first bad feature in descriptor order, as with CSV.
 */
export function createRowFeaturizer(
  descriptor: ModelDescriptor,
  keyColumns: readonly string[],
  columns: readonly ParquetColumn[],
): RowFeaturizer {
  const byName = new Map(columns.map((c) => [c.name, c]));
  let slot = 0;
  const plan: PlanEntry[] = descriptor.features.map((f) => {
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
  const n = plan.length;
  // Parallel arrays: the hot loop reads no object properties.
  const slots = Int32Array.from(plan, (e) => e.slot);
  const missing = Float32Array.from(plan, (e) =>
    e.f.type === "number" && e.f.missing !== undefined ? e.f.missing : Number.NaN,
  );
  const missingReason = plan.map((e) => `column ${e.f.column}: missing value`);
  const typed = new Uint8Array(n);
  const arrays: ArrayLike<unknown>[] = new Array(n);
  let seen: RowBlock | undefined;

  return {
    width,
    featurize(block, i, out, rowOffset) {
      if (block !== seen) {
        seen = block;
        for (let p = 0; p < n; p++) {
          const col = block.columns[(plan[p] as PlanEntry).f.column] as ArrayLike<unknown>;
          arrays[p] = col;
          typed[p] = (plan[p] as PlanEntry).f.type === "number" && isNumberArray(col) ? 1 : 0;
        }
      }
      for (let p = 0; p < n; p++) {
        const at = rowOffset + (slots[p] as number);
        if (typed[p] === 1) {
          const v = (arrays[p] as ArrayLike<number>)[i] as number;
          if (!Number.isNaN(v)) out[at] = v;
          else {
            const m = missing[p] as number;
            if (Number.isNaN(m)) return missingReason[p];
            out[at] = m;
          }
        } else {
          const why = featureValue(
            plan[p] as PlanEntry,
            (arrays[p] as ArrayLike<unknown>)[i],
            out,
            at,
          );
          if (why !== undefined) return why;
        }
      }
      return undefined;
    },
    keys(block, i) {
      return keyColumns.map((k) => valueToString((block.columns[k] as ArrayLike<unknown>)[i]));
    },
  };
}
