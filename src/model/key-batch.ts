import { copyBytes } from "../core/bytes.ts";
import { decodeField } from "../records/csv-fields.ts";

/**
 * Key-column values of one batch. Plain printable ASCII (no quote, backslash or
 * comma) — nearly every id — stays as bytes copied from the input and goes to
 * the output without ever becoming a string; anything else is decoded strictly
 * (invalid UTF-8 throws, making the record bad) and kept as a string.
 *
 * Ranges live in typed arrays and strings in a sparse map: one key per row, and a
 * JS array push per field per row cost more than the id's bytes (0.5 µs a row).
 */
export class KeyBatch {
  private bytes = Buffer.allocUnsafe(8192);
  private used = 0;
  private count = 0;
  /** Byte range of key i in `data`; start is -1 when {@link KeyBatch.stringAt} holds it. */
  starts: Int32Array;
  ends: Int32Array;
  /** Where `used` stood before key i (to drop keys from i on). */
  private marks: Int32Array;
  private readonly strings = new Map<number, string>();

  /** `capacity`: the keys expected (a batch's rows × key columns); it grows past them as needed. */
  constructor(capacity = 256) {
    const n = Math.max(16, capacity);
    this.starts = new Int32Array(n);
    this.ends = new Int32Array(n);
    this.marks = new Int32Array(n);
  }

  /** Number of keys held. */
  get length(): number {
    return this.count;
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
    const i = this.count;
    if (i === this.starts.length) this.growIndex();
    copyBytes(buf, start, n, this.bytes, this.used);
    this.marks[i] = this.used;
    this.starts[i] = this.used;
    this.used += n;
    this.ends[i] = this.used;
    this.count = i + 1;
  }

  /** Add a key that is already a string. */
  addString(value: string): void {
    const i = this.count;
    if (i === this.starts.length) this.growIndex();
    this.marks[i] = this.used;
    this.starts[i] = -1;
    this.ends[i] = -1;
    this.strings.set(i, value);
    this.count = i + 1;
  }

  /** The string of key i when it is held as one (its start is -1), else undefined. */
  stringAt(i: number): string | undefined {
    return this.strings.get(i);
  }

  /** Drop keys from index `n` on (a record that turned out bad; 0: all of them, to reuse the batch). */
  truncate(n: number): void {
    if (n >= this.count) return;
    this.used = this.marks[n] as number;
    if (n === 0) this.strings.clear();
    else {
      for (let i = n; i < this.count; i++) {
        if ((this.starts[i] as number) < 0) this.strings.delete(i);
      }
    }
    this.count = n;
  }

  /** Key i as a string (for the errors output and tests). */
  get(i: number): string {
    const s = this.starts[i] as number;
    if (s < 0) return this.strings.get(i) as string;
    return this.bytes.toString("latin1", s, this.ends[i] as number);
  }

  private grow(n: number): void {
    let size = this.bytes.length * 2;
    while (size < this.used + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.bytes.copy(next, 0, 0, this.used);
    this.bytes = next;
  }

  private growIndex(): void {
    const cap = this.starts.length * 2;
    const widen = (a: Int32Array) => {
      const next = new Int32Array(cap);
      next.set(a);
      return next;
    };
    this.starts = widen(this.starts);
    this.ends = widen(this.ends);
    this.marks = widen(this.marks);
  }
}
function plainAscii(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || c === 0x2c) return false;
  }
  return true;
}
