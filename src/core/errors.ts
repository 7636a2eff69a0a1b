/**
 * The project's one error hierarchy. Every error carries a stable `code`, a
 * `retryable` flag that steers retries (queue redelivery vs. giving up), and a
 * message that says what to fix.
 */

/** Stable error codes; tests and callers match on these, never on messages. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "INVALID_SPEC"
  | "INVALID_EVENT"
  | "INVALID_MODEL"
  | "NOT_FOUND"
  | "CONFLICT"
  | "PRECONDITION_FAILED"
  | "UNSAFE_PATH"
  | "BAD_RECORD"
  | "ERROR_THRESHOLD_EXCEEDED"
  | "LEASE_LOST"
  | "STORE_UNAVAILABLE"
  | "INFERENCE_FAILED"
  | "INTERNAL";

/** Options shared by every pipeline error. */
export interface PipelineErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

/** Base class: code + retryable + structured details, `cause` kept. */
export class PipelineError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PipelineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  /** JSON form for logs and API answers (no stack, no cause chain). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...this.details,
    };
  }
}

/** A caller passed something unusable (CLI flag, function argument). */
export class InvalidArgumentError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** A job spec, event or descriptor failed schema validation; `schemaPath` says where. */
export class ValidationError extends PipelineError {
  readonly schemaPath: string;
  readonly instancePath: string;
  constructor(
    code: "INVALID_SPEC" | "INVALID_EVENT" | "INVALID_MODEL",
    message: string,
    where: { schemaPath: string; instancePath: string },
    options?: PipelineErrorOptions,
  ) {
    super(code, message, { ...options, details: { ...options?.details, ...where } });
    this.schemaPath = where.schemaPath;
    this.instancePath = where.instancePath;
  }
}

/** A model file that onnxruntime can't load, or whose inputs/outputs don't match its descriptor. */
export class ModelError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("INVALID_MODEL", message, options);
  }
}

/** An object, job, partition or message that does not exist. */
export class NotFoundError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("NOT_FOUND", message, options);
  }
}

/** A compare-and-set lost: someone else wrote first. Re-read and decide again. */
export class ConflictError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("CONFLICT", message, { retryable: true, ...options });
  }
}

/** A conditional put (if-match / if-none-match) did not hold. */
export class PreconditionFailedError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("PRECONDITION_FAILED", message, options);
  }
}

/** An object name or path that would escape its bucket or working directory. */
export class UnsafePathError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("UNSAFE_PATH", message, options);
  }
}

/** The job's bad-record threshold was crossed. */
export class ErrorThresholdExceededError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("ERROR_THRESHOLD_EXCEEDED", message, options);
  }
}

/** This worker no longer owns the partition (another worker claimed it): stop, commit nothing. */
export class LeaseLostError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("LEASE_LOST", message, options);
  }
}

/** A backing store failed in a way that may pass (I/O error, timeout, busy). */
export class StoreUnavailableError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("STORE_UNAVAILABLE", message, { retryable: true, ...options });
  }
}

/** An object is longer than the reader allows (an image past its byte limit): a bad record. */
export class TooLargeError extends PipelineError {
  constructor(message: string) {
    super("BAD_RECORD", message);
  }
}

/** onnxruntime failed while running a batch. */
export class InferenceError extends PipelineError {
  constructor(message: string, options?: PipelineErrorOptions) {
    super("INFERENCE_FAILED", message, options);
  }
}

/** True when the error says trying again later may succeed. */
export function isRetryable(err: unknown): boolean {
  return err instanceof PipelineError ? err.retryable : true;
}

/** A one-line description of any thrown value, for logs and error outputs. */
export function describeError(err: unknown): string {
  if (err instanceof PipelineError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

// Credentials that can ride along in error messages (an SDK error quoting a request,
// a config echoed back): PEM private keys, HTTP Authorization values (OCI request
// signatures, bearer tokens) and `name=value` pairs whose name says secret. Quotes
// may come JSON-escaped (`\"`) when the message itself quotes serialized headers.
const SECRET_PATTERNS: [RegExp, string][] = [
  [
    /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g,
    "[redacted private key]",
  ],
  [/\bSignature\s+(?:[A-Za-z-]+=\\?"[^"\\]*\\?"\s*,?\s*)+/g, "Signature [redacted] "],
  [/\b(signature|keyId)=(\\?")[^"\\]*(\\?")/gi, "$1=$2[redacted]$3"],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, "$1 [redacted]"],
  [
    /\b([\w-]*?(?:authorization|token|api[-_]?key|pass(?:word|phrase)|secret|private[-_]?key|credentials?))(\\?["']?\s*[:=]\s*\\?["']?)(?!\[redacted|(?:Signature|Bearer|Basic) \[redacted)[^\s"',;&\\]+/gi,
    "$1$2[redacted]",
  ],
];

/**
 * `text` with credentials replaced by "[redacted]": PEM private keys, HTTP
 * Authorization values (OCI `Signature keyId=…,signature=…`, `Bearer …`) and
 * `token=…`/`password: …`-style pairs. For messages that go into logs, events,
 * manifests and job rows, where a secret must never land.
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
