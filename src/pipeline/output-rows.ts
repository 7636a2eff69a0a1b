import { copyBytes } from "../core/bytes.ts";
import type { ModelDescriptor } from "../model/descriptor.ts";

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
    const n = end - start;
    this.reserve(n);
    copyBytes(b, start, n, this.buf, this.pos);
    this.pos += n;
  }

  bytes(b: Buffer): void {
    this.reserve(b.length);
    copyBytes(b, 0, b.length, this.buf, this.pos);
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
