/** Byte helpers for the hot paths (parsing records, writing rows). */

/** Below this, a JS loop beats Buffer#copy (a native call costs more than the bytes). */
const SMALL_COPY = 32;

/** Copy `n` bytes; short runs (keys, column prefixes) in JS, long ones natively. */
export function copyBytes(
  from: Uint8Array,
  start: number,
  n: number,
  to: Uint8Array,
  at: number,
): void {
  if (n > SMALL_COPY) {
    to.set(from.subarray(start, start + n), at);
    return;
  }
  for (let i = 0; i < n; i++) to[at + i] = from[start + i] as number;
}

/** Undocumented but stable Buffer methods that skip toString's argument handling. */
interface FastSlices {
  latin1Slice(start: number, end: number): string;
}

/** buf[start, end) as latin1 text (ASCII as it is), without toString's argument checks. */
export function latin1Slice(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as FastSlices).latin1Slice(start, end);
}
