/**
 * Record source over one Parquet partition (a row range made of whole row groups):
 * footer first, then only the needed columns of each row group, by ranged reads. The
 * next row group is fetched and decoded while the current one is consumed. Yields
 * {@link RowBlock}s whose positions are row indexes; a null in a nullable column
 * stays null (the task applies the descriptor's missing-value rules).
 */
import { type ColumnMetaData, type FileMetaData, parquetScan } from "hyparquet";
import { PipelineError } from "../../core/errors.ts";
import type { ObjectStore } from "../../ports/object-store.ts";
import type { RecordSource, RowBlock, Utf8Column } from "../record-source.ts";
import { checkParquetColumns, type ParquetColumn } from "./columns.ts";
import { decodeOffThread, decodeThreadAvailable, startDecodeThread } from "./decode-thread.ts";
import type { DecodedColumn } from "./decode-worker.ts";
import { decodeNumericChunk, fastEncodings, isFastNumeric, isFastString } from "./fast-columns.ts";
import {
  openParquetObject,
  PARQUET_COMPRESSORS,
  type ParquetObject,
  readParquetFooter,
} from "./object-file.ts";
import { rowGroupSpans } from "./plan.ts";
import { decodeStringChunk, decodeUtf8Chunk } from "./text-columns.ts";

/** Which object, which columns, which rows. */
export interface ParquetSourceOptions {
  store: ObjectStore;
  bucket: string;
  name: string;
  /** The etag the job was planned on (refuses a replaced file). */
  etag?: string;
  /** Columns to read, flat only. */
  columns: readonly string[];
  /**
   * Columns the consumer reads as float32 numbers (a number feature): flat numeric
   * ones come as a Float32Array with NaN for null, by the typed-array fast path.
   * Others keep their Parquet types (bigint for INT64, null for null), e.g. keys
   * that must be exact.
   */
  numeric?: readonly string[];
  /**
   * Text columns the consumer only copies (keys): flat UTF-8 ones come as bytes in
   * the block's `text` (a {@link Utf8Column}), never decoded to strings; a column
   * off the fast path (an encoding it doesn't read) still comes as strings in `columns`.
   */
  text?: readonly string[];
  /** The partition's rows [start, end). */
  start: number;
  end: number;
  /** Rows per block at most (default 8,192). */
  blockRows?: number;
}

type Columns = Record<string, ArrayLike<unknown> | Utf8Column>;

function isUtf8Column(c: ArrayLike<unknown> | Utf8Column): c is Utf8Column {
  return !ArrayBuffer.isView(c) && !Array.isArray(c) && "starts" in c;
}

function sliceUtf8(c: Utf8Column, from: number, to: number): Utf8Column {
  return {
    data: c.data,
    starts: c.starts.subarray(from, to),
    ends: c.ends.subarray(from, to),
    nulls: c.nulls?.subarray(from, to),
  };
}

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

  /** A read begun by {@link ParquetSource.warm}, and where from. */
  private warmed: { from: number; started: Promise<Started | undefined> } | undefined;

  /**
   * Begin reading from `from` now — the decode thread, the footer, the first row
   * group's ranged reads and decoding — while the worker loads its model; `read(from)`
   * then carries on from there. Failures surface from `read`.
   */
  warm(from: number): void {
    if (this.warmed) return;
    const started = this.begin(from);
    started.catch(() => {}); // surfaced by read
    this.warmed = { from, started };
  }

  async *read(from: number): AsyncIterable<RowBlock> {
    const o = this.options;
    const warmed = this.warmed;
    this.warmed = undefined;
    const started = await (warmed?.from === from ? warmed.started : this.begin(from));
    if (!started) return;
    const { ranges, read } = started;
    const blockRows = o.blockRows ?? 8192;
    for (let r = 0; r < ranges.length; r++) {
      const { rowStart, rowEnd } = ranges[r] as { rowStart: number; rowEnd: number };
      const columns = await read(r);
      for (let at = rowStart; at < rowEnd; at += blockRows) {
        const count = Math.min(blockRows, rowEnd - at);
        const block: RowBlock = { kind: "rows", count, firstRow: at, columns: {} };
        const offset = at - rowStart;
        for (const name of o.columns) {
          const c = columns[name] as ArrayLike<unknown> | Utf8Column;
          if (!isUtf8Column(c)) block.columns[name] = slice(c, offset, offset + count);
          else {
            block.text ??= {};
            block.text[name] = sliceUtf8(c, offset, offset + count);
          }
        }
        yield block;
      }
    }
  }

  /** Footer, the row ranges from `from`, and the first range's reads under way (undefined: nothing to read). */
  private async begin(from: number): Promise<Started | undefined> {
    const o = this.options;
    if (from < o.start || from > o.end) {
      throw new PipelineError(
        "INTERNAL",
        `row ${from} is outside the partition's rows [${o.start}, ${o.end})`,
      );
    }
    if (from === o.end) return undefined;
    const typed = { numeric: new Set(o.numeric ?? []), text: new Set(o.text ?? []) };
    // The decode thread starts (a few hundred ms) while the footer is read; until it
    // is up, row groups decode inline.
    if (typed.numeric.size + typed.text.size > 0) startDecodeThread();
    const what = `Parquet input ${o.bucket}/${o.name}`;
    const { file } = await openParquetObject(o.store, o.bucket, o.name, o.etag);
    this.lastStats = file.stats;
    const metadata = await readParquetFooter(file, what);
    const described = checkParquetColumns(metadata, o.columns, what);
    const groups = rowGroupSpans(metadata, o.columns);
    const total = Number(metadata.num_rows);
    if (o.end > total) {
      throw new PipelineError(
        "INTERNAL",
        `partition rows [${o.start}, ${o.end}) run past the ${total} rows of ${what}`,
      );
    }
    const ranges: GroupRange[] = [];
    groups.forEach((g, group) => {
      const rowStart = Math.max(from, g.firstRow);
      const rowEnd = Math.min(o.end, g.firstRow + g.rows);
      if (rowStart < rowEnd) ranges.push({ group, firstRow: g.firstRow, rowStart, rowEnd });
    });
    const read = readRanges(file, metadata, described, ranges, typed);
    if (ranges.length > 0) read.start(0);
    return { ranges, read: read.take };
  }
}

/** A read under way: its row ranges and the reader of range r. */
interface Started {
  ranges: GroupRange[];
  read: (r: number) => Promise<Columns>;
}

/** Columns read on the typed paths: numbers as float32, key text as UTF-8 bytes. */
interface TypedColumns {
  numeric: ReadonlySet<string>;
  text: ReadonlySet<string>;
}

/** The rows of one row group a read wants. */
interface GroupRange {
  group: number;
  firstRow: number;
  rowStart: number;
  rowEnd: number;
}

/** Byte range of a column chunk (from its dictionary page, if any, to its end). */
function chunkSpan(meta: ColumnMetaData): { start: number; end: number } {
  const data = Number(meta.data_page_offset);
  const dict = meta.dictionary_page_offset === undefined ? 0 : Number(meta.dictionary_page_offset);
  // Some writers put 0 for "no dictionary page".
  const start = dict > 0 && dict < data ? dict : data;
  return { start, end: start + Number(meta.total_compressed_size) };
}

/** Gaps up to this many bytes between needed column chunks are read rather than skipped. */
const MERGE_GAP_BYTES = 256 * 1024;

/**
 * The fast-path columns of one row group, decoded: their chunks are fetched with as
 * few ranged reads as the gaps between them allow, then each decodes (numbers to
 * float32, text to strings).
 */
async function readFastColumns(
  file: ParquetObject,
  metadata: FileMetaData,
  columns: readonly ParquetColumn[],
  range: GroupRange,
  typed: TypedColumns,
): Promise<Columns> {
  const { numeric, text } = typed;
  const decoderOf = (name: string) =>
    numeric.has(name) ? decodeNumericChunk : text.has(name) ? decodeUtf8Chunk : decodeStringChunk;
  // Numbers and key bytes decode on the thread; strings (JS values) can't be handed over.
  const threaded = (name: string) => numeric.has(name) || text.has(name);
  const rg = metadata.row_groups[range.group];
  if (!rg) throw new PipelineError("INTERNAL", `row group ${range.group} is not in the footer`);
  const rows = Number(rg.num_rows);
  const chunks = columns.map((c) => {
    const meta = rg.columns.find((x) => x.meta_data?.path_in_schema[0] === c.name)?.meta_data;
    if (!meta)
      throw new PipelineError(
        "INTERNAL",
        `column ${c.name} has no chunk in row group ${range.group}`,
      );
    return { column: c, meta, ...chunkSpan(meta) };
  });
  const out: Columns = {};
  const from = range.rowStart - range.firstRow;
  const to = range.rowEnd - range.firstRow;
  const sliceRows = (values: DecodedColumn | (string | null)[]) =>
    isUtf8Column(values) ? sliceUtf8(values, from, to) : slice(values, from, to);
  // Numeric and key chunks go to the decode thread where there is one (their reads
  // apart from the string chunks', so a read's bytes can be handed over whole).
  const offThread = chunks.some((c) => threaded(c.column.name)) && decodeThreadAvailable();
  const groups = offThread
    ? [
        chunks.filter((c) => threaded(c.column.name)),
        chunks.filter((c) => !threaded(c.column.name)),
      ]
    : [chunks];
  const decoded: Promise<void>[] = [];
  for (const group of groups) {
    for (const span of mergeSpans(group)) {
      const buffer = await file.slice(span.start, span.end);
      if (offThread && threaded((span.chunks[0] as (typeof chunks)[number]).column.name)) {
        const request = span.chunks.map((c) => ({
          name: c.column.name,
          meta: c.meta,
          nullable: c.column.nullable,
          start: c.start - span.start,
          end: c.end - span.start,
          as: numeric.has(c.column.name) ? ("number" as const) : ("utf8" as const),
        }));
        decoded.push(
          decodeOffThread(buffer, rows, request).then(
            (columns) => {
              for (const [name, values] of Object.entries(columns)) out[name] = sliceRows(values);
            },
            // The thread failed (it is not used again): the bytes went with it, read them again.
            async () => decodeInline(new Uint8Array(await file.slice(span.start, span.end)), span),
          ),
        );
        continue;
      }
      decodeInline(new Uint8Array(buffer), span);
    }
  }
  await Promise.all(decoded);
  return out;

  function decodeInline(bytes: Uint8Array, span: { start: number; chunks: typeof chunks }): void {
    for (const c of span.chunks) {
      const decode = decoderOf(c.column.name);
      const values = decode(bytes.subarray(c.start - span.start, c.end - span.start), {
        meta: c.meta,
        nullable: c.column.nullable,
        rows,
        compressors: PARQUET_COMPRESSORS,
      });
      out[c.column.name] = sliceRows(values);
    }
  }
}

/** Chunks sorted by offset and grouped into spans read at once (small gaps read through). */
function mergeSpans<T extends { start: number; end: number }>(
  chunks: T[],
): { start: number; end: number; chunks: T[] }[] {
  const sorted = [...chunks].sort((a, b) => a.start - b.start);
  const spans: { start: number; end: number; chunks: T[] }[] = [];
  for (const c of sorted) {
    const last = spans.at(-1);
    if (last && c.start - last.end <= MERGE_GAP_BYTES) {
      last.chunks.push(c);
      last.end = Math.max(last.end, c.end);
    } else spans.push({ start: c.start, end: c.end, chunks: [c] });
  }
  return spans;
}

/**
 * Reader of the needed columns of `ranges[r]`: `take(r)` also starts range r + 1, so
 * the next row group's I/O and decoding overlap the consumer, and `start(r)` begins
 * one early (warming). Flat numeric columns read as numbers, and text columns, take
 * the fast paths (fast-columns.ts); the rest hyparquet.
 */
function readRanges(
  file: ParquetObject,
  metadata: FileMetaData,
  columns: readonly ParquetColumn[],
  ranges: GroupRange[],
  typed: TypedColumns,
): { start(r: number): void; take(r: number): Promise<Columns> } {
  const { numeric } = typed;
  const started = new Map<number, Promise<Columns>>();
  let scan: ReturnType<typeof parquetScan> | undefined;
  const start = (r: number): Promise<Columns> => {
    let p = started.get(r);
    if (!p) {
      const range = ranges[r] as GroupRange;
      const rg = metadata.row_groups[range.group];
      const fast = columns.filter((c) => {
        const meta = rg?.columns.find((x) => x.meta_data?.path_in_schema[0] === c.name)?.meta_data;
        const fastType = numeric.has(c.name) ? isFastNumeric(c) : isFastString(c);
        return fastType && meta !== undefined && fastEncodings(meta);
      });
      const slow = columns.filter((c) => !fast.includes(c)).map((c) => c.name);
      p = (async () => {
        const out = await readFastColumns(file, metadata, fast, range, typed);
        if (slow.length > 0) {
          scan ??= parquetScan({
            file,
            metadata,
            columns: slow,
            compressors: PARQUET_COMPRESSORS,
            useOffsetIndex: false,
          });
          const s = await scan;
          const data = await Promise.all(
            slow.map((column) =>
              s.readColumn({ column, rowStart: range.rowStart, rowEnd: range.rowEnd }),
            ),
          );
          slow.forEach((column, k) => {
            out[column] = data[k] as ArrayLike<unknown>;
          });
        }
        return out;
      })();
      p.catch(() => {}); // surfaced when awaited
      started.set(r, p);
    }
    return p;
  };
  return {
    start: (r: number) => {
      start(r);
    },
    take: (r: number) => {
      const p = start(r);
      started.delete(r - 1);
      if (r + 1 < ranges.length) start(r + 1);
      return p;
    },
  };
}
