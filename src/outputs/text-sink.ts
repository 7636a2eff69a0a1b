import type { OutputFormat } from "../core/records.ts";
import { type ByteWriter, csvField } from "../pipeline/output-rows.ts";
import type { RowSink } from "../tasks/task.ts";

/** True when a string can go into JSON between quotes as it is. */
function jsonSafe(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

const QUOTE = Buffer.from('"');

/**
 * Rows as JSON Lines or CSV (no header: the merger writes it once), written straight
 * into a byte buffer: the per-column prefixes (`{"name":`, `,`) are built once, so a
 * row costs no strings beyond the values that need escaping.
 */
export class TextRowSink implements RowSink {
  private readonly prefixes: Buffer[];
  private readonly rowEnd: Buffer;
  private readonly csv: boolean;
  private readonly nullText: string;
  private column = 0;

  constructor(
    columns: string[],
    format: OutputFormat,
    private readonly out: ByteWriter,
  ) {
    this.csv = format === "csv";
    this.prefixes = columns.map((name, j) =>
      Buffer.from(
        this.csv ? (j === 0 ? "" : ",") : `${j === 0 ? "{" : ","}${JSON.stringify(name)}:`,
      ),
    );
    this.rowEnd = Buffer.from(this.csv ? "\n" : "}\n");
    this.nullText = this.csv ? "" : "null";
  }

  startRow(): void {
    this.column = 0;
  }

  private next(): void {
    this.out.bytes(this.prefixes[this.column++] as Buffer);
  }

  keyBytes(buf: Buffer, start: number, end: number): void {
    this.next();
    if (this.csv) this.out.range(buf, start, end);
    else {
      this.out.bytes(QUOTE);
      this.out.range(buf, start, end);
      this.out.bytes(QUOTE);
    }
  }

  string(value: string | null): void {
    this.next();
    if (value === null) this.out.latin1(this.nullText);
    else if (this.csv) this.out.utf8(csvField(value));
    else if (jsonSafe(value)) {
      this.out.bytes(QUOTE);
      this.out.utf8(value);
      this.out.bytes(QUOTE);
    } else this.out.utf8(JSON.stringify(value));
  }

  float32(value: number): void {
    this.next();
    this.out.float32(value, this.nullText);
  }

  float64(value: number): void {
    this.next();
    this.out.latin1(Number.isFinite(value) ? String(value) : this.nullText);
  }

  int(value: number): void {
    this.next();
    this.out.latin1(Number.isFinite(value) ? String(value) : this.nullText);
  }

  float32s(values: Float32Array): void {
    this.next();
    if (this.csv) this.out.bytes(QUOTE);
    this.out.byte(0x5b); // [
    for (let i = 0; i < values.length; i++) {
      if (i > 0) this.out.byte(0x2c); // ,
      this.out.float32(values[i] as number, "null");
    }
    this.out.byte(0x5d); // ]
    if (this.csv) this.out.bytes(QUOTE);
  }

  strings(values: string[]): void {
    this.next();
    const text = JSON.stringify(values);
    this.out.utf8(this.csv ? csvField(text) : text);
  }

  endRow(): void {
    this.out.bytes(this.rowEnd);
  }
}
