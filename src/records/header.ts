/** Reading a CSV header line without reading the whole object. */
import { InvalidArgumentError } from "../core/errors.ts";

/** The header line and where the data after it begins. */
export interface FirstLine {
  /** The first line's bytes: terminator ('\n' or '\r\n') and a leading UTF-8 BOM stripped. */
  line: Buffer;
  /** Absolute offset just past the first line's terminator (or EOF when it has none). */
  dataStart: number;
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
): Promise<FirstLine | undefined> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new InvalidArgumentError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }
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
  return { line: bytes.subarray(start, end), dataStart };
}

function tooLong(maxBytes: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `no newline in the first ${maxBytes} bytes: the CSV header line is too long, or the input is not a line-oriented CSV file`,
  );
}
