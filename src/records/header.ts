/** Reading a CSV header line without reading the whole object. */
import { InvalidArgumentError } from "../core/errors.ts";
import { readOwnedLines } from "./line-reader.ts";
import { asBuffer } from "./owned-lines.ts";

/** The header line and where the data after it begins. */
export interface FirstLine {
  /** The first line's bytes: terminator ('\n' or '\r\n') and a leading UTF-8 BOM stripped. */
  line: Buffer;
  /** Absolute offset just past the first line's terminator (or EOF when it has none). */
  dataStart: number;
  /**
   * Physical lines the header spans: 1, or more in CSV mode when a quoted column name
   * holds newlines. The first data record's line number is lines + 1.
   */
  lines: number;
}

/** How the header record ends: a line (default), or a CSV record (quoted newlines allowed). */
export interface FirstLineOptions {
  records?: "lines" | "csv";
  /** CSV delimiter (default ','). */
  delimiter?: number;
}

/**
 * Read the first line of `source` (a byte stream from offset 0), stopping as soon as it
 * is complete and destroying the source. Returns undefined for an empty object. Throws
 * InvalidArgumentError when no newline appears within the first `maxBytes` bytes (the
 * line, terminator excluded, may be at most maxBytes bytes long), so a file that is not
 * line-oriented can't make us buffer it whole.
 */
export async function readFirstLine(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?(): void },
  maxBytes: number,
  options: FirstLineOptions = {},
): Promise<FirstLine | undefined> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new InvalidArgumentError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }
  if (options.records === "csv") return readFirstCsvRecord(source, maxBytes, options.delimiter);
  const parts: Buffer[] = [];
  let total = 0;
  let exhausted = false;
  try {
    for await (const raw of source) {
      const chunk = Buffer.isBuffer(raw)
        ? raw
        : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      if (chunk.length === 0) continue;
      const k = chunk.indexOf(0x0a);
      if (k >= 0) {
        parts.push(chunk.subarray(0, k));
        total += k;
        return finish(Buffer.concat(parts, total), total + 1, true, maxBytes);
      }
      total += chunk.length;
      // A '\r' may still be the first half of "\r\n", so allow one extra byte.
      if (total > maxBytes + 1) throw tooLong(maxBytes);
      parts.push(chunk);
    }
    exhausted = true;
    if (total === 0) return undefined;
    return finish(Buffer.concat(parts, total), total, false, maxBytes);
  } finally {
    if (!exhausted) source.destroy?.();
  }
}

function finish(
  bytes: Buffer,
  dataStart: number,
  hadNewline: boolean,
  maxBytes: number,
): FirstLine {
  let end = bytes.length;
  if (hadNewline && end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end > maxBytes) throw tooLong(maxBytes);
  let start = 0;
  if (end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  return { line: bytes.subarray(start, end), dataStart, lines: 1 };
}

/**
 * The first CSV record, read by the same rules as the data (csv-record-reader.ts), so a
 * quoted column name may hold newlines and dataStart is where the data reader expects.
 * Only the first maxBytes+2 bytes are read: a header record that fits ends within them,
 * and one that doesn't is too long (or unterminated) whatever follows.
 */
async function readFirstCsvRecord(
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?(): void },
  maxBytes: number,
  delimiter: number | undefined,
): Promise<FirstLine | undefined> {
  try {
    const options = {
      from: 0,
      fromIsRecordStart: true,
      end: 1,
      maxLineBytes: maxBytes,
      records: "csv" as const,
      ...(delimiter === undefined ? {} : { delimiter }),
    };
    for await (const block of readOwnedLines(firstBytes(source, maxBytes + 2), options)) {
      if (block.oversize[0] === 1) throw tooLong(maxBytes);
      const s = block.starts[0] as number;
      const e = block.ends[0] as number;
      const bom =
        e - s >= 3 &&
        block.buf[s] === 0xef &&
        block.buf[s + 1] === 0xbb &&
        block.buf[s + 2] === 0xbf;
      return {
        line: block.buf.subarray(bom ? s + 3 : s, e),
        dataStart: block.nextOffsets[0] as number,
        lines: block.lines[0] as number,
      };
    }
    return undefined;
  } finally {
    source.destroy?.();
  }
}

/** The first n bytes of `source`. */
async function* firstBytes(
  source: AsyncIterable<Buffer | Uint8Array>,
  n: number,
): AsyncGenerator<Buffer> {
  let left = n;
  for await (const raw of source) {
    const chunk = asBuffer(raw);
    if (chunk.length >= left) {
      yield chunk.subarray(0, left);
      return;
    }
    left -= chunk.length;
    yield chunk;
  }
}

function tooLong(maxBytes: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `no newline in the first ${maxBytes} bytes: the CSV header line is too long, or the input is not a line-oriented CSV file`,
  );
}
