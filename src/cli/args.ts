import { InvalidArgumentError } from "../core/errors.ts";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** "64MiB", "1.5GB", "65536" → bytes. */
export function parseSize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InvalidArgumentError(
      `--${flag} must be a size like 64MiB, 500MB or 1048576, got "${text}"`,
    );
  }
  return Math.round(Number(m[1]) * unit);
}

/** A positive integer flag. */
export function parsePositiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`--${flag} must be a positive whole number, got "${text}"`);
  }
  return n;
}

/** A non-negative integer flag. */
export function parseCount(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError(`--${flag} must be a whole number >= 0, got "${text}"`);
  }
  return n;
}

/** A fraction flag in [0, 1]; "1%" is accepted too. */
export function parseFraction(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const pct = text.endsWith("%");
  const n = Number(pct ? text.slice(0, -1) : text) / (pct ? 100 : 1);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError(
      `--${flag} must be a fraction between 0 and 1 (or a percentage like 1%), got "${text}"`,
    );
  }
  return n;
}
