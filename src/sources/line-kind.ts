/**
 * CSV and JSON Lines as a source kind: partitions are byte ranges of the object
 * (a partition owns the records that start in it), planned from the object's size
 * and its header line alone.
 */
import { InvalidArgumentError, NotFoundError, PipelineError } from "../core/errors.ts";
import { gzipInputRefusal, isGzipName } from "../core/job-spec.ts";
import type { CsvDelimiter, InputFormat, InputIdentity } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { delimiterByte, parseCsvHeader } from "../records/csv-fields.ts";
import { readFirstLine } from "../records/header.ts";
import { asBuffer } from "../records/owned-lines.ts";
import { lineSource } from "./line-source.ts";
import type { SourceModule } from "./source-module.ts";

// Largest CSV header we read; a header longer than this is almost surely not a header.
const MAX_HEADER_BYTES = 1024 * 1024;
/** Longest record unless the spec says otherwise. */
const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** Byte ranges of about `partitionBytes` covering [dataStart, size). */
export function planPartitions(
  dataStart: number,
  size: number,
  partitionBytes: number,
): { start: number; end: number }[] {
  const span = size - dataStart;
  if (span <= 0) return [];
  const n = Math.max(1, Math.ceil(span / partitionBytes));
  const ranges: { start: number; end: number }[] = [];
  for (let i = 0; i < n; i++) {
    ranges.push({
      start: dataStart + Math.floor((span * i) / n),
      end: dataStart + Math.floor((span * (i + 1)) / n),
    });
  }
  return ranges;
}

/** True when `head` starts like a gzip stream (magic 1f 8b, method 8 = deflate). */
export function looksGzipped(head: Uint8Array | undefined): boolean {
  return head !== undefined && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08;
}

/** The chunks of `source`, keeping its first bytes in `seen.head` as they pass. */
function watchHead(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?(): void },
  seen: { head?: Buffer },
): AsyncIterable<Buffer> & { destroy(): void } {
  async function* chunks() {
    for await (const raw of source) {
      const chunk = asBuffer(raw);
      if (seen.head === undefined && chunk.length > 0) seen.head = chunk.subarray(0, 4);
      yield chunk;
    }
  }
  return Object.assign(chunks(), { destroy: () => source.destroy?.() });
}

/**
 * The object's identity and, for CSV, its header (read alone, never the whole object)
 * split at `delimiter`. A gzip object is refused (see gzipInputRefusal).
 */
export async function inspectInput(
  store: ObjectStore,
  bucket: string,
  object: string,
  format: InputFormat,
  maxRecordBytes = DEFAULT_MAX_RECORD_BYTES,
  delimiter: CsvDelimiter = ",",
): Promise<InputIdentity> {
  const info = await store.head(bucket, object);
  if (!info) {
    throw new NotFoundError(
      `input object ${bucket}/${object} does not exist: upload it first or fix the name`,
    );
  }
  if (isGzipName(object)) throw new InvalidArgumentError(gzipInputRefusal(bucket, object));
  const base = { bucket, object, etag: info.etag, size: info.size, format };
  if (format === "jsonl" || info.size === 0) return { ...base, columns: [], dataStart: 0 };
  const seen: { head?: Buffer } = {};
  const stream = await store.read(bucket, object, {
    start: 0,
    end: Math.min(info.size, MAX_HEADER_BYTES),
  });
  let first: Awaited<ReturnType<typeof readFirstLine>>;
  try {
    // RFC 4180: a quoted header name may hold a newline too.
    first = await readFirstLine(watchHead(stream, seen), MAX_HEADER_BYTES, {
      records: "csv",
      delimiter: delimiterByte(delimiter),
    });
  } catch (err) {
    if (looksGzipped(seen.head)) throw new InvalidArgumentError(gzipInputRefusal(bucket, object));
    throw err;
  }
  if (looksGzipped(seen.head)) throw new InvalidArgumentError(gzipInputRefusal(bucket, object));
  if (!first) return { ...base, columns: [], dataStart: 0 };
  return {
    ...base,
    columns: parseCsvHeader(first.line, 0, first.line.length, delimiterByte(delimiter)),
    dataStart: first.dataStart,
    // Every reader of the job splits fields at this delimiter.
    delimiter,
    // Records are read as RFC 4180 records (newlines inside quotes), with one record
    // limit for every reader of the job: it decides where an unterminated one ends.
    csvRecords: { maxRecordBytes },
    headerLines: first.lines,
  };
}

/** CSV and JSON Lines objects. */
export const lineSourceModule: SourceModule = {
  formats: ["csv", "jsonl"],
  async plan(store, spec) {
    const input = await inspectInput(
      store,
      spec.input.bucket,
      spec.input.object ?? "",
      spec.input.format,
      spec.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      spec.input.delimiter,
    );
    if (input.size <= input.dataStart) {
      throw new PipelineError(
        "INVALID_ARGUMENT",
        `input object ${input.bucket}/${input.object} has no records (${input.size} bytes${input.dataStart > 0 ? ", a header only" : ""}): nothing to score`,
      );
    }
    return {
      input,
      identity: { bucket: input.bucket, object: input.object, etag: input.etag },
      ranges: planPartitions(input.dataStart, input.size, spec.partitionBytes),
      discard: async () => {},
    };
  },
  open: (store, job, partition, options) =>
    lineSource(store, job, partition, options.maxLineBytes, options.readStats),
};
