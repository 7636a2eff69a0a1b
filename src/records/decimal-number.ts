/**
 * Decimal text to a double over a byte range, exactly as `Number(text)` would give it
 * (see {@link parseNumber} for the grammar and the deliberate differences): the CSV
 * featurizer's slow path, for every number its one-pass fast path does not take.
 * Runs once per field of such records, so it allocates nothing on the common path.
 */
import { latin1Slice } from "../core/bytes.ts";

/** Exact doubles 1e0..1e22: every power of ten up to 1e22 is representable. */
const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
  1e18, 1e19, 1e20, 1e21, 1e22,
];
const TWO_POW_53 = 9007199254740992;
const TWO_POW_32 = 4294967296;
const TWO_POW_MINUS_32 = 1 / TWO_POW_32;

/** Lower-cased ASCII byte at i (only meaningful for letters). */
function lowerAt(buf: Buffer, i: number): number {
  return (buf[i] as number) | 0x20;
}

/** True when buf[i, e) is `word` (lower-case ASCII letters), ignoring case. */
function matchesWord(buf: Buffer, i: number, e: number, word: string): boolean {
  if (e - i !== word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if (lowerAt(buf, i + k) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Parse buf[start, end) as a decimal number, or NaN when it is not one.
 *
 * Grammar: optional ASCII whitespace (tab, LF, VT, FF, CR, space), optional sign, digits
 * with an optional `.` (at least one digit on either side: `5.` and `.5` are fine), an
 * optional exponent (`e`/`E`, sign, at least one digit), optional whitespace.
 * For every such text the result is exactly `Number(text)`: a mantissa below 2^53 with
 * a power of ten within ±22 is computed with one correctly rounded multiply or divide
 * (Clinger's fast path); other texts with at most 19 significant digits go through
 * Eisel-Lemire (exact, or it declines); the rest (longer mantissas, subnormal results,
 * exact halfway cases) go to `Number()` itself.
 *
 * Deliberate differences from `Number(text)`:
 * - empty or all-whitespace text is NaN (Number gives 0): a blank feature is missing;
 * - hex/octal/binary literals (`0x10`, `0o7`, `0b1`) are NaN (Number parses them);
 * - non-ASCII whitespace (e.g. U+00A0) is not trimmed: NaN;
 * - `inf` / `infinity` in any case, with an optional sign, are ±Infinity (Number only
 *   knows `Infinity`), so numpy/pandas spellings parse;
 * - `nan` in any case is NaN, like invalid text.
 * The featurizer makes every non-finite result a bad record (src/model/featurizer.ts).
 */
export function parseNumber(buf: Buffer, start: number, end: number): number {
  let i = start;
  let e = end;
  // Whitespace trimming mirrors what Number() trims in ASCII, so the slow path agrees.
  while (i < e && isAsciiSpace(buf[i] as number)) i++;
  while (e > i && isAsciiSpace(buf[e - 1] as number)) e--;
  if (i === e) return Number.NaN;
  let c = buf[i] as number;
  // Branch-free sign: with random signs a branch here mispredicts half the time.
  const minus = ((c ^ 0x2d) - 1) >>> 31;
  i += minus | (((c ^ 0x2b) - 1) >>> 31);
  if (i === e) return Number.NaN;
  let mantissa = 0;
  const intStart = i;
  while (i < e) {
    const d = (buf[i] as number) - 0x30;
    if (d >>> 0 > 9) break;
    mantissa = mantissa * 10 + d;
    i++;
  }
  const intDigits = i - intStart;
  let fracDigits = 0;
  if (i < e && buf[i] === 0x2e) {
    i++;
    const fracStart = i;
    while (i < e) {
      const d = (buf[i] as number) - 0x30;
      if (d >>> 0 > 9) break;
      mantissa = mantissa * 10 + d;
      i++;
    }
    fracDigits = i - fracStart;
  }
  if (intDigits + fracDigits === 0) {
    // Not a number-shaped text; the only other valid forms are inf/infinity/nan.
    if (i !== intStart) return Number.NaN; // a lone "." (possibly signed)
    if (matchesWord(buf, i, e, "inf") || matchesWord(buf, i, e, "infinity")) {
      return minus ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    }
    return Number.NaN;
  }
  let exponent = 0;
  if (i < e && lowerAt(buf, i) === 0x65) {
    i++;
    let expNegative = false;
    c = i < e ? (buf[i] as number) : 0;
    if (c === 0x2d || c === 0x2b) {
      expNegative = c === 0x2d;
      i++;
    }
    const expStart = i;
    while (i < e) {
      const d = (buf[i] as number) - 0x30;
      if (d >>> 0 > 9) break;
      // Saturate: beyond this the slow path decides (0 or Infinity), so precision is moot.
      if (exponent < 100000) exponent = exponent * 10 + d;
      i++;
    }
    if (i === expStart) return Number.NaN;
    if (expNegative) exponent = -exponent;
  }
  if (i !== e) return Number.NaN;
  // mantissa only ever grows, and rounding is monotonic, so a final value below 2^53
  // means every step was exact.
  if (mantissa < TWO_POW_53) {
    let value: number;
    const power = exponent - fracDigits;
    if (mantissa === 0 || power === 0) value = mantissa;
    else if (power > 0 && power <= 22) value = mantissa * (POW10[power] as number);
    else if (power < 0 && power >= -22) value = mantissa / (POW10[-power] as number);
    else return decimalToDouble(buf, start, end, intStart, intDigits, fracDigits, exponent, minus);
    return value * (1 - 2 * minus);
  }
  return decimalToDouble(buf, start, end, intStart, intDigits, fracDigits, exponent, minus);
}

/**
 * The exact value of a validated decimal whose Clinger fast path does not apply: up to
 * 19 significant digits go through Eisel-Lemire (full-precision doubles as written by
 * pandas, Spark or String() have 17), the rest, and the rare cases Eisel-Lemire can't
 * decide, through Number() on the original text (start, end: the whole field).
 */
function decimalToDouble(
  buf: Buffer,
  start: number,
  end: number,
  intStart: number,
  intDigits: number,
  fracDigits: number,
  exponent: number,
  minus: number,
): number {
  // The significand as an exact 64-bit integer in two uint32 halves: the digits before
  // the last nine and the last nine are summed separately (each stays exact in a
  // double), then combined with exact limb arithmetic.
  const intEnd = intStart + intDigits;
  const fracEnd = intEnd + 1 + fracDigits;
  let k = intStart;
  while (k < fracEnd && (k === intEnd || buf[k] === 0x30)) k++;
  if (k >= fracEnd) return 0 * (1 - 2 * minus);
  // Significant digits from the first nonzero one (position intEnd is the '.', or not
  // a digit at all when there is no fraction).
  const digits = fracEnd - k - (k < intEnd ? 1 : 0);
  if (digits > 19) return Number(latin1Slice(buf, start, end));
  let head = 0;
  let tail = 0;
  let headDigits = digits - 9;
  for (let j = k; j < fracEnd; j++) {
    if (j === intEnd) continue;
    const d = (buf[j] as number) - 0x30;
    if (headDigits > 0) {
      head = head * 10 + d;
      headDigits--;
    } else {
      tail = tail * 10 + d;
    }
  }
  // head < 10^10 and tail < 10^9: significand = head * 10^9 + tail < 2^64.
  const headHigh = Math.floor(head / 65536);
  const x = headHigh * 1e9;
  const xHigh = Math.floor(x / 65536);
  const low = (x - xHigh * 65536) * 65536 + (head - headHigh * 65536) * 1e9 + tail;
  const lowCarry = Math.floor(low * TWO_POW_MINUS_32);
  const lo = low - lowCarry * TWO_POW_32;
  const hi = xHigh + lowCarry;
  const value = eiselLemire(hi, lo, exponent - fracDigits);
  if (Number.isNaN(value)) return Number(latin1Slice(buf, start, end));
  return value * (1 - 2 * minus);
}

// ---------------------------------------------------------------------------------------
// Eisel-Lemire (Lemire, "Number Parsing at a Gigabyte per Second", 2021), transcribed
// from Go's strconv/eisel_lemire.go with 64-bit words split into uint32 halves.

const MIN_EXP10 = -342;
const MAX_EXP10 = 308;
/** 128-bit mantissas of 10^q (rounded down, top bit set), 4 uint32 per q, high first. */
let pow10Mantissas: Uint32Array | undefined;

function pow10Table(): Uint32Array {
  if (pow10Mantissas !== undefined) return pow10Mantissas;
  // Built once, exactly, with BigInt (a few ms) instead of shipping a 10 KB literal.
  const table = new Uint32Array((MAX_EXP10 - MIN_EXP10 + 1) * 4);
  const mask32 = 0xffffffffn;
  const store = (q: number, m: bigint) => {
    const at = (q - MIN_EXP10) * 4;
    table[at] = Number((m >> 96n) & mask32);
    table[at + 1] = Number((m >> 64n) & mask32);
    table[at + 2] = Number((m >> 32n) & mask32);
    table[at + 3] = Number(m & mask32);
  };
  let power = 1n;
  for (let q = 0; q <= Math.max(MAX_EXP10, -MIN_EXP10); q++) {
    const bits = power.toString(2).length;
    if (q <= MAX_EXP10) {
      store(q, bits > 128 ? power >> BigInt(bits - 128) : power << BigInt(128 - bits));
    }
    if (q > 0 && -q >= MIN_EXP10) {
      // floor(2^(bits+127) / 10^q) lies in (2^127, 2^128) because 10^q is not a power of 2.
      store(-q, (1n << BigInt(bits + 127)) / power);
    }
    power *= 10n;
  }
  pow10Mantissas = table;
  return table;
}

// uint32 limb products. These return plain numbers rather than writing module-level
// variables: a double stored in a module `let` is boxed (an allocation per store).

/** Low 32 bits of the uint32 product a*b. */
function mulLo(a: number, b: number): number {
  return Math.imul(a, b) >>> 0;
}

/** High 32 bits of a*b, given its low 32 bits: the double a*b is within 2^12 of exact. */
function mulHi(a: number, b: number, lo: number): number {
  return Math.round((a * b - lo) * TWO_POW_MINUS_32);
}

/** x mod 2^32 for an integer 0 <= x < 2^53, without `%` (a C call for doubles in V8). */
function low32(x: number): number {
  return x - Math.floor(x * TWO_POW_MINUS_32) * TWO_POW_32;
}

/** True when (a1:a0) + (b1:b0) overflows 64 bits. */
function addOverflows(a1: number, a0: number, b1: number, b0: number): boolean {
  return a1 + b1 + (a0 + b0 > 0xffffffff ? 1 : 0) > 0xffffffff;
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const HIGH_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LOW_WORD = 1 - HIGH_WORD;

/**
 * The double nearest to (hi:lo) * 10^q for a nonzero 64-bit significand, or NaN when
 * the algorithm can't decide (then the caller asks Number()); also NaN for results
 * that are subnormal, infinite or out of the table's range.
 */
function eiselLemire(hi: number, lo: number, q: number): number {
  if (q < MIN_EXP10 || q > MAX_EXP10) return Number.NaN;
  const table = pow10Table();
  // Normalize the significand so its top bit is set.
  const clz = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
  let m1: number;
  let m0: number;
  if (clz >= 32) {
    m1 = (lo << (clz - 32)) >>> 0;
    m0 = 0;
  } else if (clz > 0) {
    m1 = ((hi << clz) | (lo >>> (32 - clz))) >>> 0;
    m0 = (lo << clz) >>> 0;
  } else {
    m1 = hi;
    m0 = lo;
  }
  let exp2 = ((217706 * q) >> 16) + 64 + 1023 - clz;
  const at = (q - MIN_EXP10) * 4;
  // x = m * (t0:t1), a 128-bit product from four 32x32 ones.
  const t0 = table[at] as number;
  const t1 = table[at + 1] as number;
  const a = mulLo(m0, t1);
  const aHi = mulHi(m0, t1, a);
  const b = mulLo(m0, t0);
  const bHi = mulHi(m0, t0, b);
  const c = mulLo(m1, t1);
  const cHi = mulHi(m1, t1, c);
  const d = mulLo(m1, t0);
  const dHi = mulHi(m1, t0, d);
  const mid = aHi + b + c;
  const upper = d + bHi + cHi + Math.floor(mid * TWO_POW_MINUS_32);
  let x0 = a;
  let x1 = low32(mid);
  let x2 = low32(upper);
  let x3 = dHi + Math.floor(upper * TWO_POW_MINUS_32);
  // Wider approximation when the truncated table entry leaves the result ambiguous.
  if ((x2 & 0x1ff) === 0x1ff && addOverflows(x1, x0, m1, m0)) {
    const t2 = table[at + 2] as number;
    const t3 = table[at + 3] as number;
    const e = mulLo(m0, t3);
    const eHi = mulHi(m0, t3, e);
    const f = mulLo(m0, t2);
    const fHi = mulHi(m0, t2, f);
    const g = mulLo(m1, t3);
    const gHi = mulHi(m1, t3, g);
    const h = mulLo(m1, t2);
    const hHi = mulHi(m1, t2, h);
    const yMid = eHi + f + g;
    const yUpper = h + fHi + gHi + Math.floor(yMid * TWO_POW_MINUS_32);
    const y0 = e;
    const y1 = low32(yMid);
    const y2 = low32(yUpper);
    const y3 = hHi + Math.floor(yUpper * TWO_POW_MINUS_32);
    // merged = x + (y >> 64)
    const s0 = x0 + y2;
    const n0 = low32(s0);
    const s1 = x1 + y3 + Math.floor(s0 * TWO_POW_MINUS_32);
    const n1 = low32(s1);
    const s2 = x2 + Math.floor(s1 * TWO_POW_MINUS_32);
    const n2 = low32(s2);
    const n3 = x3 + Math.floor(s2 * TWO_POW_MINUS_32);
    if (
      (n2 & 0x1ff) === 0x1ff &&
      n1 === 0xffffffff &&
      n0 === 0xffffffff &&
      addOverflows(y1, y0, m1, m0)
    ) {
      return Number.NaN;
    }
    x3 = n3;
    x2 = n2;
    x1 = n1;
    x0 = n0;
  }
  // Keep the top 54 bits (55 when the product's top bit is clear).
  const msb = x3 >>> 31;
  const shift = 9 + msb;
  let rHi = x3 >>> shift;
  let rLo = ((x3 << (32 - shift)) | (x2 >>> shift)) >>> 0;
  exp2 -= 1 ^ msb;
  // Exactly halfway between two doubles: round-to-even needs the exact value.
  if (x1 === 0 && x0 === 0 && (x2 & 0x1ff) === 0 && (rLo & 3) === 1) return Number.NaN;
  // Round 54 -> 53 bits.
  rLo += rLo & 1;
  if (rLo > 0xffffffff) {
    rLo = 0;
    rHi += 1;
  }
  rLo = ((rLo >>> 1) | ((rHi & 1) << 31)) >>> 0;
  rHi >>>= 1;
  if (rHi >= 0x200000) {
    rLo = ((rLo >>> 1) | ((rHi & 1) << 31)) >>> 0;
    rHi >>>= 1;
    exp2 += 1;
  }
  if (exp2 <= 0 || exp2 >= 0x7ff) return Number.NaN;
  f64Words[HIGH_WORD] = ((exp2 << 20) | (rHi & 0xfffff)) >>> 0;
  f64Words[LOW_WORD] = rLo;
  return f64[0] as number;
}

function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
