import { InvalidArgumentError } from "../core/errors.ts";
import { CSV_DELIMITERS, type CsvDelimiter } from "../core/records.ts";

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
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** "64MiB", "1.5GB", "1TB", "65536" → bytes (k/M/G/T are powers of 1000, KiB/MiB/GiB/TiB of 1024). */
export function parseSize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InvalidArgumentError(
      `--${flag} must be a size like 64MiB, 500MB, 1TB or 1048576, got "${text}"`,
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

/** Log levels `--log-level` accepts. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

/** `--log-level`: one of {@link LOG_LEVELS}, or undefined when not given. */
export function parseLogLevel(text: string | undefined): (typeof LOG_LEVELS)[number] | undefined {
  if (text === undefined) return undefined;
  const level = LOG_LEVELS.find((l) => l === text.toLowerCase());
  if (!level) {
    throw new InvalidArgumentError(
      `--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${text}"`,
    );
  }
  return level;
}

/**
 * `--workers -1` → `--workers=-1` for the options that take a value, so a
 * negative number reaches the flag's own check ("must be a positive whole
 * number") instead of node's "argument is ambiguous".
 */
export function joinNegativeValues(argv: string[], valueOptions: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 1];
    if (
      a.startsWith("--") &&
      valueOptions.has(a.slice(2)) &&
      next !== undefined &&
      /^-\d/.test(next)
    ) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** A TCP port (0 = any free one) from a flag, or InvalidArgumentError naming the flag. */
export function parsePort(flag: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError(`--${flag} must be a port number 0-65535, got "${raw}"`);
  }
  return n;
}

/** Input formats `--format` takes ("tsv" is CSV with tabs). */
export const INPUT_FORMATS = ["csv", "tsv", "jsonl", "parquet"] as const;

/** `--format`: how to read the input when its name doesn't say (e.g. a .txt file). */
export function parseInputFormat(
  text: string | undefined,
): (typeof INPUT_FORMATS)[number] | undefined {
  if (text === undefined) return undefined;
  const format = INPUT_FORMATS.find((f) => f === text.toLowerCase());
  if (!format) {
    throw new InvalidArgumentError(
      `--format must be one of ${INPUT_FORMATS.join(", ")} (tsv: CSV separated by tabs), got "${text}"`,
    );
  }
  return format;
}

/** Names `--delimiter` takes for delimiters that are awkward to type in a shell. */
const DELIMITER_NAMES: Record<string, CsvDelimiter> = {
  tab: "\t",
  comma: ",",
  semicolon: ";",
  pipe: "|",
  colon: ":",
  space: " ",
};

/**
 * `--delimiter`: one of {@link CSV_DELIMITERS} as the character itself, a name (`tab`,
 * `semicolon`, …) or an escape as typed in a shell without `$'…'` (`\t`, `\x01`).
 */
export function parseDelimiter(text: string | undefined): CsvDelimiter | undefined {
  if (text === undefined) return undefined;
  const escaped = /^\\(?:t|x([0-9a-f]{2})|u00([0-9a-f]{2}))$/i.exec(text);
  const hex = escaped?.[1] ?? escaped?.[2];
  const char =
    DELIMITER_NAMES[text.toLowerCase()] ??
    (escaped ? (hex ? String.fromCharCode(Number.parseInt(hex, 16)) : "\t") : text);
  const found = CSV_DELIMITERS.find((d) => d === char);
  if (found === undefined) {
    throw new InvalidArgumentError(
      `--delimiter must be one character of , ; | : ^ ~ (quote it: --delimiter ';'), or tab, space, '\\x01', '\\x1f'; got ${JSON.stringify(text)}`,
    );
  }
  return found;
}
