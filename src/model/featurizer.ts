import { ModelError } from "../core/errors.ts";
import {
  createFieldSpans,
  decodeField,
  delimiterByte,
  delimiterFlag,
  type FieldSpans,
  parseNumber,
  splitCsvLine,
} from "../records/csv-fields.ts";
import { parseJsonLine } from "../records/jsonl.ts";
import type { Feature, ModelDescriptor } from "./descriptor.ts";
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

const TRUE_WORDS = ["true", "1", "yes", "y", "t"];
const FALSE_WORDS = ["false", "0", "no", "n", "f"];

/** 1, 0, or -1 when the bytes are not a boolean word (ASCII, case-insensitive). */
function parseBooleanBytes(buf: Buffer, start: number, end: number): number {
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

function bytesEqual(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

const QUOTE = 0x22;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const TWO_POW_53 = 2 ** 53;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** A field's text, quoted and cut short, for a bad-record reason. */
function preview(buf: Buffer, start: number, end: number): string {
  return JSON.stringify(buf.toString("utf8", start, Math.min(end, start + 40)));
}

/** True when `v` is a value a float32 tensor holds as a finite number. */
function finiteAsFloat32(v: number): boolean {
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
function numberProblem(what: string, text: string, value: number): string {
  const shown = JSON.stringify(text.length > 40 ? text.slice(0, 40) : text);
  if (Number.isNaN(value) && !NON_FINITE_WORD.test(text))
    return `${what}: ${shown} is not a number`;
  if (Number.isNaN(value) || !Number.isFinite(value)) {
    return `${what}: ${shown} is not a finite number (NaN and ±Infinity are bad records; an empty value takes the feature's "missing")`;
  }
  return `${what}: ${shown} is beyond float32's range (±3.4e38), which the model reads`;
}

/** numberProblem for CSV field `field`, buf[s, e) (kept out of the fast path's body). */
function badCsvNumber(
  columns: readonly string[],
  field: number,
  buf: Buffer,
  s: number,
  e: number,
  value: number,
): string {
  return numberProblem(`column ${columns[field]}`, buf.toString("utf8", s, e), value);
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
function columnIndex(columns: string[], column: string, role: string, delimiter: string): number {
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

interface CsvPlanEntry {
  feature: Feature;
  field: number;
  slot: number;
  categoryBytes?: Buffer[];
}

/**
 * A featurizer for CSV lines over a known header, fields split at `delimiter` (one
 * character, default ","); parses bytes in place.
 */
export function createCsvFeaturizer(
  descriptor: ModelDescriptor,
  keyColumns: string[],
  columns: string[],
  delimiter = ",",
): RecordFeaturizer {
  const delim = delimiterByte(delimiter);
  let slot = 0;
  const plan: CsvPlanEntry[] = descriptor.features.map((feature) => {
    const entry: CsvPlanEntry = {
      feature,
      field: columnIndex(columns, feature.column, "feature", delimiter),
      slot,
      ...(feature.type === "category"
        ? { categoryBytes: feature.categories.map((c) => Buffer.from(c, "utf8")) }
        : {}),
    };
    slot += featureWidth(feature);
    return entry;
  });
  const width = slot;
  const keyFields = keyColumns.map((k) => columnIndex(columns, k, "key", delimiter));
  const expected = columns.length;
  const spans: FieldSpans = createFieldSpans(Math.max(8, expected + 1));

  const split = (buf: Buffer, start: number, end: number): string | undefined => {
    const status = splitCsvLine(buf, start, end, spans, delim);
    if (status === "unterminated_quote") return "unterminated quoted field";
    if (status === "text_after_quote") return "text after a closing quote";
    if (spans.count !== expected) return `expected ${expected} fields, got ${spans.count}`;
    return undefined;
  };

  // The fast path below parses numbers while it finds the commas (one pass over the
  // bytes); anything unusual (a quote, spaces, an exponent, too many digits) falls back
  // to the general path, which gives the same value via parseNumber.
  const fieldAction = new Int8Array(expected); // 0 skip, 1 number feature, 2 needs span
  const fieldSlot = new Int32Array(expected);
  const fieldMissing = new Float64Array(expected).fill(Number.NaN);
  for (const e of plan) {
    if (e.feature.type === "number") {
      fieldAction[e.field] = 1;
      fieldSlot[e.field] = e.slot;
      if (e.feature.missing !== undefined) fieldMissing[e.field] = e.feature.missing;
    } else fieldAction[e.field] = 2;
  }
  for (const k of keyFields) if (fieldAction[k] === 0) fieldAction[k] = 2;
  const spanPlan = plan.filter((e) => e.feature.type !== "number");

  /** Booleans and categories from `spans` (filled by either path). */
  const featurizeSpans = (
    buf: Buffer,
    out: Float32Array,
    rowOffset: number,
  ): string | undefined => {
    for (const e of spanPlan) {
      const s = spans.starts[e.field] as number;
      const t = spans.ends[e.field] as number;
      const f = e.feature;
      const at = rowOffset + e.slot;
      if (f.type === "boolean") {
        if (s === t) {
          if (f.missing === undefined) return `column ${f.column}: missing value`;
          out[at] = f.missing ? 1 : 0;
          continue;
        }
        const b = parseBooleanBytes(buf, s, t);
        if (b < 0) return `column ${f.column}: ${preview(buf, s, t)} is not a boolean`;
        out[at] = b;
      } else if (f.type === "category") {
        const cats = e.categoryBytes as Buffer[];
        out.fill(0, at, at + cats.length);
        let hit = -1;
        if (spans.kinds[e.field] === 2) {
          hit = f.categories.indexOf(decodeField(buf, s, t, 2));
        } else {
          for (let c = 0; c < cats.length; c++) {
            if (bytesEqual(buf, s, t, cats[c] as Buffer)) {
              hit = c;
              break;
            }
          }
        }
        if (hit >= 0) out[at + hit] = 1;
        else if (f.unknown === "error") {
          return `column ${f.column}: ${preview(buf, s, t)} is not one of its ${cats.length} categories`;
        }
      }
    }
    return undefined;
  };

  const general: RecordFeaturizer["featurize"] = (buf, start, end, out, rowOffset, keys) => {
    const bad = split(buf, start, end);
    if (bad) return bad;
    for (const e of plan) {
      const f = e.feature;
      if (f.type !== "number") continue;
      const s = spans.starts[e.field] as number;
      const t = spans.ends[e.field] as number;
      if (s === t) {
        if (f.missing === undefined) return `column ${f.column}: missing value`;
        out[rowOffset + e.slot] = f.missing;
        continue;
      }
      const v = parseNumber(buf, s, t);
      if (!finiteAsFloat32(v)) {
        return numberProblem(`column ${f.column}`, buf.toString("utf8", s, t), v);
      }
      out[rowOffset + e.slot] = v;
    }
    const spanBad = featurizeSpans(buf, out, rowOffset);
    if (spanBad) return spanBad;
    for (const k of keyFields) {
      try {
        keys.addField(
          buf,
          spans.starts[k] as number,
          spans.ends[k] as number,
          spans.kinds[k] as number,
        );
      } catch (err) {
        return `column ${columns[k]}: ${(err as Error).message}`;
      }
    }
    return undefined;
  };

  const keysFromSpans = (buf: Buffer, keys: KeyBatch): string | undefined => {
    for (const k of keyFields) {
      try {
        keys.addField(buf, spans.starts[k] as number, spans.ends[k] as number, 0);
      } catch (err) {
        return `column ${columns[k]}: ${(err as Error).message}`;
      }
    }
    return undefined;
  };

  return {
    width,
    keyCount: keyFields.length,
    featurize(buf, start, end, out, rowOffset, keys) {
      // Compared with every byte: a local copy stays in a register, where a closure
      // variable would be loaded from the context.
      const sep = delim;
      let i = start;
      let field = 0;
      for (;;) {
        if (field >= expected) return general(buf, start, end, out, rowOffset, keys);
        const fs = i;
        if (i < end && buf[i] === QUOTE) return general(buf, start, end, out, rowOffset, keys);
        const act = fieldAction[field];
        if (act === 1) {
          const c = i < end ? (buf[i] as number) : sep;
          // Branch-free sign (1 for "-"): with random signs a branch mispredicts half the time.
          const minus = ((c ^ MINUS) - 1) >>> 31;
          i += minus | (((c ^ PLUS) - 1) >>> 31);
          // Integer digits, then fraction digits: two tight loops, no per-digit state checks.
          let m = 0;
          const intStart = i;
          while (i < end) {
            const d = (buf[i] as number) - 0x30;
            if (d >>> 0 > 9) break;
            m = m * 10 + d;
            i++;
          }
          let digits = i - intStart;
          let frac = 0;
          if (i < end && buf[i] === DOT) {
            const fracStart = ++i;
            while (i < end) {
              const d = (buf[i] as number) - 0x30;
              if (d >>> 0 > 9) break;
              m = m * 10 + d;
              i++;
            }
            frac = i - fracStart;
            digits += frac;
          }
          let value: number;
          if (i < end && buf[i] !== sep) {
            // Not a plain decimal: find the field's end and let parseNumber decide.
            while (i < end && buf[i] !== sep) {
              if (buf[i] === QUOTE) return general(buf, start, end, out, rowOffset, keys);
              i++;
            }
            value = parseNumber(buf, fs, i);
            // Only parseNumber's texts can be non-finite ("inf", "1e999", "nan").
            if (!finiteAsFloat32(value)) return badCsvNumber(columns, field, buf, fs, i, value);
          } else if (digits === 0) {
            value = i === fs ? (fieldMissing[field] as number) : Number.NaN;
            if (i === fs && Number.isNaN(value)) return `column ${columns[field]}: missing value`;
          } else if (m < TWO_POW_53 && frac <= 22) {
            value = frac > 0 ? m / (POW10[frac] as number) : m;
            value *= 1 - 2 * minus;
          } else {
            value = parseNumber(buf, fs, i);
            if (!finiteAsFloat32(value)) return badCsvNumber(columns, field, buf, fs, i, value);
          }
          if (Number.isNaN(value)) {
            return `column ${columns[field]}: ${preview(buf, fs, i)} is not a number`;
          }
          out[rowOffset + (fieldSlot[field] as number)] = value;
        } else {
          while (i < end && buf[i] !== sep) {
            if (buf[i] === QUOTE) return general(buf, start, end, out, rowOffset, keys);
            i++;
          }
          if (act === 2) {
            spans.starts[field] = fs;
            spans.ends[field] = i;
            spans.kinds[field] = 0;
          }
        }
        field++;
        if (i >= end) break;
        i++;
      }
      if (field !== expected) return general(buf, start, end, out, rowOffset, keys);
      if (spanPlan.length > 0) {
        const bad = featurizeSpans(buf, out, rowOffset);
        if (bad) return bad;
      }
      return keysFromSpans(buf, keys);
    },
    keysOf(buf, start, end) {
      if (splitCsvLine(buf, start, end, spans, delim) !== "ok") return undefined;
      try {
        return keyFields.map((k) =>
          k < spans.count
            ? decodeField(
                buf,
                spans.starts[k] as number,
                spans.ends[k] as number,
                spans.kinds[k] as number,
              )
            : "",
        );
      } catch {
        return undefined;
      }
    },
  };
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
