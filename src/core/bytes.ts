/** Byte helpers for the hot paths (parsing records, writing rows). */

/** Below this, a JS loop beats Buffer#copy (a native call costs more than the bytes). */
const SMALL_COPY = 32;

/** Copy `n` bytes; short runs (keys, column prefixes) in JS, long ones natively. */
export function copyBytes(from: Buffer, start: number, n: number, to: Buffer, at: number): void {
  if (n > SMALL_COPY) {
    from.copy(to, at, start, start + n);
    return;
  }
  for (let i = 0; i < n; i++) to[at + i] = from[start + i] as number;
}
