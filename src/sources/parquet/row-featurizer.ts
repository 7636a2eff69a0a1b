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
import type { KeyBatch } from "../../model/key-batch.ts";
import { type RowBlock, utf8At } from "../record-source.ts";
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
  /** Add row i's key values to a batch (null as ""); key bytes are copied, not decoded. */
  addKeys(block: RowBlock, i: number, keys: KeyBatch): void;
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
 * A featurizer for the descriptor's features over the given Parquet columns. A
 * number feature over a typed column (the Float32Array of the numeric fast path,
 * Int32Array, ...) is transposed once per block, column by column, into a row-major
 * matrix — one tight loop per column instead of a polymorphic load per value — and
 * the first unusable value of each row is noted on the way; a row's features are
 * then one copy. Everything else goes through the per-value rules. A
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
  const missing = Float32Array.from(plan, (e) =>
    e.f.type === "number" && e.f.missing !== undefined ? e.f.missing : Number.NaN,
  );
  const missingReason = plan.map((e) => `column ${e.f.column}: missing value`);
  /** Per block: the plan entries read per value (not transposed), in descriptor order. */
  let untyped: number[] = [];
  /** Per block: the slot of each transposed feature, in descriptor order. */
  let typedSlots: number[] = [];
  const arrays: ArrayLike<unknown>[] = new Array(n);
  /**
   * The block's transposed features, row-major, one float per transposed feature
   * (`stride` per row: one-hot slots take no room), and per row 1 + its first bad one.
   */
  let matrix = new Float32Array(0);
  let stride = 0;
  let firstBad = new Int32Array(0);
  let seen: RowBlock | undefined;

  function prepare(block: RowBlock): void {
    seen = block;
    const rows = block.count;
    untyped = [];
    const typed: number[] = [];
    for (let p = 0; p < n; p++) {
      const e = plan[p] as PlanEntry;
      const col = block.columns[e.f.column] as ArrayLike<unknown>;
      arrays[p] = col;
      if (e.f.type === "number" && isNumberArray(col)) typed.push(p);
      else untyped.push(p);
    }
    typedSlots = typed.map((p) => (plan[p] as PlanEntry).slot);
    stride = typed.length;
    if (matrix.length < rows * stride) matrix = new Float32Array(rows * stride);
    if (firstBad.length < rows) firstBad = new Int32Array(rows);
    firstBad.fill(0, 0, rows);
    // Last feature first, so a row's mark ends up its first bad one in descriptor order.
    for (let j = typed.length - 1; j >= 0; j--) {
      const p = typed[j] as number;
      transpose(arrays[p] as ArrayLike<number>, rows, j, stride, missing[p] as number, p + 1);
    }
  }

  function transpose(
    col: ArrayLike<number>,
    rows: number,
    at: number,
    step: number,
    m: number,
    mark: number,
  ): void {
    const out = matrix;
    const bad = firstBad;
    for (let i = 0, o = at; i < rows; i++, o += step) {
      const v = col[i] as number;
      if (!Number.isNaN(v)) out[o] = v;
      else if (!Number.isNaN(m)) out[o] = m;
      else bad[i] = mark;
    }
  }

  return {
    width,
    featurize(block, i, out, rowOffset) {
      if (block !== seen) prepare(block);
      const bad = firstBad[i] as number;
      for (let u = 0; u < untyped.length; u++) {
        const p = untyped[u] as number;
        if (bad !== 0 && bad - 1 < p) break;
        const why = featureValue(
          plan[p] as PlanEntry,
          (arrays[p] as ArrayLike<unknown>)[i],
          out,
          rowOffset + (plan[p] as PlanEntry).slot,
        );
        if (why !== undefined) return why;
      }
      if (bad !== 0) return missingReason[bad - 1];
      const m = matrix;
      const st = stride;
      const k0 = i * st;
      if (untyped.length === 0) {
        // Every feature transposed, one slot each: the row is contiguous.
        for (let k = 0; k < st; k++) out[rowOffset + k] = m[k0 + k] as number;
      } else {
        for (let j = 0; j < st; j++) {
          out[rowOffset + (typedSlots[j] as number)] = m[k0 + j] as number;
        }
      }
      return undefined;
    },
    keys(block, i) {
      return keyColumns.map((k) => {
        const bytes = block.text?.[k];
        if (bytes) return utf8At(bytes, i);
        return valueToString((block.columns[k] as ArrayLike<unknown>)[i]);
      });
    },
    addKeys(block, i, keys) {
      for (const k of keyColumns) {
        const bytes = block.text?.[k];
        if (!bytes)
          keys.addString(valueToString((block.columns[k] as ArrayLike<unknown>)[i]) ?? "");
        else if (bytes.nulls?.[i]) keys.addString("");
        else keys.addUtf8(bytes.data, bytes.starts[i] as number, bytes.ends[i] as number);
      }
    },
  };
}
