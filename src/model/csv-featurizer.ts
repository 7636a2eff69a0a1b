/**
 * The CSV featurizer: a record's fields straight from the bytes of its line into the
 * feature tensor, numbers parsed while the delimiters are found (one pass), keys kept
 * as byte ranges. Anything unusual (quotes, exponents, long mantissas) takes the
 * general path, which splits the line and gives the same values.
 */
import {
  createFieldSpans,
  decodeField,
  delimiterByte,
  type FieldSpans,
  splitCsvLine,
} from "../records/csv-fields.ts";
import { parseNumber } from "../records/decimal-number.ts";
import type { Feature, ModelDescriptor } from "./descriptor.ts";
import { featureWidth } from "./descriptor.ts";
import {
  bytesEqual,
  columnIndex,
  finiteAsFloat32,
  numberProblem,
  parseBooleanBytes,
  preview,
  type RecordFeaturizer,
} from "./featurizer.ts";
import type { KeyBatch } from "./key-batch.ts";

const QUOTE = 0x22;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const TWO_POW_53 = 2 ** 53;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

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
