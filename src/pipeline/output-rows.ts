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

/** 10^k for k in 0..14: exact doubles. */
const POW10 = Array.from({ length: 15 }, (_, k) => 10 ** k);
/** 10^-k for k in 0..6 (nearest doubles: only a first guess of the exponent). */
const NEG_POW10 = Array.from({ length: 7 }, (_, k) => 10 ** -k);

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
  /** A float32's 9 significant digits, formed here before they are placed. */
  private readonly digits = new Uint8Array(9);

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

  /** One byte (a separator): a native write for a single character costs more than the row's digits. */
  byte(c: number): void {
    this.reserve(1);
    this.buf[this.pos++] = c;
  }

  float32(v: number, nullText: string): void {
    if (!Number.isFinite(v)) {
      this.latin1(nullText);
      return;
    }
    if (v === 0) {
      this.byte(0x30);
      return;
    }
    if (!this.plainFloat32(v)) this.latin1(formatFloat32(v));
  }

  /**
   * Write `v` as {@link formatFloat32} does, digit by digit with no string in between,
   * when its text has no exponent (|v| in [1e-6, 1e9)) and the 9-digit rounding is
   * certain; return false (nothing written) otherwise. Scores and embeddings are nearly
   * all in that range, and toPrecision's string plus a native write cost ~0.2 µs a value.
   */
  private plainFloat32(v: number): boolean {
    const a = v < 0 ? -v : v;
    if (!(a >= 1e-6 && a < 1e9)) return false;
    // The decimal exponent, by comparisons (cheaper than Math.log10 for the usual scores,
    // one step from 0); checked against the scaled value below.
    let k = 0;
    if (a >= 1) {
      while (k < 8 && a >= (POW10[k + 1] as number)) k++;
    } else {
      k = -1;
      while (k > -6 && a < (NEG_POW10[-k] as number)) k--;
    }
    // a × 10^(8-k) is a 9-digit number; the power is exact (≤ 1e14), so the product is
    // rounded once, by at most 2^-24 below 2^30.
    let scaled = a * (POW10[8 - k] as number);
    if (scaled < 1e8) {
      if (k === -6) return false;
      k--;
      scaled = a * (POW10[8 - k] as number);
    } else if (scaled >= 1e9) {
      if (k === 8) return false;
      k++;
      scaled = a * (POW10[8 - k] as number);
    }
    const whole = Math.floor(scaled);
    const frac = scaled - whole;
    // Within rounding error of a tie: the exact product might fall on either side.
    if (frac > 0.5 - 2 ** -20 && frac < 0.5 + 2 ** -20) return false;
    let m = frac >= 0.5 ? whole + 1 : whole;
    if (m === 1e9) {
      // Rounded up to the next power of ten (9.999999996 → 10.0000000).
      if (k === 8) return false;
      m = 1e8;
      k++;
    }
    if (m < 1e8 || m >= 1e9) return false;
    const digits = this.digits;
    for (let i = 8; i >= 0; i--) {
      const q = (m / 10) | 0; // m < 2^30: int32 arithmetic
      digits[i] = 0x30 + m - q * 10;
      m = q;
    }
    // Digits after the point: those past the integer part, without trailing zeros.
    let last = 8;
    while (last > 0 && digits[last] === 0x30 && last > k) last--;
    this.reserve(20);
    const buf = this.buf;
    let pos = this.pos;
    if (v < 0) buf[pos++] = 0x2d;
    if (k >= 0) {
      for (let i = 0; i <= k; i++) buf[pos++] = digits[i] as number;
      if (last > k) {
        buf[pos++] = 0x2e;
        for (let i = k + 1; i <= last; i++) buf[pos++] = digits[i] as number;
      }
    } else {
      buf[pos++] = 0x30;
      buf[pos++] = 0x2e;
      for (let i = k + 1; i < 0; i++) buf[pos++] = 0x30;
      for (let i = 0; i <= last; i++) buf[pos++] = digits[i] as number;
    }
    this.pos = pos;
    return true;
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
