/**
 * A slow, obvious CSV record splitter: the boundary and limit rules of
 * src/records/csv-record-reader.ts written as a byte-at-a-time state machine, to test
 * the fast reader against. Also a partition driver that reads partitions the way workers
 * do (speculating, then the chaining check) for the property tests.
 */
import { readOwnedLines } from "../../src/records/line-reader.ts";
import {
  createReadStats,
  type OwnedLines,
  openOffset,
  type ReadOwnedOptions,
} from "../../src/records/owned-lines.ts";
import { type ChainLink, resolveChain } from "../../src/records/partition-chain.ts";

const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

/** One record as the reference (and the tests) see it. */
export interface RefRecord {
  offset: number;
  next: number;
  /** Content (terminator stripped) as latin1, i.e. byte-exact; null when oversize. */
  text: string | null;
  lines: number;
  unterminated: boolean;
}

/**
 * The record starting at s. `fieldStartAtS`: whether a quote at s opens a quoted field
 * (true at a real record start; false for the speculative record read from from-1).
 */
export function referenceRecord(
  b: Buffer,
  s: number,
  limit: number,
  fieldStartAtS = true,
  delim = 0x2c,
): RefRecord {
  const lp = s + limit + 2;
  let inQuote = false;
  let nls = 0;
  let firstNl = -1;
  let i = s;
  const make = (contentEnd: number, next: number, lines: number, unterminated: boolean) => ({
    offset: s,
    next,
    text: contentEnd - s > limit ? null : b.toString("latin1", s, contentEnd),
    lines,
    unterminated,
  });
  const cut = () => {
    const end = firstNl > s && b[firstNl - 1] === CR ? firstNl - 1 : firstNl;
    return make(end, firstNl + 1, 1, true);
  };
  for (;;) {
    if (i >= lp) {
      if (inQuote && firstNl >= 0) return cut();
      // Oversize: ends at the first newline at or after the limit point.
      const k = b.indexOf(NL, i);
      const rec = make(k < 0 ? b.length : k, k < 0 ? b.length : k + 1, nls + 1, false);
      return { ...rec, text: null };
    }
    if (i >= b.length) {
      if (inQuote && firstNl >= 0) return cut();
      return make(b.length, b.length, nls + 1, inQuote);
    }
    const c = b[i] as number;
    if (!inQuote) {
      if (c === NL) {
        const end = i > s && b[i - 1] === CR ? i - 1 : i;
        return make(end, i + 1, nls + 1, false);
      }
      if (c === QUOTE) {
        const atFieldStart =
          i === s
            ? fieldStartAtS
            : b[i - 1] === delim ||
              b[i - 1] === NL ||
              (i === 3 && s === 0 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf);
        if (atFieldStart) inQuote = true;
      }
      i++;
    } else if (c === QUOTE) {
      if (i + 1 < b.length && b[i + 1] === QUOTE) i += 2;
      else {
        inQuote = false;
        i++;
      }
    } else {
      if (c === NL) {
        nls++;
        if (firstNl < 0) firstNl = i;
      }
      i++;
    }
  }
}

/** Every record from the known record start `from` to EOF. */
export function referenceRecords(b: Buffer, from: number, limit: number): RefRecord[] {
  const out: RefRecord[] = [];
  for (let p = from; p < b.length; ) {
    const r = referenceRecord(b, p, limit);
    out.push(r);
    p = r.next;
  }
  return out;
}

/** The first record start a speculative read of [from, ...) takes. */
export function referenceSpeculatedStart(b: Buffer, from: number, limit: number): number {
  if (from <= 0) return from;
  if (from - 1 >= b.length) return b.length;
  return referenceRecord(b, from - 1, limit, false).next;
}

/** Flatten blocks into records, checking each block's internal consistency. */
export function recordsOf(blocks: OwnedLines[]): RefRecord[] {
  const out: RefRecord[] = [];
  for (const blk of blocks) {
    if (blk.count < 1) throw new Error("empty block");
    for (const arr of [
      blk.starts,
      blk.ends,
      blk.nexts,
      blk.oversize,
      blk.offsets,
      blk.nextOffsets,
      blk.lines,
      blk.unterminated,
    ]) {
      if (arr.length !== blk.count) throw new Error("column length differs from count");
    }
    for (let i = 0; i < blk.count; i++) {
      const oversize = blk.oversize[i] === 1;
      const s = blk.starts[i] as number;
      const e = blk.ends[i] as number;
      if (!oversize && !(s >= 0 && s <= e && e <= blk.buf.length))
        throw new Error("span outside buf");
      if (!oversize && blk.offsets[i] !== blk.base + s) throw new Error("offset != base + start");
      if (blk.nextOffsets[i] !== blk.base + (blk.nexts[i] as number))
        throw new Error("nextOffsets != base + nexts");
      out.push({
        offset: blk.offsets[i] as number,
        next: blk.nextOffsets[i] as number,
        text: oversize ? null : blk.buf.toString("latin1", s, e),
        lines: blk.lines[i] as number,
        unterminated: blk.unterminated[i] === 1,
      });
    }
  }
  return out;
}

/** A source yielding bytes from `start` in chunks of chunkSize() bytes (as Uint8Array now and then). */
export function chunkedSource(
  bytes: Buffer,
  start: number,
  chunkSize: () => number,
): AsyncIterable<Uint8Array> & { destroy(): void; destroyed: boolean; yielded: number } {
  const source = {
    destroyed: false,
    yielded: 0,
    destroy() {
      source.destroyed = true;
    },
    async *[Symbol.asyncIterator]() {
      let p = start;
      let n = 0;
      while (p < bytes.length && !source.destroyed) {
        const size = Math.max(1, chunkSize());
        const chunk = bytes.subarray(p, Math.min(bytes.length, p + size));
        p += chunk.length;
        source.yielded += chunk.length;
        // Every other chunk a plain Uint8Array copy: the reader must not assume Buffers.
        yield n++ % 2 === 0 ? Buffer.from(chunk) : new Uint8Array(chunk);
      }
    },
  };
  return source;
}

/** One partition read: the records it owns, and what its stats said. */
export interface PartitionRead {
  records: RefRecord[];
  link: ChainLink;
  /** Physical lines the read reported. */
  physicalLines: number;
}

/** Read [from, end) of `bytes` in CSV mode as a worker does, from openOffset, to EOF. */
export async function readCsvPartition(
  bytes: Buffer,
  options: Omit<ReadOwnedOptions, "records" | "stats">,
  chunkSize: () => number,
): Promise<PartitionRead> {
  const stats = createReadStats();
  const opts: ReadOwnedOptions = { ...options, records: "csv", stats };
  const source = chunkedSource(bytes, openOffset(opts), chunkSize);
  const blocks: OwnedLines[] = [];
  for await (const block of readOwnedLines(source, opts)) blocks.push(block);
  if (!stats.complete) throw new Error("stats not complete after a full read");
  const records = recordsOf(blocks);
  if (stats.records !== records.length)
    throw new Error("stats.records differs from records yielded");
  return {
    records,
    link: { firstRecordStart: stats.firstRecordStart, nextRecordStart: stats.nextRecordStart },
    physicalLines: stats.physicalLines,
  };
}

/**
 * Split [dataStart, size) at `cuts`, read every partition speculatively, then apply the
 * chaining check, re-reading broken partitions from their known record start. Returns
 * each partition's final read and the re-reads made.
 */
export async function readAllPartitions(
  bytes: Buffer,
  dataStart: number,
  cuts: number[],
  limit: number,
  chunkSize: () => number,
): Promise<{
  ranges: { start: number; end: number }[];
  reads: PartitionRead[];
  rereads: { index: number; from: number }[];
}> {
  const points = [...new Set([dataStart, ...cuts, bytes.length])]
    .filter((p) => p >= dataStart && p <= bytes.length)
    .sort((a, b) => a - b);
  const ranges: { start: number; end: number }[] = [];
  for (let k = 0; k + 1 < points.length; k++) {
    ranges.push({ start: points[k] as number, end: points[k + 1] as number });
  }
  const reads: PartitionRead[] = [];
  for (const r of ranges) {
    reads.push(
      await readCsvPartition(
        bytes,
        {
          from: r.start,
          fromIsRecordStart: r.start === dataStart,
          end: r.end,
          maxLineBytes: limit,
        },
        chunkSize,
      ),
    );
  }
  const links = reads.map((r) => r.link);
  const rereads = await resolveChain(links, dataStart, async (index, from) => {
    const range = ranges[index] as { start: number; end: number };
    const read = await readCsvPartition(
      bytes,
      { from, fromIsRecordStart: true, end: range.end, maxLineBytes: limit },
      chunkSize,
    );
    reads[index] = read;
    return read.link;
  });
  return { ranges, reads, rereads };
}

/** Physical line number (1-based) of the byte at `offset`: newlines before it, plus 1. */
export function lineNumberAt(bytes: Buffer, offset: number): number {
  let n = 1;
  for (let i = bytes.indexOf(NL); i >= 0 && i < offset; i = bytes.indexOf(NL, i + 1)) n++;
  return n;
}

/** All records of `text` (CSV mode unless `records` says otherwise), read in `chunk`-byte chunks. */
export async function readCsvText(
  text: string | Buffer,
  options: Partial<ReadOwnedOptions> & { chunk?: number } = {},
): Promise<RefRecord[]> {
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  const { chunk = 1 << 16, ...rest } = options;
  const opts: ReadOwnedOptions = {
    from: 0,
    fromIsRecordStart: true,
    end: bytes.length,
    maxLineBytes: 1 << 20,
    records: "csv",
    ...rest,
  };
  const blocks: OwnedLines[] = [];
  for await (const b of readOwnedLines(
    chunkedSource(bytes, openOffset(opts), () => chunk),
    opts,
  )) {
    blocks.push(b);
  }
  return recordsOf(blocks);
}
