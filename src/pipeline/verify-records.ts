/**
 * What `verify` reads back, one record at a time and in order, whatever the formats:
 * the input's records (lines of CSV/JSON Lines, manifest lines of an object list,
 * Parquet rows) with their positions and keys, and the key values of each output row
 * (JSON Lines, CSV or Parquet). Memory stays constant: one block or row group at a time.
 */
import type { FileMetaData } from "hyparquet";
import type { JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import {
  createFieldSpans,
  decodeField,
  delimiterByte,
  splitCsvLine,
} from "../records/csv-fields.ts";
import { parseJsonLine } from "../records/jsonl.ts";
import { readOwnedLines } from "../records/line-reader.ts";
import { parseManifestLine } from "../sources/objects/manifest.ts";
import type { ParquetSource } from "../sources/parquet/parquet-source.ts";
import { valueToString } from "../sources/parquet/row-featurizer.ts";

/** One record (a line, or a CSV record that may span lines) of an object. */
export interface Line {
  buf: Buffer;
  start: number;
  end: number;
  offset: number;
  /** Too long to read: a bad record by itself, with no preview. */
  oversize: boolean;
  /** Physical lines the record spans (CSV records may hold newlines in quotes). */
  physical: number;
}

/**
 * Every record of an object (or of [from, size)), one at a time: lines, or CSV records
 * with the limit the workers used (it decides where unterminated records end).
 */
export async function* lines(
  store: ObjectStore,
  bucket: string,
  object: string,
  from = 0,
  csv?: { maxRecordBytes: number; delimiter?: number },
): AsyncGenerator<Line> {
  const info = await store.head(bucket, object);
  if (!info || info.size <= from) return;
  const source = await store.read(bucket, object, { start: from, end: info.size });
  const options = {
    from,
    fromIsRecordStart: true,
    end: info.size,
    maxLineBytes: csv ? csv.maxRecordBytes : 64 * 1024 * 1024,
    records: csv ? ("csv" as const) : ("lines" as const),
    ...(csv?.delimiter !== undefined ? { delimiter: csv.delimiter } : {}),
  };
  for await (const block of readOwnedLines(source, options)) {
    for (let i = 0; i < block.count; i++) {
      yield {
        buf: block.buf,
        start: block.starts[i] as number,
        end: block.ends[i] as number,
        offset: block.offsets[i] as number,
        oversize: block.oversize[i] === 1,
        physical: block.lines[i] as number,
      };
    }
  }
}

/** Key values of a record or an output row, as the pipeline writes them (CSV split at `delimiter`). */
export function keyReader(
  format: "csv" | "jsonl",
  columns: string[],
  keyNames: string[],
  delimiter?: number,
) {
  const spans = createFieldSpans(Math.max(8, columns.length + 1));
  const index = keyNames.map((k) => columns.indexOf(k));
  return (line: Line): string[] | undefined => {
    try {
      if (format === "jsonl") {
        const obj = parseJsonLine(line.buf, line.start, line.end);
        return keyNames.map((k) => {
          const v = obj[k];
          return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
        });
      }
      if (splitCsvLine(line.buf, line.start, line.end, spans, delimiter) !== "ok") return undefined;
      return index.map((i) =>
        i < 0 || i >= spans.count
          ? ""
          : decodeField(
              line.buf,
              spans.starts[i] as number,
              spans.ends[i] as number,
              spans.kinds[i] as number,
            ),
      );
    } catch {
      return undefined;
    }
  };
}

/** An input record as verify checks it. */
export interface InputRecord {
  /** Its position (byte offset, manifest offset, row index): what the errors output records. */
  position: number;
  /** A blank line: counted as a line, never a record. */
  blank: boolean;
  /** Its key values as output rows carry them (undefined when unreadable). */
  keys(): string[] | undefined;
  /** What the errors output shows as `record` (null when there is nothing to show). */
  preview: string | null;
  /** Physical lines it spans (1, or more for a CSV record with newlines in quotes). */
  physical: number;
}

const PREVIEW_BYTES = 512;

/** Key values of a Parquet row block's row i (null as ""). */
function rowKeys(columns: Record<string, ArrayLike<unknown>>, names: string[], i: number) {
  return names.map((k) => valueToString((columns[k] as ArrayLike<unknown>)[i]) ?? "");
}

async function parquetRows(
  store: ObjectStore,
  bucket: string,
  object: string,
  columns: string[],
): Promise<{ rows: number; source: ParquetSource; metadata: FileMetaData }> {
  // The Parquet reader loads only to verify a Parquet input or output: `verify` of a
  // CSV job, and every other CLI command, never evaluates hyparquet.
  const [{ openParquetObject, readParquetFooter }, { ParquetSource }] = await Promise.all([
    import("../sources/parquet/object-file.ts"),
    import("../sources/parquet/parquet-source.ts"),
  ]);
  const { file } = await openParquetObject(store, bucket, object);
  const metadata = await readParquetFooter(file, `${bucket}/${object}`);
  const rows = Number(metadata.num_rows);
  return {
    rows,
    metadata,
    source: new ParquetSource({ store, bucket, name: object, columns, start: 0, end: rows }),
  };
}

/**
 * The job's input records in input order; `keyNames` are read from each (none when
 * the output is keyed by position).
 */
export async function* inputRecords(
  store: ObjectStore,
  job: JobRecord,
  keyNames: string[],
): AsyncGenerator<InputRecord> {
  const input = job.input;
  if (input.format === "objects") {
    for await (const l of lines(store, input.bucket, input.object)) {
      const name = parseManifestLine(l.buf.toString("utf8", l.start, l.end)).name;
      yield { position: l.offset, blank: false, keys: () => [name], preview: name, physical: 1 };
    }
    return;
  }
  if (input.format === "parquet") {
    const rows = input.parquet?.rows ?? 0;
    if (keyNames.length === 0) {
      for (let r = 0; r < rows; r++) {
        yield { position: r, blank: false, keys: () => [], preview: null, physical: 1 };
      }
      return;
    }
    const { source } = await parquetRows(store, input.bucket, input.object, keyNames);
    for await (const block of source.read(0)) {
      for (let i = 0; i < block.count; i++) {
        const keys = rowKeys(block.columns, keyNames, i);
        yield {
          position: block.firstRow + i,
          blank: false,
          keys: () => keys,
          preview: null,
          physical: 1,
        };
      }
    }
    return;
  }
  const delimiter = delimiterByte(input.delimiter);
  const readKeys = keyReader(
    input.format === "jsonl" ? "jsonl" : "csv",
    input.columns,
    keyNames,
    delimiter,
  );
  for await (const l of lines(
    store,
    input.bucket,
    input.object,
    input.dataStart,
    input.csvRecords && { ...input.csvRecords, delimiter },
  )) {
    const blank =
      !l.oversize && (l.end === l.start || (l.end - l.start === 1 && l.buf[l.start] === 13));
    yield {
      position: l.offset,
      blank,
      keys: () => readKeys(l),
      preview: l.oversize
        ? null
        : l.buf.toString("utf8", l.start, Math.min(l.end, l.start + PREVIEW_BYTES)),
      physical: l.physical,
    };
  }
}

/** Key values of each output row in order (undefined for a row they can't be read from). */
export async function* outputKeys(
  store: ObjectStore,
  job: JobRecord,
  bucket: string,
  object: string,
  columns: string[],
  keyNames: string[],
): AsyncGenerator<string[] | undefined> {
  const format = job.spec.output.format;
  if (format === "parquet") {
    const { source } = await parquetRows(store, bucket, object, keyNames);
    for await (const block of source.read(0)) {
      for (let i = 0; i < block.count; i++) yield rowKeys(block.columns, keyNames, i);
    }
    return;
  }
  const read = keyReader(format, columns, keyNames);
  let first = true;
  // CSV output quotes keys that hold newlines: read it as CSV records.
  const csv = format === "csv" ? { maxRecordBytes: 64 * 1024 * 1024 } : undefined;
  for await (const l of lines(store, bucket, object, 0, csv)) {
    if (first && format === "csv") {
      first = false; // the header
      continue;
    }
    first = false;
    yield read(l);
  }
}

/** Rows per row group of a Parquet object, in file order. */
export async function parquetRowGroups(
  store: ObjectStore,
  bucket: string,
  object: string,
): Promise<number[]> {
  const { metadata } = await parquetRows(store, bucket, object, []);
  return metadata.row_groups.map((g) => Number(g.num_rows));
}
