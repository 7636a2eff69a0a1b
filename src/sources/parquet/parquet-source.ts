/**
 * Record source over one Parquet partition (a row range made of whole row groups):
 * footer first, then only the needed columns of each row group, by ranged reads. The
 * next row group is fetched and decoded while the current one is consumed. Yields
 * {@link RowBlock}s whose positions are row indexes; a null in a nullable column
 * stays null (the task applies the descriptor's missing-value rules).
 */
import { type FileMetaData, parquetScan } from "hyparquet";
import { PipelineError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import type { RecordSource, RowBlock } from "../record-source.ts";
import { checkParquetColumns } from "./columns.ts";
import {
  openParquetObject,
  PARQUET_COMPRESSORS,
  type ParquetObject,
  readParquetFooter,
} from "./object-file.ts";
import { rowGroupSpans } from "./plan.ts";

/** Which object, which columns, which rows. */
export interface ParquetSourceOptions {
  store: ObjectStore;
  bucket: string;
  name: string;
  /** The etag the job was planned on (refuses a replaced file). */
  etag?: string;
  /** Columns to read, flat only. */
  columns: readonly string[];
  /** The partition's rows [start, end). */
  start: number;
  end: number;
  /** Rows per block at most (default 8,192). */
  blockRows?: number;
}

type Columns = Record<string, ArrayLike<unknown>>;

function slice(data: ArrayLike<unknown>, from: number, to: number): ArrayLike<unknown> {
  const d = data as { subarray?: (a: number, b: number) => ArrayLike<unknown>; slice?: unknown };
  if (typeof d.subarray === "function") return d.subarray(from, to);
  return (data as unknown[]).slice(from, to);
}

/** A {@link RecordSource} of one Parquet partition. */
export class ParquetSource implements RecordSource {
  /** GETs and bytes of the last `read`, for tests and the benchmark. */
  lastStats: { requests: number; bytes: number } | undefined;

  constructor(private readonly options: ParquetSourceOptions) {}

  async *read(from: number): AsyncIterable<RowBlock> {
    const o = this.options;
    if (from < o.start || from > o.end) {
      throw new PipelineError(
        "INTERNAL",
        `row ${from} is outside the partition's rows [${o.start}, ${o.end})`,
      );
    }
    if (from === o.end) return;
    const what = `Parquet input ${o.bucket}/${o.name}`;
    const { file } = await openParquetObject(o.store, o.bucket, o.name, o.etag);
    this.lastStats = file.stats;
    const metadata = await readParquetFooter(file, what);
    checkParquetColumns(metadata, o.columns, what);
    const groups = rowGroupSpans(metadata, o.columns);
    const total = Number(metadata.num_rows);
    if (o.end > total) {
      throw new PipelineError(
        "INTERNAL",
        `partition rows [${o.start}, ${o.end}) run past the ${total} rows of ${what}`,
      );
    }
    const ranges: { rowStart: number; rowEnd: number }[] = [];
    for (const g of groups) {
      const rowStart = Math.max(from, g.firstRow);
      const rowEnd = Math.min(o.end, g.firstRow + g.rows);
      if (rowStart < rowEnd) ranges.push({ rowStart, rowEnd });
    }
    const blockRows = o.blockRows ?? 8192;
    const read = readRanges(file, metadata, o.columns, ranges);
    for (let r = 0; r < ranges.length; r++) {
      const { rowStart, rowEnd } = ranges[r] as { rowStart: number; rowEnd: number };
      const columns = await read(r);
      for (let at = rowStart; at < rowEnd; at += blockRows) {
        const count = Math.min(blockRows, rowEnd - at);
        const block: RowBlock = { kind: "rows", count, firstRow: at, columns: {} };
        for (const name of o.columns) {
          block.columns[name] = slice(
            columns[name] as ArrayLike<unknown>,
            at - rowStart,
            at - rowStart + count,
          );
        }
        yield block;
      }
    }
  }
}

/**
 * Reader of the needed columns of `ranges[r]`; asking for range r also starts range
 * r + 1, so the next row group's I/O and decoding overlap the consumer.
 */
function readRanges(
  file: ParquetObject,
  metadata: FileMetaData,
  columns: readonly string[],
  ranges: { rowStart: number; rowEnd: number }[],
): (r: number) => Promise<Columns> {
  const started = new Map<number, Promise<Columns>>();
  let scan: ReturnType<typeof parquetScan> | undefined;
  const start = (r: number): Promise<Columns> => {
    let p = started.get(r);
    if (!p) {
      const range = ranges[r] as { rowStart: number; rowEnd: number };
      scan ??= parquetScan({
        file,
        metadata,
        columns: [...columns],
        compressors: PARQUET_COMPRESSORS,
        useOffsetIndex: false,
      });
      p = scan.then(async (s) => {
        const out: Columns = {};
        const data = await Promise.all(
          columns.map((column) =>
            s.readColumn({ column, rowStart: range.rowStart, rowEnd: range.rowEnd }),
          ),
        );
        columns.forEach((column, k) => {
          out[column] = data[k] as ArrayLike<unknown>;
        });
        return out;
      });
      p.catch(() => {}); // surfaced when awaited
      started.set(r, p);
    }
    return p;
  };
  return (r: number) => {
    const p = start(r);
    started.delete(r - 1);
    if (r + 1 < ranges.length) start(r + 1);
    return p;
  };
}
