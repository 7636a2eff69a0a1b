import type { JobRecord } from "../core/records.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import { openOffset, readOwnedLines } from "../records/line-reader.ts";
import type { RecordBlock, RecordSource } from "./record-source.ts";

/**
 * CSV or JSON Lines by byte range: a partition owns the records that start in
 * [start, end); reading from a checkpoint offset starts exactly there, from the
 * partition's start it skips to the first record start.
 */
export function lineSource(
  store: ObjectStore,
  job: JobRecord,
  partition: { start: number; end: number },
  maxLineBytes: number,
): RecordSource {
  const format = job.input.format === "jsonl" ? "jsonl" : "csv";
  return {
    async *read(from: number): AsyncGenerator<RecordBlock> {
      const options = {
        from,
        // Checkpoints are record starts, and so is the first record after the header;
        // a partition's own start is just a byte offset.
        fromIsRecordStart: from === job.input.dataStart || from !== partition.start,
        end: partition.end,
        maxLineBytes,
      };
      const source = await store.read(job.input.bucket, job.input.object, {
        start: openOffset(options),
        end: job.input.size,
      });
      try {
        for await (const lines of readOwnedLines(source, options)) {
          yield { kind: "lines", format, lines };
        }
      } finally {
        (source as { destroy?: () => void }).destroy?.();
      }
    },
  };
}
