/**
 * Seeded, streaming data generators, written as CSV or JSONL: a churn-like customer
 * table (the demo model's training and scoring data, customer-dataset.ts) and a
 * 32-column numeric table (the benchmark input, numeric-dataset.ts).
 * Rows come from generators one at a time, so any row count fits in memory; the same
 * seed always gives the same bytes, and CSV and JSONL describe the same records.
 */

import { createWriteStream } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError } from "../core/errors.ts";
import { CUSTOMER_COLUMNS, type CustomerRecord, customerRecords } from "./customer-dataset.ts";
import {
  NUMERIC_COLUMNS,
  NUMERIC_WIDTH,
  type NumericRecord,
  numericRecords,
} from "./numeric-dataset.ts";
import { checkRows } from "./rng.ts";

// The generators live in their own modules; this one writes them, and is where callers import them from.
export * from "./customer-dataset.ts";
export * from "./dataset-features.ts";
export * from "./numeric-dataset.ts";
export { Rng } from "./rng.ts";

// ---------------------------------------------------------------------------------
// Serialization and writing

/** Which generator to run. */
export type DatasetKind = "customers" | "numeric";
/** File format to write. */
export type DatasetFormat = "csv" | "jsonl";

/** What to generate. */
export interface DatasetOptions {
  kind: DatasetKind;
  rows: number;
  seed: number;
  format: DatasetFormat;
}

const NEEDS_QUOTES = /[",\r\n]/;

/** RFC 4180 field: quoted (inner quotes doubled) only when it must be. */
export function csvField(value: string | number | boolean | null): string {
  if (value === null) return "";
  if (typeof value !== "string") return String(value);
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One customer as a CSV line (with trailing newline); missing numbers are empty. */
export function customerCsvLine(record: CustomerRecord): string {
  let line = "";
  for (let k = 0; k < CUSTOMER_COLUMNS.length; k++) {
    if (k > 0) line += ",";
    line += csvField(record[CUSTOMER_COLUMNS[k] as keyof CustomerRecord]);
  }
  return `${line}\n`;
}

/** One customer as a JSONL line (with trailing newline); missing numbers are null. */
export function customerJsonLine(record: CustomerRecord): string {
  // Records are built in column order, so key order matches the CSV header.
  return `${JSON.stringify(record)}\n`;
}

/**
 * Same text as `String(v)` for a value already rounded to 6 decimals (|v| < 9e9),
 * but from integer arithmetic: shortest-round-trip float printing dominated the
 * numeric generator's time.
 */
function formatMicros(v: number): string {
  const micros = Math.round(v * 1e6);
  if (micros === 0) return "0";
  const abs = micros < 0 ? -micros : micros;
  const whole = Math.floor(abs / 1e6);
  let frac = abs - whole * 1e6;
  const text = micros < 0 ? `-${whole}` : `${whole}`;
  if (frac === 0) return text;
  let digits = 6;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  return `${text}.${`${frac}`.padStart(digits, "0")}`;
}

/** One numeric record as a CSV line (with trailing newline); the label is not written. */
export function numericCsvLine(record: NumericRecord): string {
  let line = record.id;
  for (let k = 0; k < NUMERIC_WIDTH; k++) line += `,${formatMicros(record.values[k] ?? 0)}`;
  return `${line}\n`;
}

/** One numeric record as a JSONL line (with trailing newline); the label is not written. */
export function numericJsonLine(record: NumericRecord): string {
  let line = `{"id":${JSON.stringify(record.id)}`;
  for (let k = 0; k < NUMERIC_WIDTH; k++) line += `,"f${k}":${formatMicros(record.values[k] ?? 0)}`;
  return `${line}}\n`;
}

/**
 * The dataset as text chunks of about `chunkRows` rows each (CSV starts with its
 * header line). Options are checked now; rows are generated lazily as chunks are
 * pulled.
 */
export function datasetChunks(options: DatasetOptions, chunkRows = 512): Generator<string> {
  const { kind, rows, seed, format } = options;
  if (kind !== "customers" && kind !== "numeric") {
    throw new InvalidArgumentError(`kind must be customers or numeric, got ${String(kind)}`);
  }
  if (format !== "csv" && format !== "jsonl") {
    throw new InvalidArgumentError(`format must be csv or jsonl, got ${String(format)}`);
  }
  checkRows(rows);
  if (!Number.isSafeInteger(seed))
    throw new InvalidArgumentError(`seed must be a safe integer, got ${seed}`);
  if (kind === "customers") {
    return chunked(
      format === "csv" ? `${CUSTOMER_COLUMNS.join(",")}\n` : "",
      customerRecords(seed, rows),
      format === "csv" ? customerCsvLine : customerJsonLine,
      chunkRows,
    );
  }
  return chunked(
    format === "csv" ? `${NUMERIC_COLUMNS.join(",")}\n` : "",
    numericRecords(seed, rows),
    format === "csv" ? numericCsvLine : numericJsonLine,
    chunkRows,
  );
}

function* chunked<T>(
  header: string,
  records: Iterable<T>,
  line: (record: T) => string,
  chunkRows: number,
): Generator<string> {
  let chunk = header;
  let n = 0;
  for (const record of records) {
    chunk += line(record);
    if (++n === chunkRows) {
      yield chunk;
      chunk = "";
      n = 0;
    }
  }
  if (chunk !== "") yield chunk;
}

/**
 * Streams a generated dataset to a file path or writable stream, respecting
 * backpressure (generation pauses while the destination drains).
 */
export async function writeDataset(
  options: DatasetOptions & { out: string | Writable },
): Promise<{ rows: number; bytes: number }> {
  let bytes = 0;
  const chunks = datasetChunks(options);
  const counted = (function* () {
    for (const chunk of chunks) {
      bytes += Buffer.byteLength(chunk);
      yield chunk;
    }
  })();
  const dest = typeof options.out === "string" ? createWriteStream(options.out) : options.out;
  await pipeline(Readable.from(counted), dest);
  return { rows: options.rows, bytes };
}
