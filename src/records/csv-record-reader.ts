/**
 * CSV record reader (RFC 4180): like the line reader, but a newline inside a quoted
 * field does not end the record, so a record may span several physical lines.
 *
 * Quoting: a '"' opens a quoted field only at a field start (the record's first byte,
 * or just after the delimiter); elsewhere it is a literal character, as splitCsvLine
 * reads it. Inside a quoted field `""` is an escaped quote and the next lone '"' closes
 * it. A record ends at the first '\n' outside quotes ('\r\n' as today), or at EOF.
 *
 * Boundary rule (README, "CSV with quoted newlines"): a read that does not start at a known record
 * start speculates that byte from-1 is outside quotes, reads a record from there and
 * takes the offset after it as its first record start. The chaining check
 * (partition-chain.ts) confirms or corrects the guess. Everything here is a pure function
 * of the bytes from a record start, whatever the chunking, so a re-read from a known
 * record start and the speculative read agree from any common record start on.
 *
 * Limit: a record's content may be at most `limit` bytes. Let the limit point be
 * recordStart + limit + 2 (the first offset at which the record's terminating '\n' can
 * no longer give content <= limit). If the record has not ended before it:
 * - when the limit point lies inside a quoted field (its closing quote is at or past the
 *   limit point, or never comes before EOF) and the record's first physical line ended
 *   before the limit point: the record is *unterminated*; it is cut at the end of its
 *   first physical line, and reading goes on at the next line (those bytes are still
 *   buffered, so they are read again from there);
 * - otherwise the record is *oversize*: it ends at the first '\n' at or after the limit
 *   point, quotes no longer counted, and nothing more of it is buffered. A single
 *   over-long line (quoted or not) is therefore skipped exactly as in line mode.
 * A quoted field still open at EOF makes the record unterminated the same way.
 *
 * Speed: quotes and newlines are found with Buffer#indexOf jumps, never a JS loop over
 * every byte; a chunk with no quote at all costs one extra indexOf and then runs the
 * line reader's loop.
 */
import {
  asBuffer,
  LineTable,
  type OwnedLines,
  openOffset,
  type ReadOwnedOptions,
  validateReadOptions,
} from "./owned-lines.ts";

const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const EMPTY = Buffer.alloc(0);

/** Quote state of the record in progress. */
const OUT = 0;
const IN = 1;
/** Inside a quoted field, and the segment ended on a '"': the next byte says close or escape. */
const QUOTE_SEEN = 2;

/** Bytes to scan, and the absolute offset of their first byte. */
interface Segment {
  buf: Buffer;
  base: number;
}

/**
 * readOwnedLines for `records: "csv"`. Same contract: yields blocks of owned records
 * (a record that began in an earlier chunk, or was cut from buffered bytes, comes as its
 * own one-record block), stops once the last owned record is complete, destroys the
 * source when it stops early or the consumer does. Fills options.stats, if given,
 * except `complete` (readOwnedLines sets it).
 */
export async function* readCsvRecords(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void },
  options: ReadOwnedOptions,
): AsyncGenerator<OwnedLines> {
  try {
    validateReadOptions(options);
  } catch (err) {
    source.destroy?.();
    throw err;
  }
  const { end, stats } = options;
  const limit = options.maxLineBytes;
  const delim = options.delimiter ?? COMMA;
  const table = new LineTable();
  /** Bytes to scan again before reading on: the buffered tail of a cut record, then the chunk. */
  const queue: Segment[] = [];
  /** Absolute offset of the next byte the source gives. */
  let pos = openOffset(options);
  /** Reading the speculative record from from-1, which no partition of ours owns. */
  let skipping = pos !== options.from;
  let exhausted = false;
  let stopped = false;

  // The record in progress.
  let recAbs = pos;
  /** The limit point (see the module comment). */
  let limitAbs = recAbs + limit + 2;
  /** Its bytes before the current segment are in `carry` (it began in an earlier segment). */
  let open = false;
  let quote = OUT;
  /** Newlines inside its quoted fields so far, and the first one (absolute, -1 if none). */
  let nls = 0;
  let firstNl = -1;
  /** Past the limit outside quotes: the record ends at the next '\n', not buffered. */
  let lineMode = false;
  /** The byte before the current segment (field-start test); 0 = "not a field start". */
  let lastByte = skipping ? 0 : NL;
  /** The record's bytes before the current segment: all before its limit point, so <= limit+2. */
  let carry = EMPTY;
  let carryLen = 0;
  const carryLimit = limit + 2;

  if (stats && (!skipping || options.from >= end)) {
    // An empty range reads nothing: it passes `from` on (the chaining check corrects it).
    stats.firstRecordStart = options.from;
    stats.nextRecordStart = options.from;
  }

  const startRecord = (at: number): void => {
    recAbs = at;
    limitAbs = at + limit + 2;
    open = false;
    quote = OUT;
    nls = 0;
    firstNl = -1;
    lineMode = false;
    carryLen = 0;
  };

  const appendCarry = (buf: Buffer, from: number): void => {
    const n = buf.length - from;
    const total = carryLen + n;
    // Unreachable by the limit rule (the record would have met its limit point); kept
    // so a logic slip can't write past the buffer.
    if (total > carryLimit) throw new Error("csv reader: record outgrew its buffer");
    if (carry.length < total) {
      const grown = Buffer.allocUnsafe(
        Math.min(carryLimit, Math.max(total, carry.length * 2, 4096)),
      );
      carry.copy(grown, 0, 0, carryLen);
      carry = grown;
    }
    buf.copy(carry, carryLen, from);
    carryLen = total;
  };

  /** The record in progress starts the object with a UTF-8 BOM (only a header can). */
  const startsWithBom = (buf: Buffer, base: number): boolean =>
    recAbs === 0 &&
    !lineMode &&
    byteAt(buf, base, 0) === 0xef &&
    byteAt(buf, base, 1) === 0xbb &&
    byteAt(buf, base, 2) === 0xbf;

  /** Byte at absolute offset `at` of the record in progress, from the segment or the carry. */
  const byteAt = (buf: Buffer, base: number, at: number): number =>
    at >= base ? (buf[at - base] as number) : (carry[at - recAbs] as number);

  /**
   * End the record in progress: content up to contentEnd, next record at `next`. The
   * record lies in `buf` (base `base`) unless it is open, when it is the carry followed
   * by buf's head. Returns a block to yield for an open record (the table is empty then:
   * an open record is the first of its segment); starts the next record.
   */
  const complete = (
    buf: Buffer,
    base: number,
    contentEnd: number,
    next: number,
    forceOversize: boolean,
    lines: number,
    unterminated: boolean,
  ): OwnedLines | undefined => {
    let block: OwnedLines | undefined;
    if (skipping) {
      skipping = false;
      if (stats) {
        stats.firstRecordStart = next;
        stats.nextRecordStart = next;
      }
    } else {
      const len = contentEnd - recAbs;
      const oversize = forceOversize || len > limit;
      if (!open) {
        const s = recAbs - base;
        table.pushRecord(s, s + len, next - base, oversize, recAbs, lines, unterminated);
      } else {
        let line = EMPTY;
        if (!oversize) {
          line = Buffer.allocUnsafe(len);
          const fromCarry = Math.min(carryLen, len);
          carry.copy(line, 0, 0, fromCarry);
          if (len > fromCarry) buf.copy(line, fromCarry, 0, len - fromCarry);
        }
        table.pushRecord(0, len, next - recAbs, oversize, recAbs, lines, unterminated);
        block = table.take(line, recAbs);
      }
      if (stats) {
        stats.records++;
        stats.physicalLines += lines;
        stats.nextRecordStart = next;
      }
    }
    if (next >= end) stopped = true;
    startRecord(next);
    return block;
  };

  const iterator = source[Symbol.asyncIterator]();
  try {
    if (options.from >= end) return;
    segments: for (;;) {
      let buf: Buffer;
      let base: number;
      const queued = queue.shift();
      if (queued !== undefined) {
        buf = queued.buf;
        base = queued.base;
      } else if (!exhausted) {
        const r = await iterator.next();
        if (r.done) {
          exhausted = true;
          continue;
        }
        buf = asBuffer(r.value);
        base = pos;
        pos += buf.length;
      } else {
        // EOF: the record in progress ends here, or is cut if a quoted field is open.
        if (!open) {
          if (skipping && stats) {
            stats.firstRecordStart = pos;
            stats.nextRecordStart = pos;
          }
          break;
        }
        if (quote !== IN || lineMode || firstNl < 0) {
          // A '"' as the last byte closes its field; an open one without a newline is
          // unterminated, the whole rest being its single line.
          const unterminated = quote === IN && !lineMode;
          const block = complete(EMPTY, pos, pos, pos, lineMode, nls + 1, unterminated);
          if (block) yield block;
          break;
        }
        // A quoted field open at EOF: cut at the first line, read the rest again.
        const next = firstNl + 1;
        const tail = Buffer.from(carry.subarray(next - recAbs, carryLen));
        const cutEnd =
          firstNl > recAbs && carry[firstNl - 1 - recAbs] === CR ? firstNl - 1 : firstNl;
        const block = complete(EMPTY, pos, cutEnd, next, false, 1, true);
        if (block) yield block;
        if (stopped) break;
        if (tail.length > 0) queue.push({ buf: tail, base: next });
        lastByte = NL;
        continue;
      }
      const len = buf.length;
      if (len === 0) continue;

      let i = 0;
      if (quote === QUOTE_SEEN) {
        if (buf[0] === QUOTE) {
          quote = IN;
          i = 1;
        } else quote = OUT;
      }
      /** Next quote and next newline at or after i (-1: none in this segment). */
      let qp = buf.indexOf(QUOTE, i);
      let k = buf.indexOf(NL, i);
      for (;;) {
        if (lineMode) {
          if (k < 0) break;
          const block = complete(buf, base, base + k, base + k + 1, true, nls + 1, false);
          if (block) yield block;
          if (stopped) break;
          i = k + 1;
          k = buf.indexOf(NL, i);
          if (qp >= 0 && qp < i) qp = buf.indexOf(QUOTE, i);
          continue;
        }
        if (quote === OUT) {
          if (qp < 0 || (k >= 0 && k < qp)) {
            // The next event is a newline, or nothing.
            if (k < 0) {
              if (base + len >= limitAbs) lineMode = true;
              break;
            }
            if (base + k >= limitAbs) {
              lineMode = true;
              continue;
            }
            const before = k > 0 ? (buf[k - 1] as number) : lastByte;
            const contentEnd = before === CR && base + k > recAbs ? base + k - 1 : base + k;
            const block = complete(buf, base, contentEnd, base + k + 1, false, nls + 1, false);
            if (block) yield block;
            if (stopped) break;
            i = k + 1;
            if (qp < 0 && !skipping) {
              // No quote in the rest of the segment: the line reader's loop.
              const before = table.count;
              i = pushPlainLines(table, buf, i, base, end, limit);
              k = -1;
              if (base + i >= end) stopped = true;
              if (stats) {
                stats.records += table.count - before;
                stats.physicalLines += table.count - before;
                stats.nextRecordStart = base + i;
              }
              startRecord(base + i);
              if (stopped) break;
              continue; // k < 0 now: the limit test above, then the segment's end
            }
            k = buf.indexOf(NL, i);
            continue;
          }
          // A quote before the next newline: it opens a field only at a field start.
          if (base + qp >= limitAbs) {
            lineMode = true;
            continue;
          }
          const before = qp > 0 ? (buf[qp - 1] as number) : lastByte;
          if (before === delim || before === NL || (base + qp === 3 && startsWithBom(buf, base))) {
            quote = IN;
          }
          i = qp + 1;
          qp = buf.indexOf(QUOTE, i);
          continue;
        }
        // Inside a quoted field; qp is the next quote (a close or half an escape).
        if (qp < 0 ? base + len >= limitAbs : base + qp >= limitAbs) {
          // Still open at the limit point.
          if (firstNl < 0 && k >= 0 && base + k < limitAbs) firstNl = base + k;
          if (firstNl < 0) {
            // The first line alone is over the limit: skip it as an oversize line.
            quote = OUT;
            lineMode = true;
            continue;
          }
          const next = firstNl + 1;
          const cutEnd =
            firstNl > recAbs && byteAt(buf, base, firstNl - 1) === CR ? firstNl - 1 : firstNl;
          if (firstNl >= base) {
            const block = complete(buf, base, cutEnd, next, false, 1, true);
            if (block) yield block;
            if (stopped) break;
            i = next - base;
            qp = buf.indexOf(QUOTE, i);
            k = buf.indexOf(NL, i);
            continue;
          }
          // The first line ended in an earlier segment: scan its buffered rest, then this one.
          const tail = Buffer.from(carry.subarray(next - recAbs, carryLen));
          const block = complete(buf, base, cutEnd, next, false, 1, true);
          if (block) yield block;
          if (stopped) break segments;
          queue.unshift({ buf, base });
          if (tail.length > 0) queue.unshift({ buf: tail, base: next });
          lastByte = NL;
          continue segments;
        }
        const stop = qp < 0 ? len : qp;
        while (k >= 0 && k < stop) {
          if (firstNl < 0) firstNl = base + k;
          nls++;
          k = buf.indexOf(NL, k + 1);
        }
        if (qp < 0) break;
        if (qp + 1 === len) {
          quote = QUOTE_SEEN;
          break;
        }
        if (buf[qp + 1] === QUOTE) i = qp + 2;
        else {
          quote = OUT;
          i = qp + 1;
        }
        qp = buf.indexOf(QUOTE, i);
      }
      if (table.count > 0) yield table.take(buf, base);
      if (stopped) break;
      lastByte = buf[len - 1] as number;
      // The record in progress continues in the next segment.
      if (recAbs < base + len) {
        if (!lineMode) appendCarry(buf, Math.max(0, recAbs - base));
        open = true;
      }
    }
  } finally {
    if (!exhausted) {
      source.destroy?.();
      await iterator.return?.();
    }
  }
}

/**
 * The records of buf from i on, for a segment with no quote left in it: plain lines,
 * pushed as spans into the chunk. Stops at the last '\n' or at the first record
 * starting at or past `end`; returns where the next record starts. A function of its
 * own so its loop runs on locals, not on the generator's captured variables.
 */
function pushPlainLines(
  table: LineTable,
  buf: Buffer,
  from: number,
  base: number,
  end: number,
  limit: number,
): number {
  let i = from;
  for (;;) {
    const k = buf.indexOf(NL, i);
    if (k < 0) return i;
    let e = k;
    if (e > i && buf[e - 1] === CR) e--;
    table.push(i, e, k + 1, e - i > limit, base + i);
    i = k + 1;
    if (base + i >= end) return i;
  }
}
