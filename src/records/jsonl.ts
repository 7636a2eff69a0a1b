/** JSON Lines records: one JSON object per line. */
import { BadRecordError } from "./bad-record.ts";
import { decodeUtf8Strict } from "./csv-fields.ts";

/**
 * Parse the line buf[start, end) as one JSON object (strict UTF-8; a leading UTF-8 BOM
 * is ignored, since the first line of a file may carry one). Throws BadRecordError for
 * invalid UTF-8, invalid JSON, or JSON that is not an object (array, string, number,
 * boolean or null): a record must name its fields.
 */
export function parseJsonLine(buf: Buffer, start: number, end: number): Record<string, unknown> {
  let s = start;
  if (end - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
  const text = decodeUtf8Strict(buf, s, end);
  if (text === undefined) throw new BadRecordError("invalid UTF-8 in line");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRecordError(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    throw new BadRecordError(`JSON line is ${kind}, not an object: each line must be {...}`);
  }
  return value as Record<string, unknown>;
}
