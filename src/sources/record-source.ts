/**
 * The worker's seam, first half: where records come from (see src/tasks/task.ts for
 * the terminology). A source only reads: planning partitions is the splitter's job,
 * and a partition's position is neutral — a byte offset for lines, a manifest line
 * for an object list, a row index for Parquet. A checkpoint stores the position of
 * the next record to read, so a resumed attempt starts exactly there.
 */
import type { OwnedLines } from "../records/line-reader.ts";

/** Lines of a CSV or JSON Lines object (positions are byte offsets). */
export interface LineBlock {
  kind: "lines";
  format: "csv" | "jsonl";
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

/** Rows of a columnar input (Parquet): `columns[name][i]` is row `firstRow + i`. */
export interface RowBlock {
  kind: "rows";
  count: number;
  firstRow: number;
  columns: Record<string, ArrayLike<unknown>>;
}

/** A block of records as a source yields them. */
export type RecordBlock = LineBlock | ObjectBlock | RowBlock;

/** Position of record `i` of a block, and of the record after it (what a checkpoint stores). */
export function positionOf(block: RecordBlock, i: number): { at: number; next: number } {
  switch (block.kind) {
    case "lines":
      return {
        at: block.lines.offsets[i] as number,
        next: block.lines.nextOffsets[i] as number,
      };
    case "objects":
      return { at: block.positions[i] as number, next: block.nextPositions[i] as number };
    case "rows":
      return { at: block.firstRow + i, next: block.firstRow + i + 1 };
  }
}

/** A partition's records from a position to the partition's end. */
export interface RecordSource {
  /** Blocks of records from `from` (a position this source gave out, or the partition start). */
  read(from: number): AsyncIterable<RecordBlock>;
}
