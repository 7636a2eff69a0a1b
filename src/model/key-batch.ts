import { copyBytes } from "../core/bytes.ts";
import { decodeField } from "../records/csv-fields.ts";

/**
 * Key-column values of one batch. Plain printable ASCII (no quote, backslash or
 * comma) — nearly every id — stays as bytes copied from the input and goes to
 * the output without ever becoming a string; anything else is decoded strictly
 * (invalid UTF-8 throws, making the record bad) and kept as a string.
 */
export class KeyBatch {
  private bytes = Buffer.allocUnsafe(8192);
  private used = 0;
  /** Byte range of key i in `data`, or -1 when `strings[i]` holds it. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly strings: (string | undefined)[] = [];
  private readonly marks: number[] = [];

  /** Number of keys held. */
  get length(): number {
    return this.starts.length;
  }

  /** The bytes the ranges point into. */
  get data(): Buffer {
    return this.bytes;
  }

  /** Add a CSV field (`kind` as from splitCsvLine: 0 plain, 1 quoted, 2 quoted with escapes). */
  addField(buf: Buffer, start: number, end: number, kind: number): void {
    if (kind !== 2 && plainAscii(buf, start, end)) this.pushBytes(buf, start, end);
    else this.addString(decodeField(buf, start, end, kind));
  }

  /**
   * Add a key held as UTF-8 bytes (a Parquet text column): plain ASCII is copied as
   * it is, anything else decoded (as Parquet readers do: invalid bytes become U+FFFD).
   */
  addUtf8(buf: Uint8Array, start: number, end: number): void {
    if (plainAscii(buf, start, end)) this.pushBytes(buf, start, end);
    else
      this.addString(
        Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString("utf8", start, end),
      );
  }

  private pushBytes(buf: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.used + n > this.bytes.length) this.grow(n);
    this.marks.push(this.used);
    copyBytes(buf, start, n, this.bytes, this.used);
    this.starts.push(this.used);
    this.used += n;
    this.ends.push(this.used);
    this.strings.push(undefined);
  }

  /** Add a key that is already a string. */
  addString(value: string): void {
    this.marks.push(this.used);
    this.starts.push(-1);
    this.ends.push(-1);
    this.strings.push(value);
  }

  /** Drop keys from index `n` on (a record that turned out bad). */
  truncate(n: number): void {
    if (n >= this.starts.length) return;
    this.used = this.marks[n] as number;
    this.starts.length = n;
    this.ends.length = n;
    this.strings.length = n;
    this.marks.length = n;
  }

  /** Key i as a string (for the errors output and tests). */
  get(i: number): string {
    const s = this.strings[i];
    if (s !== undefined) return s;
    return this.bytes.toString("latin1", this.starts[i] as number, this.ends[i] as number);
  }

  private grow(n: number): void {
    let size = this.bytes.length * 2;
    while (size < this.used + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.bytes.copy(next, 0, 0, this.used);
    this.bytes = next;
  }
}

function plainAscii(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || c === 0x2c) return false;
  }
  return true;
}
