/**
 * What a chunk's output is to the worker (see chunk-output.ts): rows written into a
 * sink, then one part object's bytes. In a module of its own so the text and Parquet
 * outputs both implement it without importing each other.
 */
import type { RowSink } from "../tasks/task.ts";

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
