import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  PipelineError,
  PreconditionFailedError,
  StoreUnavailableError,
} from "../../core/errors.ts";

/** The fields of an oci-common `OciError` this module reads (duck-typed: bundles may hold two copies of the class). */
interface OciErrorLike {
  statusCode: number;
  serviceCode?: string;
  message: string;
  opcRequestId?: string | null;
}

/** Is `err` an error from an OCI service call (it carries an HTTP status)? */
export function isOciError(err: unknown): err is OciErrorLike {
  return (
    typeof err === "object" &&
    err !== null &&
    typeof (err as { statusCode?: unknown }).statusCode === "number"
  );
}

/** HTTP status of an OCI error, or undefined for anything else (network failures, our own errors). */
export function ociStatus(err: unknown): number | undefined {
  return isOciError(err) ? err.statusCode : undefined;
}

/**
 * Translate an oci-sdk failure into the pipeline's error hierarchy so callers
 * never see SDK types: 404 → NotFound, 409 → Conflict, 412 → PreconditionFailed,
 * 400 → InvalidArgument, 401/403 → non-retryable store error naming the IAM cause,
 * 429/5xx/network → StoreUnavailable (retryable).
 */
export function mapOciError(err: unknown, what: string): PipelineError {
  if (err instanceof PipelineError) return err;
  if (!isOciError(err)) {
    return new StoreUnavailableError(`${what}: ${String((err as Error)?.message ?? err)}`, {
      cause: err,
    });
  }
  const detail = `${what}: ${err.statusCode} ${err.serviceCode ?? ""} ${err.message}`.trim();
  const opts = { cause: err, details: { status: err.statusCode, opcRequestId: err.opcRequestId } };
  switch (err.statusCode) {
    case 404:
      return new NotFoundError(detail, opts);
    case 409:
      return new ConflictError(detail, opts);
    case 412:
      return new PreconditionFailedError(detail, opts);
    case 400:
    case 413:
      return new InvalidArgumentError(detail, opts);
    case 401:
    case 403:
      return new StoreUnavailableError(
        `${detail} (check the dynamic group and IAM policy for this component; see README "IAM")`,
        { ...opts, retryable: false },
      );
    default:
      return new StoreUnavailableError(detail, opts);
  }
}
