import type { OutputFormat } from "../core/records.ts";
import type { ModelDescriptor } from "../model/descriptor.ts";
import type { KeyBatch } from "../model/key-batch.ts";
import type { BatchScores } from "../model/scorer.ts";

/**
 * A float32 score as text: 9 significant digits always round-trip a float32,
 * so `Math.fround(Number(text))` gives back the exact value onnxruntime produced.
 * Trailing zeros are trimmed to keep outputs small.
 */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const s = v.toPrecision(9);
  const e = s.indexOf("e");
  if (e < 0) return s.slice(0, trimmedLength(s, s.length));
  return s.slice(0, trimmedLength(s, e)) + s.slice(e);
}

/** Length of `s[0, end)` without trailing fraction zeros (and a bare "."). */
function trimmedLength(s: string, end: number): number {
  if (s.indexOf(".") < 0) return end;
  let n = end;
  while (n > 0 && s.charCodeAt(n - 1) === 0x30) n--;
  if (n > 0 && s.charCodeAt(n - 1) === 0x2e) n--;
  return n;
}

/** Quote a CSV field when it needs it (RFC 4180). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Column names of an output row: key columns, then outputs, then the label. */
export function outputColumns(descriptor: ModelDescriptor, keyNames: string[]): string[] {
  const cols = [...keyNames, ...descriptor.outputs.map((o) => o.column)];
  if (descriptor.label) cols.push(descriptor.label.column);
  return cols;
}

/** Formats scored rows as JSONL or CSV lines (no header: the merger writes it once). */
export interface RowFormatter {
  /** CSV header line (with newline), or "" for JSONL. */
  readonly header: string;
  /** Append `rows` rows of a batch to `out`; `keys` holds keyCount values per row. */
  format(keys: KeyBatch, scores: BatchScores, rows: number, out: ByteWriter): void;
}

/** True when a string can go into JSON between quotes as it is. */
function jsonSafe(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/**
 * A growing byte buffer that rows are written straight into: no per-row strings,
 * so formatting makes almost no garbage (it showed up as GC time per row), and a
 * whole chunk's output is one buffer, written out without another copy.
 */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** ASCII/latin1 text that is known to be short and safe (prefixes, numbers). */
  latin1(s: string, length = s.length): void {
    this.reserve(length);
    this.pos += this.buf.write(s, this.pos, length, "latin1");
  }

  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  range(b: Buffer, start: number, end: number): void {
    this.reserve(end - start);
    b.copy(this.buf, this.pos, start, end);
    this.pos += end - start;
  }

  bytes(b: Buffer): void {
    this.reserve(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  float32(v: number, nullText: string): void {
    if (!Number.isFinite(v)) {
      this.latin1(nullText);
      return;
    }
    if (v === 0) {
      this.latin1("0");
      return;
    }
    const s = v.toPrecision(9);
    const e = s.indexOf("e");
    if (e < 0) this.latin1(s, trimmedLength(s, s.length));
    else this.latin1(formatFloat32(v));
  }

  /** What was written so far (a view: valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Start over, keeping the memory. */
  reset(): void {
    this.pos = 0;
  }
}

/** Build the formatter for a descriptor, key columns and output format. */
export function createRowFormatter(
  descriptor: ModelDescriptor,
  keyNames: string[],
  format: OutputFormat,
): RowFormatter {
  const outputs = descriptor.outputs;
  const label = descriptor.label;
  const labelIndex = label ? outputs.findIndex((o) => o.column === label.from) : -1;
  const k = keyNames.length;
  const csv = format === "csv";
  const header = csv ? `${outputColumns(descriptor, keyNames).map(csvField).join(",")}\n` : "";
  const keyPrefixes = keyNames.map((n, j) =>
    Buffer.from(csv ? (j === 0 ? "" : ",") : `${j === 0 ? "{" : ","}${JSON.stringify(n)}:`),
  );
  const outPrefixes = outputs.map((o, j) =>
    Buffer.from(
      csv ? (k + j === 0 ? "" : ",") : `${k + j === 0 ? "{" : ","}${JSON.stringify(o.column)}:`,
    ),
  );
  const labelTexts = label
    ? label.labels.map((l) =>
        Buffer.from(
          csv ? `,${csvField(l)}` : `,${JSON.stringify(label.column)}:${JSON.stringify(l)}`,
        ),
      )
    : [];
  const rowEnd = Buffer.from(csv ? "\n" : "}\n");
  const nullText = csv ? "" : "null";
  const QUOTE = Buffer.from('"');

  return {
    header,
    format(keys, scores, rows, w) {
      const data = keys.data;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < k; j++) {
          w.bytes(keyPrefixes[j] as Buffer);
          const idx = r * k + j;
          const key = keys.strings[idx];
          if (key === undefined) {
            // Plain printable ASCII without quote, backslash or comma: safe in JSON and CSV as is.
            if (!csv) w.bytes(QUOTE);
            w.range(data, keys.starts[idx] as number, keys.ends[idx] as number);
            if (!csv) w.bytes(QUOTE);
          } else if (csv) w.utf8(csvField(key));
          else if (jsonSafe(key)) {
            w.bytes(QUOTE);
            w.utf8(key);
            w.bytes(QUOTE);
          } else w.utf8(JSON.stringify(key));
        }
        for (let j = 0; j < outputs.length; j++) {
          w.bytes(outPrefixes[j] as Buffer);
          w.float32((scores[j] as Float32Array)[r] as number, nullText);
        }
        if (label) {
          const v = (scores[labelIndex] as Float32Array)[r] as number;
          w.bytes(labelTexts[v >= label.threshold ? 1 : 0] as Buffer);
        }
        w.bytes(rowEnd);
      }
    },
  };
}
