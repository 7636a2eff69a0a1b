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
 * How to read a 404. OCI answers 404 `NotAuthorizedOrNotFound` when the caller
 * lacks a permission, exactly as when the resource is missing, and some services
 * answer a refusal with their own "not found" code (Object Storage's
 * `BucketNotFound`: "does not exist ... or you are not authorized"). Only the codes
 * in `absent` say that the thing itself is missing (e.g. `ObjectNotFound`, which
 * Object Storage gives once the caller may see the bucket); every other 404 is a
 * configuration error: retryable, naming `principal` and `resource`.
 */
export interface NotFoundReading {
  /** Service codes that mean "absent" for this call. */
  absent?: readonly string[];
  /** Who made the call (`ociIdentity(auth).principal`). */
  principal?: string | undefined;
  /** What it was made on, e.g. `bucket input`, `table batch_infer_jobs`. */
  resource?: string | undefined;
}

/** Does this error say, by its service code, that the thing is absent? */
export function isAbsent(err: unknown, codes: readonly string[]): boolean {
  return isOciError(err) && err.statusCode === 404 && codes.includes(err.serviceCode ?? "\u0000");
}

/**
 * A 404 that does not say "absent": the resource is missing or the caller may not
 * use it, and OCI will not say which. Retryable, because right after a deploy (or a
 * policy change) resource-principal tokens keep their old grants for minutes.
 */
export function notAuthorizedOrNotFound(
  err: unknown,
  what: string,
  reading: NotFoundReading = {},
): StoreUnavailableError {
  const code = isOciError(err) ? (err.serviceCode ?? "no service code") : "no service code";
  const resource = reading.resource ?? "the resource";
  const principal = reading.principal ?? "this component's principal";
  return new StoreUnavailableError(
    `${what}: 404 ${code}: ${resource} does not exist, or ${principal} is not authorized to use it ` +
      "(OCI gives both the same answer). This is a configuration error, not missing data: check that it exists " +
      'and that the IAM policy grants this principal access (scripts/oci/iam-policies.json, README "IAM per component"). ' +
      "Right after a deploy or a policy change, resource-principal tokens keep their old grants for minutes; retried.",
    {
      cause: err,
      retryable: true,
      details: {
        status: 404,
        serviceCode: code,
        notAuthorizedOrNotFound: true,
        ...(reading.principal ? { principal: reading.principal } : {}),
        ...(reading.resource ? { resource: reading.resource } : {}),
        ...(isOciError(err) ? { opcRequestId: err.opcRequestId } : {}),
      },
    },
  );
}

/** Is this one of ours from {@link notAuthorizedOrNotFound}? */
export function isNotAuthorizedOrNotFound(err: unknown): boolean {
  return err instanceof PipelineError && err.details.notAuthorizedOrNotFound === true;
}

/**
 * Translate an oci-sdk failure into the pipeline's error hierarchy so callers
 * never see SDK types: 404 → NotFound only for the service codes `reading.absent`
 * names, any other 404 → a retryable configuration error ({@link notAuthorizedOrNotFound}),
 * 409 → Conflict, 412 → PreconditionFailed, 400 → InvalidArgument, 401/403 →
 * non-retryable store error naming the IAM cause, 429/5xx/network → StoreUnavailable (retryable).
 */
export function mapOciError(
  err: unknown,
  what: string,
  reading: NotFoundReading = {},
): PipelineError {
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
      return isAbsent(err, reading.absent ?? [])
        ? new NotFoundError(detail, opts)
        : notAuthorizedOrNotFound(err, what, reading);
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
        `${detail} (check the dynamic group and IAM policy for ${reading.principal ?? "this component"}; see README "IAM per component")`,
        { ...opts, retryable: false },
      );
    default:
      return new StoreUnavailableError(detail, opts);
  }
}
