/**
 * Partition line reader: turns a byte stream into blocks of the lines a partition owns.
 *
 * Partition rule: a record starts at p iff p is where the data begins (dataStart) or
 * byte[p-1] is '\n'. A partition [start, end) owns the records starting in it, so the
 * reader skips to the first record start >= start and reads past `end` to finish its
 * last record. Every line of the object is owned by exactly one partition.
 *
 * Lines end with '\n' or '\r\n' (the '\r' is stripped); the last line may lack a
 * newline (then a trailing '\r' is kept: only "\r\n" is a terminator). Empty lines are
 * yielded; the consumer counts them and skips them as records.
 *
 * Speed: lines are found with Buffer#indexOf (memchr) and handed out as offsets into the
 * incoming chunk, so no line is copied or turned into a string. Only a line split
 * across chunks is copied (the tail of one chunk plus the head of the next).
 */
import { InvalidArgumentError } from "../core/errors.ts";

/**
 * A block of owned lines, all in one buffer. Blocks are independent: the reader never
 * reuses or overwrites a block's arrays or buffer, so a consumer may keep a block after
 * asking for the next (provided the source does not recycle its chunk buffers, which
 * Node streams don't).
 */
export interface OwnedLines {
  /** Bytes holding this block's lines (often the incoming chunk itself, not a copy). */
  buf: Buffer;
  /** Lines in this block (>= 1). */
  count: number;
  /** Line i's content is buf[starts[i], ends[i]), terminator stripped; -1 when oversize. */
  starts: Int32Array;
  ends: Int32Array;
  /** Next record start after line i, relative to `base` (use nextOffsets for oversize lines). */
  nexts: Int32Array;
  /** Absolute object offset of buf[0]. */
  base: number;
  /** 1 when line i was longer than maxLineBytes: its bytes were skipped, not buffered. */
  oversize: Uint8Array;
  /** Absolute start offset of line i (known for oversize lines too). */
  offsets: Float64Array;
  /** Absolute offset of the next record start after line i (past its terminator, or EOF). */
  nextOffsets: Float64Array;
}

/** Which part of the object to read, and the oversize limit. */
export interface ReadOwnedOptions {
  /** Absolute offset where reading begins. */
  from: number;
  /**
   * True when `from` is known to be a record start (dataStart, or a checkpoint offset);
   * otherwise the reader skips to the first record start >= from, for which it needs
   * byte from-1 (see openOffset). Offset 0 is always taken as a record start.
   */
  fromIsRecordStart: boolean;
  /** Partition end (exclusive): lines starting before it are owned. */
  end: number;
  /** Longer lines (content, terminator excluded) are yielded flagged oversize, never buffered. */
  maxLineBytes: number;
}

/** Where to open the byte stream for these options: from (if fromIsRecordStart) else from-1. */
export function openOffset(options: ReadOwnedOptions): number {
  return options.fromIsRecordStart || options.from <= 0 ? options.from : options.from - 1;
}

function validate(options: ReadOwnedOptions): void {
  const { from, end, maxLineBytes } = options;
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
}

/** Growable per-line scratch columns; each block gets trimmed copies. */
class LineTable {
  count = 0;
  starts = new Int32Array(256);
  ends = new Int32Array(256);
  nexts = new Int32Array(256);
  oversize = new Uint8Array(256);
  offsets = new Float64Array(256);

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
    this.count = n + 1;
  }

  /** Hand the collected lines out as a block and start over. */
  take(buf: Buffer, base: number): OwnedLines {
    const n = this.count;
    const nexts = this.nexts.slice(0, n);
    const nextOffsets = new Float64Array(n);
    for (let i = 0; i < n; i++) nextOffsets[i] = base + (nexts[i] as number);
    this.count = 0;
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
    };
  }

  private grow(): void {
    const cap = this.starts.length * 2;
    const starts = new Int32Array(cap);
    const ends = new Int32Array(cap);
    const nexts = new Int32Array(cap);
    const oversize = new Uint8Array(cap);
    const offsets = new Float64Array(cap);
    starts.set(this.starts);
    ends.set(this.ends);
    nexts.set(this.nexts);
    oversize.set(this.oversize);
    offsets.set(this.offsets);
    this.starts = starts;
    this.ends = ends;
    this.nexts = nexts;
    this.oversize = oversize;
    this.offsets = offsets;
  }
}

const NL = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

function asBuffer(chunk: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
}

/**
 * Consume `source` (a byte stream positioned at openOffset(options), e.g.
 * fs.createReadStream(path, { start }) or an object-store ranged read, possibly running
 * to EOF) and yield blocks of owned lines, usually one block per incoming chunk (two when
 * a line straddles chunks: the straddling line comes as its own one-line block). Stops,
 * and destroys the source, once the last owned line is complete; also destroys it when
 * the consumer stops early.
 *
 * Memory: besides the incoming chunk, at most maxLineBytes+1 bytes of a partial line are
 * held; a longer line is dropped as it streams by and reported as oversize.
 */
export async function* readOwnedLines(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void },
  options: ReadOwnedOptions,
): AsyncGenerator<OwnedLines> {
  try {
    validate(options);
  } catch (err) {
    source.destroy?.();
    throw err;
  }
  const { end, maxLineBytes } = options;
  const table = new LineTable();
  let exhausted = false;
  /** Absolute offset of the current chunk's first byte. */
  let pos = openOffset(options);
  /** Still looking for the first record start (from was not known to be one). */
  let skipping = pos !== options.from;

  // The line in progress across chunks: its start, total bytes seen, and the first
  // maxLineBytes+1 of them (one extra for a '\r' that may turn out to be a terminator).
  let open = false;
  let openStart = 0;
  let openLen = 0;
  let openLast = 0;
  let openOversize = false;
  let carry = EMPTY;
  let carryLen = 0;
  const carryLimit = maxLineBytes + 1;

  const startCarry = (chunk: Buffer, from: number, absStart: number): void => {
    open = true;
    openStart = absStart;
    openLen = 0;
    openOversize = false;
    carryLen = 0;
    appendCarry(chunk, from);
  };
  const appendCarry = (chunk: Buffer, from: number): void => {
    const n = chunk.length - from;
    if (n === 0) return;
    openLen += n;
    openLast = chunk[chunk.length - 1] as number;
    if (openOversize) return;
    if (openLen > carryLimit) {
      openOversize = true;
      carryLen = 0;
      return;
    }
    if (carry.length < openLen) {
      const grown = Buffer.allocUnsafe(
        Math.min(carryLimit, Math.max(openLen, carry.length * 2, 4096)),
      );
      carry.copy(grown, 0, 0, carryLen);
      carry = grown;
    }
    chunk.copy(carry, carryLen, from);
    carryLen = openLen;
  };

  try {
    if (options.from >= end) return;
    for await (const raw of source) {
      const chunk = asBuffer(raw);
      const len = chunk.length;
      if (len === 0) continue;
      let s = 0;
      if (skipping) {
        const k = chunk.indexOf(NL);
        if (k < 0) {
          pos += len;
          continue;
        }
        skipping = false;
        s = k + 1;
        if (pos + s >= end) return;
      } else if (open) {
        const k = chunk.indexOf(NL);
        if (k < 0) {
          appendCarry(chunk, 0);
          pos += len;
          continue;
        }
        // The open line ends at chunk[k]: total = openLen + k bytes before the '\n'.
        const total = openLen + k;
        const last = k > 0 ? (chunk[k - 1] as number) : openLast;
        const contentLen = total > 0 && last === CR ? total - 1 : total;
        const next = pos + k + 1;
        open = false;
        if (openOversize || contentLen > maxLineBytes) {
          table.push(-1, -1, next - openStart, true, openStart);
          yield table.take(EMPTY, openStart);
        } else {
          const line = Buffer.allocUnsafe(contentLen);
          carry.copy(line, 0, 0, Math.min(carryLen, contentLen));
          if (contentLen > carryLen) chunk.copy(line, carryLen, 0, contentLen - carryLen);
          table.push(0, contentLen, next - openStart, false, openStart);
          yield table.take(line, openStart);
        }
        s = k + 1;
        if (next >= end) return;
      }
      // Whole lines inside this chunk, handed out as offsets into it.
      while (s < len) {
        const abs = pos + s;
        if (abs >= end) break;
        const k = chunk.indexOf(NL, s);
        if (k < 0) {
          startCarry(chunk, s, abs);
          break;
        }
        let e = k;
        if (e > s && chunk[e - 1] === CR) e--;
        table.push(s, e, k + 1, e - s > maxLineBytes, abs);
        s = k + 1;
      }
      if (table.count > 0) yield table.take(chunk, pos);
      pos += len;
      if (!open && pos >= end) return;
      if (s < len && !open) return; // stopped at a line starting at or past `end`
    }
    exhausted = true;
    // EOF: a last line without a newline (the '\r' is kept; only "\r\n" terminates).
    if (open) {
      if (openOversize || openLen > maxLineBytes) {
        table.push(-1, -1, openLen, true, openStart);
        yield table.take(EMPTY, openStart);
      } else {
        table.push(0, openLen, openLen, false, openStart);
        yield table.take(Buffer.from(carry.subarray(0, openLen)), openStart);
      }
    }
  } finally {
    if (!exhausted) source.destroy?.();
  }
}
