/**
 * What the partition readers hand out (blocks of owned records) and what they take
 * (which byte range to read, how records end, the size limit), shared by the line
 * reader and the CSV record reader.
 *
 * Terminology: a *physical line* ends at '\n' (or EOF); a *record* is one line, or
 * for CSV several physical lines when a quoted field holds newlines. A *record start*
 * is dataStart or an offset just past a record's terminating '\n'.
 */
import { InvalidArgumentError } from "../core/errors.ts";

/**
 * A block of owned records, all in one buffer. Blocks are independent: the reader never
 * reuses or overwrites a block's arrays or buffer, so a consumer may keep a block after
 * asking for the next (provided the source does not recycle its chunk buffers, which
 * Node streams don't).
 */
export interface OwnedLines {
  /** Bytes holding this block's records (often the incoming chunk itself, not a copy). */
  buf: Buffer;
  /** Records in this block (>= 1). */
  count: number;
  /** Record i's content is buf[starts[i], ends[i]), terminator stripped; -1 when oversize. */
  starts: Int32Array;
  ends: Int32Array;
  /** Next record start after record i, relative to `base` (use nextOffsets for oversize records). */
  nexts: Int32Array;
  /** Absolute object offset of buf[0]. */
  base: number;
  /** 1 when record i was longer than maxLineBytes: its bytes were skipped, not buffered. */
  oversize: Uint8Array;
  /** Absolute start offset of record i (known for oversize records too). */
  offsets: Float64Array;
  /** Absolute offset of the next record start after record i (past its terminator, or EOF). */
  nextOffsets: Float64Array;
  /**
   * Physical lines record i spans: 1 plus the newlines inside its quoted fields (always
   * 1 in line mode). Record i's line number is the previous records' lines summed, plus 1.
   */
  lines: Int32Array;
  /**
   * 1 when record i opened a quoted field that did not close within maxLineBytes (or
   * before EOF): the record was cut at the end of its first physical line, and reading
   * went on at the next line. Report it as "unterminated quoted field". CSV mode only.
   */
  unterminated: Uint8Array;
}

/**
 * What a read found out about record starts, for the chaining check (see
 * partition-chain.ts) and line numbers. The reader fills it as it goes; the figures are
 * final once the reader has finished (`complete`), not when the consumer stopped early.
 */
export interface ReadStats {
  /**
   * The first record start the read took: `from` when it was known to be one, else the
   * speculated one (just past the first newline outside quotes at or after from-1).
   * It may lie at or past `end` (the partition owns nothing) or be EOF; -1 until known.
   * A read with from >= end reads nothing and reports `from`.
   */
  firstRecordStart: number;
  /** Offset just past the last owned record (firstRecordStart when none is owned); -1 until known. */
  nextRecordStart: number;
  /** Owned records read. */
  records: number;
  /** Physical lines of the owned records (the sum of their `lines`). */
  physicalLines: number;
  /** True once the reader finished by itself (end reached or EOF), so the figures are final. */
  complete: boolean;
}

/** A ReadStats to pass in `ReadOwnedOptions.stats`. */
export function createReadStats(): ReadStats {
  return {
    firstRecordStart: -1,
    nextRecordStart: -1,
    records: 0,
    physicalLines: 0,
    complete: false,
  };
}

/** Which part of the object to read, how records end, and the size limit. */
export interface ReadOwnedOptions {
  /** Absolute offset where reading begins. */
  from: number;
  /**
   * True when `from` is known to be a record start (dataStart, a checkpoint offset, or
   * a chain-checked next record start); otherwise the reader skips to the first record
   * start >= from, for which it needs byte from-1 (see openOffset). In CSV mode that
   * first start is speculated (see ReadStats.firstRecordStart). Offset 0 is always
   * taken as a record start.
   */
  fromIsRecordStart: boolean;
  /** Partition end (exclusive): records starting before it are owned. */
  end: number;
  /**
   * Record limit in bytes (content, terminator excluded). A longer line is yielded
   * flagged oversize, never buffered; in CSV mode a quoted field still open at the limit
   * makes the record unterminated (see OwnedLines.unterminated).
   */
  maxLineBytes: number;
  /**
   * "lines" (default): a record is a physical line (JSON Lines, or CSV read as Spark's
   * multiLine=false). "csv": RFC 4180, a newline inside a quoted field does not end the
   * record. Every reader of one object (workers, verify) must use the same mode and limit.
   */
  records?: "lines" | "csv";
  /** CSV delimiter (default ','): a quote opens a quoted field only at a field start. */
  delimiter?: number;
  /** Filled with what the read found (first and next record start, line counts). */
  stats?: ReadStats;
}

/** Where to open the byte stream for these options: from (if fromIsRecordStart) else from-1. */
export function openOffset(options: ReadOwnedOptions): number {
  return options.fromIsRecordStart || options.from <= 0 ? options.from : options.from - 1;
}

/** Throws InvalidArgumentError for offsets, limits or delimiters a reader can't use. */
export function validateReadOptions(options: ReadOwnedOptions): void {
  const { from, end, maxLineBytes, delimiter } = options;
  if (!Number.isSafeInteger(from) || from < 0) {
    throw new InvalidArgumentError(`from must be a non-negative integer offset, got ${from}`);
  }
  if (!Number.isSafeInteger(end) || end < 0) {
    throw new InvalidArgumentError(`end must be a non-negative integer offset, got ${end}`);
  }
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 0 || maxLineBytes >= 0x7fffffff) {
    throw new InvalidArgumentError(
      `maxLineBytes must be an integer in [0, 2^31-1), got ${maxLineBytes}`,
    );
  }
  if (options.records !== undefined && options.records !== "lines" && options.records !== "csv") {
    throw new InvalidArgumentError(
      `records must be "lines" or "csv", got ${String(options.records)}`,
    );
  }
  if (
    delimiter !== undefined &&
    (!Number.isInteger(delimiter) ||
      delimiter < 0 ||
      delimiter > 0x7f ||
      delimiter === 0x22 ||
      delimiter === 0x0a ||
      delimiter === 0x0d)
  ) {
    throw new InvalidArgumentError(
      `delimiter must be an ASCII byte other than '"', CR and LF, got ${delimiter}`,
    );
  }
}

/** Growable per-record scratch columns; each block gets trimmed copies. */
export class LineTable {
  count = 0;
  starts = new Int32Array(256);
  ends = new Int32Array(256);
  /** Next record starts relative to the block base (doubles: an oversize record may pass 2 GiB). */
  nexts = new Float64Array(256);
  oversize = new Uint8Array(256);
  offsets = new Float64Array(256);
  lines = new Int32Array(256);
  unterminated = new Uint8Array(256);
  /** True when some record since the last take spans lines or is unterminated. */
  private unusual = false;

  /** Add a one-line, well-quoted record (the common case). */
  push(start: number, end: number, next: number, oversize: boolean, offset: number): void {
    const n = this.count;
    if (n === this.starts.length) this.grow();
    if (oversize) {
      this.starts[n] = -1;
      this.ends[n] = -1;
      this.oversize[n] = 1;
    } else {
      this.starts[n] = start;
      this.ends[n] = end;
      this.oversize[n] = 0;
    }
    this.nexts[n] = next;
    this.offsets[n] = offset;
    if (this.unusual) {
      this.lines[n] = 1;
      this.unterminated[n] = 0;
    }
    this.count = n + 1;
  }

  /** Add a record that may span lines or be unterminated. */
  pushRecord(
    start: number,
    end: number,
    next: number,
    oversize: boolean,
    offset: number,
    lines: number,
    unterminated: boolean,
  ): void {
    const n = this.count;
    if ((lines !== 1 || unterminated) && !this.unusual) {
      // Columns for earlier records of this block were not written: fill them now.
      this.lines.fill(1, 0, n);
      this.unterminated.fill(0, 0, n);
      this.unusual = true;
    }
    this.push(start, end, next, oversize, offset);
    if (this.unusual) {
      this.lines[n] = lines;
      this.unterminated[n] = unterminated ? 1 : 0;
    }
  }

  /** Hand the collected records out as a block and start over. */
  take(buf: Buffer, base: number): OwnedLines {
    const n = this.count;
    const nexts = new Int32Array(n);
    const nextOffsets = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const next = this.nexts[i] as number;
      nexts[i] = next;
      nextOffsets[i] = base + next;
    }
    const lines = this.unusual ? this.lines.slice(0, n) : new Int32Array(n).fill(1);
    const unterminated = this.unusual ? this.unterminated.slice(0, n) : new Uint8Array(n);
    this.count = 0;
    this.unusual = false;
    return {
      buf,
      count: n,
      starts: this.starts.slice(0, n),
      ends: this.ends.slice(0, n),
      nexts,
      base,
      oversize: this.oversize.slice(0, n),
      offsets: this.offsets.slice(0, n),
      nextOffsets,
      lines,
      unterminated,
    };
  }

  private grow(): void {
    const cap = this.starts.length * 2;
    const starts = new Int32Array(cap);
    const ends = new Int32Array(cap);
    const nexts = new Float64Array(cap);
    const oversize = new Uint8Array(cap);
    const offsets = new Float64Array(cap);
    const lines = new Int32Array(cap);
    const unterminated = new Uint8Array(cap);
    starts.set(this.starts);
    ends.set(this.ends);
    nexts.set(this.nexts);
    oversize.set(this.oversize);
    offsets.set(this.offsets);
    lines.set(this.lines);
    unterminated.set(this.unterminated);
    this.starts = starts;
    this.ends = ends;
    this.nexts = nexts;
    this.oversize = oversize;
    this.offsets = offsets;
    this.lines = lines;
    this.unterminated = unterminated;
  }
}

/** A chunk as a Buffer without copying. */
export function asBuffer(chunk: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
}

/**
 * Why the reader already knows record i of `block` is bad (the reason for the errors
 * output), or undefined when its content is there to parse: "record longer than N
 * bytes" (oversize; "line ..." in line mode) or "unterminated quoted field".
 */
export function readerFault(
  block: OwnedLines,
  i: number,
  maxLineBytes: number,
  records: "lines" | "csv" = "lines",
): string | undefined {
  if (block.oversize[i] === 1) {
    return `${records === "csv" ? "record" : "line"} longer than ${maxLineBytes} bytes`;
  }
  if (block.unterminated[i] === 1) return "unterminated quoted field";
  return undefined;
}
