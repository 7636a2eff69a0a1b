/**
 * CSV field splitting and strict field decoding over byte ranges of a Buffer (number
 * parsing is in decimal-number.ts). These run once per field of every record, so they
 * work on byte offsets and allocate nothing on the hot path (no per-field strings, no
 * regexes).
 *
 * Dialect: RFC 4180 quoting. A quoted field may hold delimiters, `""` escapes and raw
 * newlines ('\n', '\r\n', lone '\r'), kept verbatim: a record holds whatever bytes the
 * reader gave it (one line in line mode, several in CSV mode, csv-record-reader.ts),
 * and a quote still open at the end of those bytes makes it a bad record.
 */
import { latin1Slice } from "../core/bytes.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { BadRecordError } from "./bad-record.ts";

/**
 * Where the fields of one line lie in its buffer (reused across lines).
 * `splitCsvLine` replaces the arrays with larger ones when a line has more fields
 * than they hold, so a FieldSpans never limits the field count.
 */
export interface FieldSpans {
  /** Fields found by the last `splitCsvLine` call. */
  count: number;
  /** Field i's bytes are buf[starts[i], ends[i]), surrounding quotes excluded. */
  starts: Int32Array;
  ends: Int32Array;
  /** 0 plain, 1 quoted, 2 quoted with `""` escapes inside (decodeField unescapes them). */
  kinds: Uint8Array;
}

/** A FieldSpans with room for `capacity` fields; it grows on demand. */
export function createFieldSpans(capacity: number): FieldSpans {
  const cap = Math.max(1, Math.floor(capacity) || 1);
  return {
    count: 0,
    starts: new Int32Array(cap),
    ends: new Int32Array(cap),
    kinds: new Uint8Array(cap),
  };
}

function growFieldSpans(out: FieldSpans): void {
  const cap = out.starts.length * 2;
  const starts = new Int32Array(cap);
  const ends = new Int32Array(cap);
  const kinds = new Uint8Array(cap);
  starts.set(out.starts);
  ends.set(out.ends);
  kinds.set(out.kinds);
  out.starts = starts;
  out.ends = ends;
  out.kinds = kinds;
}

/**
 * Outcome of splitting one record: `unterminated_quote` (a quoted field never closes in
 * the record) and `text_after_quote` (`"a"b`) make the line a bad record.
 */
export type CsvLineStatus = "ok" | "unterminated_quote" | "text_after_quote";

const QUOTE = 0x22;
const COMMA = 0x2c;

/** The byte of a CSV delimiter as a job records it (one character; absent = ","). */
export function delimiterByte(delimiter: string | undefined): number {
  return delimiter === undefined ? COMMA : delimiter.charCodeAt(0);
}

/** A delimiter as the CLI's `--delimiter` takes it: `tab`, or the character quoted for a shell. */
export function delimiterFlag(delimiter: string): string {
  if (delimiter === "\t") return "tab";
  const code = delimiter.charCodeAt(0);
  if (code < 0x20) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${delimiter}'`;
}

/**
 * Split the record buf[start, end) (terminator already stripped; newlines inside quoted
 * fields are field content) into field spans.
 * A line always has at least one field (an empty line is one empty field); a trailing
 * delimiter adds an empty last field. A quote inside an unquoted field is kept as a
 * literal character (lenient, like most readers); only a field that *starts* with a
 * quote is a quoted field. On a non-ok status `out.count` holds the fields split so far.
 */
export function splitCsvLine(
  buf: Buffer,
  start: number,
  end: number,
  out: FieldSpans,
  delimiter: number = COMMA,
): CsvLineStatus {
  let starts = out.starts;
  let ends = out.ends;
  let kinds = out.kinds;
  let cap = starts.length;
  let n = 0;
  let i = start;
  for (;;) {
    if (n === cap) {
      growFieldSpans(out);
      starts = out.starts;
      ends = out.ends;
      kinds = out.kinds;
      cap = starts.length;
    }
    if (i < end && buf[i] === QUOTE) {
      let j = i + 1;
      let kind = 1;
      for (;;) {
        while (j < end && buf[j] !== QUOTE) j++;
        if (j >= end) {
          out.count = n;
          return "unterminated_quote";
        }
        if (j + 1 < end && buf[j + 1] === QUOTE) {
          kind = 2;
          j += 2;
          continue;
        }
        break;
      }
      starts[n] = i + 1;
      ends[n] = j;
      kinds[n] = kind;
      n++;
      j++;
      if (j === end) break;
      if (buf[j] !== delimiter) {
        out.count = n;
        return "text_after_quote";
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < end && buf[j] !== delimiter) j++;
      starts[n] = i;
      ends[n] = j;
      kinds[n] = 0;
      n++;
      if (j === end) break;
      i = j + 1;
    }
  }
  out.count = n;
  return "ok";
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Strictly decode buf[start, end) as UTF-8, or undefined when the bytes are not valid
 * UTF-8. ASCII-only ranges (the common case) skip the TextDecoder call.
 */
export function decodeUtf8Strict(buf: Buffer, start: number, end: number): string | undefined {
  let acc = 0;
  for (let i = start; i < end; i++) acc |= buf[i] as number;
  if (acc < 0x80) return latin1Slice(buf, start, end);
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    return undefined;
  }
}

/**
 * Offset of the first byte of buf[start, end) that begins an ill-formed UTF-8
 * sequence (Unicode Table 3-7: no overlongs, no surrogates, nothing past U+10FFFF,
 * no truncated sequence), or -1 when the range is valid UTF-8.
 */
export function firstInvalidUtf8(buf: Buffer, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const b = buf[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n >= end) return i;
    const second = buf[i + 1] as number;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= n; k++) {
      const c = buf[i + k] as number;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += n + 1;
  }
  return -1;
}

/**
 * "expected N fields, got M" when the CSV line buf[start, end) splits cleanly into
 * the wrong number of fields, else undefined. A record that is bad for another
 * reason may be bad because its fields are shifted (a lost or extra delimiter);
 * the field count is then the reason to report, not the first misplaced value.
 */
export function csvFieldCountProblem(
  buf: Buffer,
  start: number,
  end: number,
  expected: number,
  spans: FieldSpans,
  delimiter: number = COMMA,
): string | undefined {
  if (splitCsvLine(buf, start, end, spans, delimiter) !== "ok" || spans.count === expected) {
    return undefined;
  }
  return `expected ${expected} fields, got ${spans.count}`;
}

/**
 * Why the CSV line buf[start, end) is not valid UTF-8 (naming the column that holds
 * the first bad byte when the line splits into `columns`), or undefined when it is.
 * Every byte is checked, not only the fields a model reads: a line with a corrupt
 * byte anywhere is a corrupt record, and a corrupt category value would otherwise
 * score silently as "unknown".
 */
export function describeInvalidUtf8(
  buf: Buffer,
  start: number,
  end: number,
  columns: readonly string[],
  spans: FieldSpans,
  delimiter: number = COMMA,
): string | undefined {
  const bad = firstInvalidUtf8(buf, start, end);
  if (bad < 0) return undefined;
  const byte = `0x${(buf[bad] as number).toString(16).padStart(2, "0")}`;
  const where = `byte ${byte} at position ${bad - start + 1} of the line`;
  if (splitCsvLine(buf, start, end, spans, delimiter) === "ok") {
    for (let f = 0; f < spans.count; f++) {
      if (bad >= (spans.starts[f] as number) && bad < (spans.ends[f] as number)) {
        const name = columns[f] ?? `#${f + 1}`;
        return `invalid UTF-8 in column ${name} (${where})`;
      }
    }
  }
  return `invalid UTF-8 in line (${where})`;
}

/**
 * Decode one field span (from `splitCsvLine`) to a string: strict UTF-8, and `""`
 * unescaped when `kind` is 2. Throws BadRecordError "invalid UTF-8 in field".
 */
export function decodeField(buf: Buffer, start: number, end: number, kind: number): string {
  const text = decodeUtf8Strict(buf, start, end);
  if (text === undefined) throw new BadRecordError("invalid UTF-8 in field");
  return kind === 2 ? text.replaceAll('""', '"') : text;
}

/**
 * Column names from the CSV header line buf[start, end) (terminator stripped; a leading
 * UTF-8 BOM is ignored), split at `delimiter` (a byte; default ','). Names are kept exactly as written (no trimming); one unnamed
 * column is allowed (pandas writes its index that way). Throws InvalidArgumentError for
 * an empty header, bad quoting, invalid UTF-8 or duplicate names.
 */
export function parseCsvHeader(
  buf: Buffer,
  start: number,
  end: number,
  delimiter: number = COMMA,
): string[] {
  let s = start;
  if (end - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
  if (s === end) {
    throw new InvalidArgumentError(
      "CSV header is empty: the first line must name the columns (is the file empty or does it start with a blank line?)",
    );
  }
  const spans = createFieldSpans(64);
  const status = splitCsvLine(buf, s, end, spans, delimiter);
  if (status === "unterminated_quote") {
    throw new InvalidArgumentError(
      `CSV header has an unterminated quote in column ${spans.count + 1}: close the quoted name with a '"' (write a quote inside it as "")`,
    );
  }
  if (status === "text_after_quote") {
    throw new InvalidArgumentError(
      `CSV header has text after the closing quote of column ${spans.count}: write it as "name" or escape quotes as ""`,
    );
  }
  const names: string[] = [];
  const seen = new Map<string, number>();
  for (let f = 0; f < spans.count; f++) {
    const text = decodeUtf8Strict(buf, spans.starts[f] as number, spans.ends[f] as number);
    if (text === undefined) {
      throw new InvalidArgumentError(
        `CSV header column ${f + 1} is not valid UTF-8: save the file as UTF-8`,
      );
    }
    const name = spans.kinds[f] === 2 ? text.replaceAll('""', '"') : text;
    const previous = seen.get(name);
    if (previous !== undefined) {
      throw new InvalidArgumentError(
        `CSV header names column ${JSON.stringify(name)} twice (columns ${previous + 1} and ${f + 1}): column names must be unique`,
      );
    }
    seen.set(name, f);
    names.push(name);
  }
  return names;
}
