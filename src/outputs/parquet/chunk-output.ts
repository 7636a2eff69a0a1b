/**
 * A chunk's output as a Parquet part (src/outputs/chunk-output.ts loads this module
 * only for a Parquet job, so the writer never loads for text outputs).
 */
import { createHash } from "node:crypto";
import type { OutputColumn } from "../../tasks/task.ts";
import type { ChunkOutput, ChunkPart } from "../chunk-part.ts";
import { ParquetRowSink } from "./row-sink.ts";

/** Byte range [4, dataEnd) of a Parquet file: everything between the magic and the footer. */
export function parquetDataSection(bytes: Uint8Array): { start: number; end: number } {
  const n = bytes.length;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, n);
  return { start: 4, end: n - 8 - view.readUInt32LE(n - 8) };
}

/** One Parquet part per chunk: its rows in one row group, and the section a merge copies. */
export class ParquetChunkOutput implements ChunkOutput {
  sink: ParquetRowSink;

  constructor(
    private readonly columns: readonly OutputColumn[],
    private readonly keyValues: Record<string, string>,
  ) {
    this.sink = new ParquetRowSink(columns, keyValues);
  }

  finish(): ChunkPart {
    // Even a chunk of bad records only gets a part: it carries the schema the model
    // really produces, so an output without a single row still has the right one.
    const bytes = this.sink.finish();
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const { start, end } = parquetDataSection(bytes);
    return {
      body,
      section: {
        bytes: end - start,
        sha256: createHash("sha256").update(body.subarray(start, end)).digest("hex"),
      },
    };
  }

  reset(): void {
    this.sink = new ParquetRowSink(this.columns, this.keyValues);
  }
}
