/**
 * The output rows of one chunk (the records between two checkpoints) in the job's
 * output format, as the bytes of its part object: JSON Lines or CSV rows (the
 * merger concatenates parts), or a Parquet file (the merger copies its column
 * chunks into one file and writes a new footer).
 */
import { createHash } from "node:crypto";
import type { OutputFormat } from "../core/records.ts";
import { ByteWriter } from "../pipeline/output-rows.ts";
import type { OutputColumn, RowSink } from "../tasks/task.ts";
import { ParquetRowSink } from "./parquet/row-sink.ts";
import { TextRowSink } from "./text-sink.ts";

/** A finished chunk's part. */
export interface ChunkPart {
  /** The part object's bytes; empty = no part object to write. */
  body: Buffer;
  /** What a merge copies from the part when that is not the whole part (Parquet's column chunks). */
  section?: { bytes: number; sha256: string };
}

/** Rows of one chunk at a time. */
export interface ChunkOutput {
  /** Where the task's decoder writes the chunk's rows. */
  readonly sink: RowSink;
  /** The chunk's part (valid until `reset`). */
  finish(): ChunkPart;
  /** Start the next chunk. */
  reset(): void;
}

class TextChunkOutput implements ChunkOutput {
  private readonly out = new ByteWriter();
  readonly sink: RowSink;

  constructor(columns: readonly OutputColumn[], format: "jsonl" | "csv") {
    this.sink = new TextRowSink(
      columns.map((c) => c.name),
      format,
      this.out,
    );
  }

  finish(): ChunkPart {
    return { body: this.out.view() };
  }

  reset(): void {
    this.out.reset();
  }
}

/** Byte range [4, dataEnd) of a Parquet file: everything between the magic and the footer. */
export function parquetDataSection(bytes: Uint8Array): { start: number; end: number } {
  const n = bytes.length;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, n);
  return { start: 4, end: n - 8 - view.readUInt32LE(n - 8) };
}

class ParquetChunkOutput implements ChunkOutput {
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

/**
 * Chunk output in `format` for rows of `columns`; `keyValues` go into every Parquet
 * part (and so into the merged file's footer).
 */
export function createChunkOutput(
  format: OutputFormat,
  columns: readonly OutputColumn[],
  keyValues: Record<string, string> = {},
): ChunkOutput {
  return format === "parquet"
    ? new ParquetChunkOutput(columns, keyValues)
    : new TextChunkOutput(columns, format);
}
