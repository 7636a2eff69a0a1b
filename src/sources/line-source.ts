import type { JobRecord, PartitionRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { delimiterByte } from "../records/csv-fields.ts";
import { openOffset, type ReadStats, readOwnedLines } from "../records/line-reader.ts";
import type { RecordBlock, RecordSource } from "./record-source.ts";

/** Longest record of a job whose input predates the job-wide CSV record limit. */
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** The record limit of a job's input: job-wide for CSV records (it decides where unterminated ones end). */
export function maxRecordBytes(job: JobRecord, fallback = DEFAULT_MAX_LINE_BYTES): number {
  return job.input.csvRecords?.maxRecordBytes ?? job.spec.maxRecordBytes ?? fallback;
}

/**
 * CSV or JSON Lines by byte range: a partition owns the records that start in
 * [start, end); reading from a checkpoint offset starts exactly there, from the
 * partition's start it skips to the first record start. CSV is read as RFC 4180
 * records (newlines inside quoted fields) when the job says so: the first record start
 * of a partition is then speculated, and `stats` reports where the read began and
 * ended for the chaining check at finalize.
 */
export function lineSource(
  store: ObjectStore,
  job: JobRecord,
  partition: Pick<PartitionRecord, "start" | "end" | "startIsRecordStart">,
  maxLineBytes: number,
  stats?: ReadStats,
): RecordSource {
  const format = job.input.format === "jsonl" ? "jsonl" : "csv";
  const records = format === "csv" && job.input.csvRecords ? "csv" : "lines";
  return {
    async *read(from: number): AsyncGenerator<RecordBlock> {
      const options = {
        from,
        // Checkpoints are record starts, and so are the first record after the header
        // and a start the chaining check moved; a partition's own start is just an offset.
        fromIsRecordStart:
          from === job.input.dataStart ||
          from !== partition.start ||
          partition.startIsRecordStart === true,
        end: partition.end,
        maxLineBytes,
        records,
        // Where a quote may open a field depends on the delimiter.
        delimiter: delimiterByte(job.input.delimiter),
        ...(stats ? { stats } : {}),
      } as const;
      const source = await store.read(job.input.bucket, job.input.object, {
        start: openOffset(options),
        end: job.input.size,
      });
      try {
        for await (const lines of readOwnedLines(source, options)) {
          yield { kind: "lines", format, records, lines };
        }
      } finally {
        (source as { destroy?: () => void }).destroy?.();
      }
    },
  };
}
