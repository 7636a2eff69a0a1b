/**
 * How `OciObjectStore` (object-storage.ts) writes an object: one PutObject, or for
 * a long stream a multipart upload sent a part at a time; idempotent writes retried
 * on 429/5xx and network errors (a conditional one never: see the store's class
 * comment); write errors mapped onto the pipeline's error hierarchy. It does not
 * import the store (the store passes in what it needs), so the two form no cycle.
 */
import { Readable } from "node:stream";
import * as common from "oci-common";
import type { ObjectStorageClient } from "oci-objectstorage";
import {
  InvalidArgumentError,
  NotFoundError,
  PipelineError,
  PreconditionFailedError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import type { PutOptions } from "../../ports/object-store.ts";
import { type AuthzRetry, retryNotAuthorized } from "./authz-retry.ts";
import { mapOciError, type NotFoundReading } from "./errors.ts";

/** OCI's limit: 10,000 parts per multipart upload. */
const MAX_PARTS = 10_000;
/** First retry delay for writes; doubles per attempt, with jitter. */
const RETRY_BASE_MS = 200;

/** What the writes need from their store. */
export interface OciWriteSettings {
  client: ObjectStorageClient;
  namespace: string;
  /** Multipart part size. */
  partSize: number;
  /** A stream that ends within this many bytes goes up in one PutObject. */
  singlePutMax: number;
  /** Attempts for idempotent writes. */
  writeAttempts: number;
  authzRetry: AuthzRetry;
  /** How a 404 on this object reads (the store's {@link NotFoundReading}). */
  reading(bucket: string, name: string | undefined): NotFoundReading;
}

/** An SDK call's result must carry an etag; a missing one is a service fault, not ours. */
export function requireEtag(etag: string | undefined | null, what: string): string {
  if (!etag) throw new PipelineError("INTERNAL", `${what}: the response carried no ETag`);
  return etag;
}

/**
 * A PutObject/UploadPart body. oci-common checks bodies for emptiness with
 * `Object.keys(body)`, which for a Buffer builds one key per byte (seconds of CPU
 * and GC per 8 MiB part), so non-empty bodies go as a one-chunk stream. The SDK
 * does not retry stream bodies; `OciObjectStore` retries idempotent writes
 * itself. An empty body stays a Buffer: the SDK then sends no body at all, which is
 * what an empty PutObject is (an empty stream makes the request hang).
 */
function sdkBody(bytes: Buffer): Buffer | Readable {
  return bytes.length === 0 ? bytes : Readable.from([bytes], { objectMode: false });
}

/** Byte chunks of a body stream (strings as UTF-8). */
async function* byteChunks(body: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    if (typeof chunk === "string") yield Buffer.from(chunk, "utf8");
    else if (chunk instanceof Uint8Array)
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    else throw new InvalidArgumentError("put: body stream must yield Buffers or strings");
  }
}

/** The writes of one `OciObjectStore` (see the module comment). */
export class OciObjectWrites {
  constructor(private readonly s: OciWriteSettings) {}

  /** Atomic write; multipart for streamed bodies over `singlePutMax` (names already checked). */
  async put(
    bucket: string,
    name: string,
    body: Buffer | string | Readable,
    options: PutOptions = {},
  ): Promise<{ etag: string }> {
    if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
      throw new InvalidArgumentError(`put ${bucket}/${name}: ifNoneMatch only supports "*"`);
    }
    if (options.ifNoneMatch === "*" && options.ifMatch !== undefined) {
      throw new InvalidArgumentError(`put ${bucket}/${name}: ifMatch and ifNoneMatch both given`);
    }
    // A body in memory can be sent again, so a refusal is retried within the window; a stream can't.
    if (typeof body === "string") {
      const bytes = Buffer.from(body);
      return retryNotAuthorized(this.s.authzRetry, () =>
        this.putSingle(bucket, name, bytes, options),
      );
    }
    if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      const bytes = Buffer.from(body.buffer, body.byteOffset, body.length);
      return retryNotAuthorized(this.s.authzRetry, () =>
        this.putSingle(bucket, name, bytes, options),
      );
    }
    if (!(body instanceof Readable)) {
      throw new InvalidArgumentError("put: body must be a Buffer, a string or a Readable");
    }
    const chunks = byteChunks(body);
    try {
      // Read one byte past the single-put limit to learn whether the body ends within it.
      const head: Buffer[] = [];
      let headBytes = 0;
      while (headBytes <= this.s.singlePutMax) {
        const next = await chunks.next();
        if (next.done) {
          return await this.putSingle(bucket, name, Buffer.concat(head, headBytes), options);
        }
        head.push(next.value);
        headBytes += next.value.length;
      }
      return await this.putMultipart(bucket, name, head, chunks, options);
    } finally {
      // Stops (and destroys) the source if we left early on an error.
      await chunks.return(undefined);
    }
  }

  private async putSingle(
    bucket: string,
    name: string,
    bytes: Buffer,
    options: PutOptions,
  ): Promise<{ etag: string }> {
    const what = `put ${bucket}/${name}`;
    const conditional = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
    try {
      // A conditional put is not retried: if the first attempt landed and only its
      // answer was lost, the retry would fail its own condition (a false 412).
      const res = await this.retryWrites(!conditional, () =>
        this.s.client.putObject({
          namespaceName: this.s.namespace,
          bucketName: bucket,
          objectName: name,
          putObjectBody: sdkBody(bytes),
          contentLength: bytes.length,
          ...conditions(options),
          ...(options.contentType ? { contentType: options.contentType } : {}),
          ...(options.metadata ? { opcMeta: options.metadata } : {}),
          retryConfiguration: common.NoRetryConfigurationDetails,
        }),
      );
      return { etag: requireEtag(res.eTag, what) };
    } catch (err) {
      throw this.mapWriteError(err, what, options);
    }
  }

  /**
   * Create an upload, send `partSize` parts one at a time, commit. The conditions go
   * on both CreateMultipartUpload (fails fast, before any bytes move) and
   * CommitMultipartUpload (where the object appears, so where the check must hold).
   * The SDK models accept if-match/if-none-match on both; whether the service checks
   * them at create is UNCONFIRMED, the commit check is what we rely on.
   * Any failure aborts the upload so no parts are left billed.
   */
  private async putMultipart(
    bucket: string,
    name: string,
    head: Buffer[],
    rest: AsyncGenerator<Buffer>,
    options: PutOptions,
  ): Promise<{ etag: string }> {
    const what = `put ${bucket}/${name}`;
    const target = { namespaceName: this.s.namespace, bucketName: bucket, objectName: name };
    let uploadId: string;
    try {
      const created = await this.s.client.createMultipartUpload({
        namespaceName: this.s.namespace,
        bucketName: bucket,
        createMultipartUploadDetails: {
          object: name,
          ...(options.contentType ? { contentType: options.contentType } : {}),
          // CreateMultipartUploadDetails wants the header form of each key.
          ...(options.metadata
            ? {
                metadata: Object.fromEntries(
                  Object.entries(options.metadata).map(([k, v]) => [`opc-meta-${k}`, v]),
                ),
              }
            : {}),
        },
        ...conditions(options),
      });
      uploadId = created.multipartUpload.uploadId;
    } catch (err) {
      throw this.mapWriteError(err, what, options);
    }
    const parts: { partNum: number; etag: string }[] = [];
    let pending = head;
    let pendingBytes = head.reduce((n, b) => n + b.length, 0);
    const sendParts = async (final: boolean): Promise<void> => {
      while (pendingBytes >= this.s.partSize || (final && pendingBytes > 0)) {
        const joined = Buffer.concat(pending, pendingBytes);
        const size = Math.min(this.s.partSize, joined.length);
        const part = joined.subarray(0, size);
        pending = size < joined.length ? [joined.subarray(size)] : [];
        pendingBytes = joined.length - size;
        const partNum = parts.length + 1;
        if (partNum > MAX_PARTS) {
          throw new InvalidArgumentError(
            `${what}: more than ${MAX_PARTS} parts of ${this.s.partSize} bytes; raise partSizeBytes`,
          );
        }
        // Re-sending a part number replaces that part, so parts are always retried.
        const res = await this.retryWrites(true, () =>
          this.s.client.uploadPart({
            ...target,
            uploadId,
            uploadPartNum: partNum,
            uploadPartBody: sdkBody(part),
            contentLength: part.length,
            retryConfiguration: common.NoRetryConfigurationDetails,
          }),
        );
        parts.push({ partNum, etag: requireEtag(res.eTag, `${what} part ${partNum}`) });
      }
    };
    try {
      await sendParts(false);
      for await (const chunk of rest) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= this.s.partSize) await sendParts(false);
      }
      await sendParts(true);
      const res = await this.s.client.commitMultipartUpload({
        ...target,
        uploadId,
        commitMultipartUploadDetails: { partsToCommit: parts },
        ...conditions(options),
      });
      return { etag: requireEtag(res.eTag, what) };
    } catch (err) {
      await this.s.client
        .abortMultipartUpload({ ...target, uploadId })
        .catch(() => undefined /* best effort: the original failure is what matters */);
      throw this.mapWriteError(err, what, options);
    }
  }

  /** Run a write, retrying it (when `idempotent`) on errors that may pass: 429, 5xx, network. */
  private async retryWrites<T>(idempotent: boolean, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const transient = mapOciError(err, "write");
        if (
          !idempotent ||
          attempt >= this.s.writeAttempts ||
          !(transient instanceof StoreUnavailableError && transient.retryable)
        ) {
          throw err;
        }
        const delayMs = RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /**
   * 412 on a conditional write is PreconditionFailed. Whether OCI answers an if-match
   * put on a missing object with 412 or 404 ObjectNotFound is UNCONFIRMED; both mean
   * the condition did not hold (a missing bucket is BucketNotFound and stays NotFound).
   */
  private mapWriteError(err: unknown, what: string, options: PutOptions): PipelineError {
    const [bucket = "", name] = what.replace(/^put /, "").split(/\/(.*)/s);
    const mapped = mapOciError(err, what, this.s.reading(bucket, name));
    if (options.ifMatch !== undefined && mapped instanceof NotFoundError) {
      return new PreconditionFailedError(`${what}: object does not exist (ifMatch)`, {
        cause: err,
      });
    }
    return mapped;
  }
}

/** The SDK request fields for a put's condition. */
function conditions(options: PutOptions): { ifMatch?: string; ifNoneMatch?: string } {
  if (options.ifNoneMatch === "*") return { ifNoneMatch: "*" };
  if (options.ifMatch !== undefined) return { ifMatch: options.ifMatch };
  return {};
}
