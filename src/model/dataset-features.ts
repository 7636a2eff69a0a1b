/** Dataset records to feature vectors, for training the example models on generated data. */
import { PipelineError } from "../core/errors.ts";

/**
 * How one input column becomes model inputs (the model descriptor's `features`):
 * a number takes 1 slot (its value, `missing` when empty), a boolean 1 slot (1/0),
 * a category one slot per category (one-hot; an unknown value is all zeros).
 */
export type FeatureSpec =
  | { column: string; type: "number"; missing: number }
  | { column: string; type: "category"; categories: string[] }
  | { column: string; type: "boolean" };

/** Length of the feature vector the specs produce. */
export function featureWidth(features: readonly FeatureSpec[]): number {
  let width = 0;
  for (const f of features) width += f.type === "category" ? f.categories.length : 1;
  return width;
}

/**
 * Writes one record's feature vector into `out` at `offset`. Values may be typed
 * (generator records, JSON) or strings (CSV fields). Throws a BAD_RECORD
 * PipelineError for a value that can't be read as its feature's type.
 */
export function featurize(
  features: readonly FeatureSpec[],
  record: object,
  out: Float32Array | Float64Array,
  offset = 0,
): void {
  const fields = record as Readonly<Record<string, unknown>>;
  let k = offset;
  for (const f of features) {
    const v = fields[f.column];
    if (f.type === "number") {
      out[k++] = v === null || v === undefined || v === "" ? f.missing : toNumber(f.column, v);
    } else if (f.type === "boolean") {
      out[k++] = toBoolean(f.column, v) ? 1 : 0;
    } else {
      const hit = typeof v === "string" ? f.categories.indexOf(v) : -1;
      for (let c = 0; c < f.categories.length; c++) out[k++] = c === hit ? 1 : 0;
    }
  }
}

function toNumber(column: string, v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new PipelineError("BAD_RECORD", `column ${column}: ${JSON.stringify(v)} is not a number`);
  }
  return n;
}

function toBoolean(column: string, v: unknown): boolean {
  if (v === true || v === 1 || v === "true" || v === "1") return true;
  if (
    v === false ||
    v === 0 ||
    v === "false" ||
    v === "0" ||
    v === null ||
    v === undefined ||
    v === ""
  ) {
    return false;
  }
  throw new PipelineError("BAD_RECORD", `column ${column}: ${JSON.stringify(v)} is not a boolean`);
}
