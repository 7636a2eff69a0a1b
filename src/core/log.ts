import { redactSecrets } from "./errors.ts";

/** Structured JSON logs, one object per line; bindings (job, partition, worker) ride along. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 } as const;
/** Log level names. */
export type LogLevel = keyof typeof LEVELS;

// Never log secrets: drop fields whose names look like credentials, at any depth,
// and redact credential-shaped text (PEM keys, OCI signatures, bearer tokens) in values.
const SECRET = /pass(word)?|secret|token|authorization|private_?key|credential/i;
const MAX_DEPTH = 6;

function scrubValue(v: unknown, depth: number): unknown {
  if (typeof v === "string") return redactSecrets(v);
  if (v instanceof Error) return redactSecrets(v.message);
  if (v === null || typeof v !== "object") return v;
  if (depth >= MAX_DEPTH) return "[nested]";
  if (Array.isArray(v)) return v.map((x) => scrubValue(x, depth + 1));
  return scrub(v as Record<string, unknown>, depth + 1);
}

function scrub(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = SECRET.test(k) ? "[redacted]" : scrubValue(v, depth);
  }
  return out;
}

/** A logger writing JSON lines to `write` (default: stderr) at `level` and above. */
export function createLogger(
  options: {
    level?: LogLevel;
    bindings?: Record<string, unknown>;
    write?: (line: string) => void;
  } = {},
): Logger {
  const min = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const bindings = options.bindings ?? {};
  const emit = (
    level: Exclude<LogLevel, "silent">,
    msg: string,
    fields?: Record<string, unknown>,
  ) => {
    if (LEVELS[level] < min) return;
    write(
      `${JSON.stringify({ time: new Date().toISOString(), level, msg: redactSecrets(msg), ...bindings, ...(fields ? scrub(fields) : {}) })}\n`,
    );
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (b) => createLogger({ ...options, bindings: { ...bindings, ...b } }),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ level: "silent" });
