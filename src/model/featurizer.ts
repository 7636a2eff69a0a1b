/**
 * Records to feature rows: the featurizer contract, the value and column checks every
 * format shares (booleans, non-finite numbers, missing columns, a likely delimiter), and
 * the JSON Lines featurizer. The CSV one, the hot path, is in csv-featurizer.ts.
 */
import { ModelError } from "../core/errors.ts";
import { delimiterFlag } from "../records/csv-fields.ts";
import { parseJsonLine } from "../records/jsonl.ts";
import type { ModelDescriptor } from "./descriptor.ts";
import { featureWidth } from "./descriptor.ts";
import type { KeyBatch } from "./key-batch.ts";

/**
 * Turns one input record into a row of the model's float32 feature tensor and
 * captures its key columns. Returns undefined on success, or the reason the
 * record is bad (it then goes to the errors output).
 */
export interface RecordFeaturizer {
  /** Feature vector width. */
  readonly width: number;
  /** Number of key values captured per record. */
  readonly keyCount: number;
  featurize(
    buf: Buffer,
    start: number,
    end: number,
    out: Float32Array,
    rowOffset: number,
    keys: KeyBatch,
  ): string | undefined;
  /** Best-effort key values of a bad record, for the errors output. */
  keysOf(buf: Buffer, start: number, end: number): string[] | undefined;
}

/** Boolean feature texts read as true and as false (compared lower-cased). */
export const TRUE_WORDS = ["true", "1", "yes", "y", "t"];
/** See {@link TRUE_WORDS}. */
export const FALSE_WORDS = ["false", "0", "no", "n", "f"];

/** 1, 0, or -1 when the bytes are not a boolean word (ASCII, case-insensitive). */
export function parseBooleanBytes(buf: Buffer, start: number, end: number): number {
  const len = end - start;
  if (len === 0 || len > 5) return -1;
  let s = "";
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    s += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  if (TRUE_WORDS.includes(s)) return 1;
  if (FALSE_WORDS.includes(s)) return 0;
  return -1;
}

/** True when buf[start, end) holds exactly the bytes of `word`. */
export function bytesEqual(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

/** A field's text, quoted and cut short, for a bad-record reason. */
export function preview(buf: Buffer, start: number, end: number): string {
  return JSON.stringify(buf.toString("utf8", start, Math.min(end, start + 40)));
}

/** True when `v` is a value a float32 tensor holds as a finite number. */
export function finiteAsFloat32(v: number): boolean {
  const f = Math.fround(v);
  return f - f === 0;
}

const NON_FINITE_WORD = /^\s*[+-]?(nan|inf|infinity)\s*$/i;

/**
 * Why a number feature's value can't be scored, for a value that parsed as NaN, as
 * ±Infinity, or beyond float32's range (which the model would read as ±Infinity).
 * Non-finite values are all bad records, in CSV and JSON Lines alike (README,
 * "Your own model"): imputing them would hide a broken export.
 */
export function numberProblem(what: string, text: string, value: number): string {
  const shown = JSON.stringify(text.length > 40 ? text.slice(0, 40) : text);
  if (Number.isNaN(value) && !NON_FINITE_WORD.test(text))
    return `${what}: ${shown} is not a number`;
  if (Number.isNaN(value) || !Number.isFinite(value)) {
    return `${what}: ${shown} is not a finite number (NaN and ±Infinity are bad records; an empty value takes the feature's "missing")`;
  }
  return `${what}: ${shown} is beyond float32's range (±3.4e38), which the model reads`;
}

/** Delimiters a header may hold when the job splits it at another one. */
const LIKELY_DELIMITERS = [",", ";", "\t", "|"];

/**
 * When the header's names hold another common delimiter (`loan_id;income;…` split at
 * commas is one name), the sentence that says so and how to set the right one.
 */
export function delimiterHint(columns: readonly string[], delimiter: string): string {
  const found = LIKELY_DELIMITERS.find(
    (d) =>
      d !== delimiter &&
      columns.filter((c) => c.includes(d)).length >= Math.max(1, columns.length / 2),
  );
  if (found === undefined) return "";
  const name = (d: string) => (d === "\t" ? "tabs" : `'${d}'`);
  return `. The header holds ${name(found)}: the file is probably separated by ${name(found)}, not ${name(delimiter)}; set --delimiter ${delimiterFlag(found)} (input.delimiter in a job spec)`;
}

/** Where each feature and key column sits in the input header. */
export function columnIndex(
  columns: string[],
  column: string,
  role: string,
  delimiter: string,
): number {
  const i = columns.indexOf(column);
  if (i < 0) {
    throw new ModelError(
      `${role} column "${column}" is not in the input; its columns are: ${columns.slice(0, 40).join(", ")}${columns.length > 40 ? ", ..." : ""}${delimiterHint(columns, delimiter)}`,
    );
  }
  return i;
}

/**
 * Check a descriptor and key columns against a CSV header (split at `delimiter`)
 * before any record is read.
 */
export function checkColumns(
  descriptor: ModelDescriptor,
  keyColumns: string[],
  columns: string[],
  delimiter = ",",
): void {
  for (const f of descriptor.features) columnIndex(columns, f.column, "feature", delimiter);
  for (const k of keyColumns) columnIndex(columns, k, "key", delimiter);
}

function jsonNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "") return Number(v);
  return Number.NaN;
}

/** A featurizer for JSON-lines records (one object per line). */
export function createJsonlFeaturizer(
  descriptor: ModelDescriptor,
  keyColumns: string[],
): RecordFeaturizer {
  let slot = 0;
  const plan = descriptor.features.map((feature) => {
    const e = { feature, slot };
    slot += featureWidth(feature);
    return e;
  });
  const width = slot;
  const keyOf = (v: unknown): string =>
    v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
  return {
    width,
    keyCount: keyColumns.length,
    featurize(buf, start, end, out, rowOffset, keys) {
      let obj: Record<string, unknown>;
      try {
        obj = parseJsonLine(buf, start, end);
      } catch (err) {
        return (err as Error).message;
      }
      for (const { feature: f, slot: s } of plan) {
        const v = obj[f.column];
        const at = rowOffset + s;
        const missing = v === undefined || v === null || v === "";
        if (f.type === "number") {
          if (missing) {
            if (f.missing === undefined) return `field ${f.column}: missing value`;
            out[at] = f.missing;
            continue;
          }
          const n = jsonNumber(v);
          if (!finiteAsFloat32(n)) {
            const text =
              typeof v === "string" ? v : typeof v === "number" ? String(v) : JSON.stringify(v);
            return numberProblem(`field ${f.column}`, text, n);
          }
          out[at] = n;
        } else if (f.type === "boolean") {
          if (missing) {
            if (f.missing === undefined) return `field ${f.column}: missing value`;
            out[at] = f.missing ? 1 : 0;
            continue;
          }
          if (v === true || v === 1) out[at] = 1;
          else if (v === false || v === 0) out[at] = 0;
          else if (typeof v === "string" && TRUE_WORDS.includes(v.toLowerCase())) out[at] = 1;
          else if (typeof v === "string" && FALSE_WORDS.includes(v.toLowerCase())) out[at] = 0;
          else return `field ${f.column}: ${JSON.stringify(v)} is not a boolean`;
        } else {
          out.fill(0, at, at + f.categories.length);
          const hit = typeof v === "string" ? f.categories.indexOf(v) : -1;
          if (hit >= 0) out[at + hit] = 1;
          else if (f.unknown === "error" || (!missing && typeof v !== "string")) {
            return `field ${f.column}: ${JSON.stringify(v)} is not one of its ${f.categories.length} categories`;
          }
        }
      }
      for (const k of keyColumns) keys.addString(keyOf(obj[k]));
      return undefined;
    },
    keysOf(buf, start, end) {
      try {
        const obj = parseJsonLine(buf, start, end);
        return keyColumns.map((k) => keyOf(obj[k]));
      } catch {
        return undefined;
      }
    },
  };
}
