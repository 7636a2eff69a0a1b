/**
 * The output rows of one chunk (the records between two checkpoints) in the job's
 * output format, as the bytes of its part object: JSON Lines or CSV rows (the
 * merger concatenates parts), or a Parquet file (the merger copies its column
 * chunks into one file and writes a new footer).
 */
import type { OutputFormat } from "../core/records.ts";
import { ByteWriter } from "../pipeline/output-rows.ts";
import type { OutputColumn, RowSink } from "../tasks/task.ts";
import type { ChunkOutput, ChunkPart } from "./chunk-part.ts";
import { TextRowSink } from "./text-sink.ts";

export type { ChunkOutput, ChunkPart } from "./chunk-part.ts";

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

/** Makes an empty chunk output (one per chunk in flight). */
export type ChunkOutputFactory = () => ChunkOutput;

/**
 * Chunk outputs in `format` for rows of `columns`; `keyValues` go into every Parquet
 * part (and so into the merged file's footer). Async because the Parquet writer is
 * imported here, when a worker scores its first Parquet-output partition, not when it
 * starts: a JSON Lines or CSV job never loads it (hyparquet-writer: ~36 ms to evaluate).
 */
export async function chunkOutputFactory(
  format: OutputFormat,
  columns: readonly OutputColumn[],
  keyValues: Record<string, string> = {},
): Promise<ChunkOutputFactory> {
  if (format === "parquet") {
    const { ParquetChunkOutput } = await import("./parquet/chunk-output.ts");
    return () => new ParquetChunkOutput(columns, keyValues);
  }
  return () => new TextChunkOutput(columns, format);
}
