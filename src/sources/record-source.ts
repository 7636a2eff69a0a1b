/**
 * The worker's seam, first half: where records come from (see src/tasks/task.ts for
 * the terminology). A source only reads: planning partitions is the splitter's job,
 * and a partition's position is neutral — a byte offset for lines, a manifest line
 * for an object list, a row index for Parquet. A checkpoint stores the position of
 * the next record to read, so a resumed attempt starts exactly there.
 */
import { type OwnedLines, readerFault } from "../records/line-reader.ts";

/** Lines of a CSV or JSON Lines object (positions are byte offsets). */
export interface LineBlock {
  kind: "lines";
  format: "csv" | "jsonl";
  /** How the reader cut records: lines, or CSV records (quoted fields may hold newlines). */
  records?: "lines" | "csv";
  lines: OwnedLines;
}

/** One object per record, e.g. documents or images listed under a prefix. */
export interface ObjectBlock {
  kind: "objects";
  count: number;
  /** Object names (the record's key). */
  names: string[];
  /** Content, or undefined when it could not be read (`problems[i]` says why). */
  bodies: (Buffer | undefined)[];
  problems: (string | undefined)[];
  /** Position of record i (its manifest line) and of the record after it. */
  positions: Float64Array;
  nextPositions: Float64Array;
}

/**
 * A text column as UTF-8 bytes: value i is `data[starts[i], ends[i])`, or null where
 * `nulls[i]` is 1. Keys that are only copied to the output never become strings.
 */
export interface Utf8Column {
  data: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  nulls: Uint8Array | undefined;
}

/** Rows of a columnar input (Parquet): `columns[name][i]` is row `firstRow + i`. */
export interface RowBlock {
  kind: "rows";
  count: number;
  firstRow: number;
  columns: Record<string, ArrayLike<unknown>>;
  /** Text columns read as bytes (the source's `text` option), not in `columns`. */
  text?: Record<string, Utf8Column>;
}

/** Value i of a {@link Utf8Column} as a string (null stays null). */
export function utf8At(column: Utf8Column, i: number): string | null {
  if (column.nulls?.[i]) return null;
  const { data } = column;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString(
    "utf8",
    column.starts[i] as number,
    column.ends[i] as number,
  );
}

/** A block of records as a source yields them. */
export type RecordBlock = LineBlock | ObjectBlock | RowBlock;

/** Number of records in a block. */
export function recordCount(block: RecordBlock): number {
  return block.kind === "lines" ? block.lines.count : block.count;
}

/** Position of record `i` of a block (a byte offset, a manifest line, a row index). */
export function positionAt(block: RecordBlock, i: number): number {
  switch (block.kind) {
    case "lines":
      return block.lines.offsets[i] as number;
    case "objects":
      return block.positions[i] as number;
    case "rows":
      return block.firstRow + i;
  }
}

/** Position of the record after record `i`: what a checkpoint after it stores. */
export function nextPositionAt(block: RecordBlock, i: number): number {
  switch (block.kind) {
    case "lines":
      return block.lines.nextOffsets[i] as number;
    case "objects":
      return block.nextPositions[i] as number;
    case "rows":
      return block.firstRow + i + 1;
  }
}

/** Physical lines record `i` spans (several for a CSV record with newlines in quotes). */
export function physicalLines(block: RecordBlock, i: number): number {
  return block.kind === "lines" ? (block.lines.lines[i] as number) : 1;
}

/** A record that is no record at all (a blank line): counted as a line, never scored. */
export const SKIP = 1;

/**
 * What the source already knows about record `i` before any task sees it: SKIP for
 * a blank line, a reason when it is unreadable (over-long line, object that could
 * not be fetched), undefined when the task should take it.
 */
export function sourceProblem(
  block: RecordBlock,
  i: number,
  maxLineBytes: number,
): typeof SKIP | string | undefined {
  switch (block.kind) {
    case "lines": {
      const l = block.lines;
      const fault = readerFault(l, i, maxLineBytes, block.records);
      if (fault !== undefined) return fault;
      const s = l.starts[i] as number;
      const e = l.ends[i] as number;
      return e === s || (e - s === 1 && l.buf[s] === 13) ? SKIP : undefined;
    }
    case "objects":
      return block.problems[i];
    case "rows":
      return undefined;
  }
}

/** The record as text for the errors output (cut to `max` bytes), or null. */
export function recordPreview(block: RecordBlock, i: number, max: number): string | null {
  switch (block.kind) {
    case "lines": {
      const l = block.lines;
      const s = l.starts[i] as number;
      if (l.oversize[i] || s < 0) return null;
      return l.buf.toString("utf8", s, Math.min(l.ends[i] as number, s + max));
    }
    case "objects":
      return block.names[i] ?? null;
    case "rows":
      return null;
  }
}

/** A partition's records from a position to the partition's end. */
export interface RecordSource {
  /** Blocks of records from `from` (a position this source gave out, or the partition start). */
  read(from: number): AsyncIterable<RecordBlock>;
  /**
   * Optional: begin what `read(from)` needs first (a decode thread, the first reads)
   * while the worker loads its model; a later `read(from)` carries on from there.
   */
  warm?(from: number): void;
}
