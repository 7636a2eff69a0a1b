/**
 * Partition record reader: turns a byte stream into blocks of the records a partition owns.
 *
 * Partition rule: a partition [start, end) owns the records that start in it, so the
 * reader skips to the first record start >= start and reads past `end` to finish its
 * last record. Every record of the object is owned by exactly one partition.
 *
 * Line mode (the default, and JSON Lines): a record is a line, and a record starts at p
 * iff p is where the data begins (dataStart) or byte[p-1] is '\n'. Lines end with '\n'
 * or '\r\n' (the '\r' is stripped); the last line may lack a newline (then a trailing
 * '\r' is kept: only "\r\n" is a terminator). Empty lines are yielded; the consumer
 * counts them and skips them as records. CSV mode (`records: "csv"`, quoted newlines)
 * lives in csv-record-reader.ts.
 *
 * Speed: lines are found with Buffer#indexOf (memchr) and handed out as offsets into the
 * incoming chunk, so no line is copied or turned into a string. Only a line split
 * across chunks is copied (the tail of one chunk plus the head of the next).
 */
import { readCsvRecords } from "./csv-record-reader.ts";
import {
  asBuffer,
  createReadStats,
  LineTable,
  type OwnedLines,
  openOffset,
  type ReadOwnedOptions,
  validateReadOptions,
} from "./owned-lines.ts";

export {
  createReadStats,
  type OwnedLines,
  openOffset,
  type ReadOwnedOptions,
  type ReadStats,
  readerFault,
} from "./owned-lines.ts";

const NL = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/**
 * Consume `source` (a byte stream positioned at openOffset(options), e.g.
 * fs.createReadStream(path, { start }) or an object-store ranged read, possibly running
 * to EOF) and yield blocks of owned records, usually one block per incoming chunk (more
 * when a record straddles chunks: the straddling record comes as its own one-record
 * block). Stops, and destroys the source, once the last owned record is complete; also
 * destroys it when the consumer stops early. `options.records` picks line or CSV mode.
 *
 * Memory: besides the incoming chunk, at most maxLineBytes+1 bytes of a partial record
 * are held; a longer line is dropped as it streams by and reported as oversize.
 */
export async function* readOwnedLines(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void },
  options: ReadOwnedOptions,
): AsyncGenerator<OwnedLines> {
  const stats = options.stats;
  if (stats) Object.assign(stats, createReadStats());
  yield* options.records === "csv" ? readCsvRecords(source, options) : readLines(source, options);
  // Not reached when the consumer stops early: the figures would be partial.
  if (stats) stats.complete = true;
}

async function* readLines(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void },
  options: ReadOwnedOptions,
): AsyncGenerator<OwnedLines> {
  try {
    validateReadOptions(options);
  } catch (err) {
    source.destroy?.();
    throw err;
  }
  const { end, maxLineBytes, stats } = options;
  const table = new LineTable();
  let exhausted = false;
  /** Absolute offset of the current chunk's first byte. */
  let pos = openOffset(options);
  /** Still looking for the first record start (from was not known to be one). */
  let skipping = pos !== options.from;
  const found = (start: number): void => {
    if (stats) {
      stats.firstRecordStart = start;
      stats.nextRecordStart = start;
    }
  };
  const account = (block: OwnedLines): OwnedLines => {
    if (stats) {
      stats.records += block.count;
      stats.physicalLines += block.count;
      stats.nextRecordStart = block.nextOffsets[block.count - 1] as number;
    }
    return block;
  };
  // An empty range reads nothing: it passes `from` on (the chaining check corrects it).
  if (!skipping || options.from >= end) found(options.from);

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
        found(pos + s);
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
          yield account(table.take(EMPTY, openStart));
        } else {
          const line = Buffer.allocUnsafe(contentLen);
          carry.copy(line, 0, 0, Math.min(carryLen, contentLen));
          if (contentLen > carryLen) chunk.copy(line, carryLen, 0, contentLen - carryLen);
          table.push(0, contentLen, next - openStart, false, openStart);
          yield account(table.take(line, openStart));
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
      if (table.count > 0) yield account(table.take(chunk, pos));
      pos += len;
      if (!open && pos >= end) return;
      if (s < len && !open) return; // stopped at a line starting at or past `end`
    }
    exhausted = true;
    if (skipping) found(pos);
    // EOF: a last line without a newline (the '\r' is kept; only "\r\n" terminates).
    if (open) {
      if (openOversize || openLen > maxLineBytes) {
        table.push(-1, -1, openLen, true, openStart);
        yield account(table.take(EMPTY, openStart));
      } else {
        table.push(0, openLen, openLen, false, openStart);
        yield account(table.take(Buffer.from(carry.subarray(0, openLen)), openStart));
      }
    }
  } finally {
    if (!exhausted) source.destroy?.();
  }
}
