import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import * as common from "oci-common";
import type { ObjectStorageClient } from "oci-objectstorage";
import { InvalidArgumentError, NotFoundError, UnsafePathError } from "../../core/errors.ts";
import type {
  ByteRange,
  ObjectInfo,
  ObjectPage,
  ObjectStore,
  PutOptions,
} from "../../ports/object-store.ts";
import { type AuthzRetry, NO_AUTHZ_RETRY, retryNotAuthorized } from "./authz-retry.ts";
import { isAbsent, mapOciError, type NotFoundReading, ociStatus } from "./errors.ts";
import { OciObjectWrites, requireEtag } from "./object-writes.ts";

/** Options for {@link OciObjectStore}. */
export interface OciObjectStoreOptions {
  /** An oci-objectstorage client, already pointed at its region (or the stand-in). */
  client: ObjectStorageClient;
  /** The tenancy's Object Storage namespace (`oci os ns get`). */
  namespace: string;
  /** Multipart part size for streamed bodies. Default 16 MiB; one part is buffered at a time. */
  partSizeBytes?: number;
  /** A streamed body that ends within this many bytes goes up in one PutObject. Default: `partSizeBytes`. */
  singlePutMaxBytes?: number;
  /** Attempts for idempotent writes (unconditional PutObject, UploadPart) on 429/5xx/network errors. Default 4. */
  writeAttempts?: number;
  /** Who calls (`ociIdentity(auth).principal`), named in configuration errors. */
  principal?: string;
  /** How long a not-authorized-or-not-found answer is retried (default: not at all). */
  authzRetry?: AuthzRetry;
}

/** The one code that says an object is absent: Object Storage gives it once the caller may see the bucket. */
const OBJECT_ABSENT = ["ObjectNotFound"] as const;

const MIB = 1024 * 1024;
const DEFAULT_PART_SIZE = 16 * MIB;
/** OCI's limits: 1,000 objects per list page, 1,024-byte names (parts: object-writes.ts). */
const MAX_LIST_LIMIT = 1000;
const MAX_NAME_BYTES = 1024;
/** Bucket names OCI accepts. */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LIST_FIELDS = "name,size,etag,timeCreated";
const DEFAULT_WRITE_ATTEMPTS = 4;
/** The shape oci-common 2.x gives "Date" response headers; see {@link parseSdkDate}. */
const SDK_LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})Z$/;

/**
 * A date from an SDK response. oci-common 2.x turns `Last-Modified` into a string
 * built from the *local* time fields with an unpadded hour and a "Z" suffix
 * (`formatDateToRFC3339`), which `Date.parse` misreads outside UTC or rejects
 * before 10:00; those fields are read back as local time here. JSON bodies carry
 * real RFC 3339 strings, and a fixed SDK may hand over a Date.
 */
function parseSdkDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === "string") {
    const m = SDK_LOCAL_DATE.exec(value);
    if (m) {
      const [, y, mo, d, h, mi, s] = m.map(Number);
      return new Date(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0);
    }
    const parsed = new Date(value);
    if (!Number.isNaN(parsed.getTime())) return parsed;
  }
  return new Date(0);
}

/**
 * ObjectStore over OCI Object Storage.
 *
 * - Conditional writes use PutObject's `if-none-match: *` / `if-match`; Object
 *   Storage applies them atomically, so concurrent writers get exactly one winner.
 * - A streamed body that fits in `singlePutMaxBytes` is one PutObject; a longer
 *   one is a multipart upload of `partSizeBytes` parts sent one at a time (peak
 *   memory about max(singlePutMaxBytes, partSizeBytes)). The SDK's UploadManager
 *   is not used: it drops if-match/if-none-match on its multipart path.
 * - ETags are Object Storage's (opaque; compare for equality only).
 * - Object names are checked like the local store's (no leading "/", no empty,
 *   "." or ".." segments) so a name is valid on both or on neither.
 *
 * - Retries: PutObject and UploadPart run with the SDK's retries off; this class
 *   retries unconditional puts and parts (both idempotent) on 429/5xx/network
 *   errors. A conditional put is never retried: had the first attempt landed with
 *   only its answer lost, the retry would fail its own condition. The caller gets a
 *   retryable StoreUnavailableError and should re-read before deciding again.
 *   Reads, lists, deletes and the multipart create/commit/abort calls keep the
 *   SDK's default retries.
 *
 * Known limit: if a CommitMultipartUpload lands but its answer is lost, the SDK's
 * retry finds the upload gone (or, for a conditional put, the condition failing)
 * and this put reports an error for a write that happened. What OCI answers a
 * second commit with is UNCONFIRMED.
 */
export class OciObjectStore implements ObjectStore {
  private readonly client: ObjectStorageClient;
  private readonly namespace: string;
  private readonly writes: OciObjectWrites;
  private readonly principal: string | undefined;
  private readonly authzRetry: AuthzRetry;

  constructor(options: OciObjectStoreOptions) {
    if (!options.namespace) throw new InvalidArgumentError("OciObjectStore: namespace is required");
    this.client = options.client;
    this.namespace = options.namespace;
    const partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE;
    const singlePutMax = options.singlePutMaxBytes ?? partSize;
    const writeAttempts = options.writeAttempts ?? DEFAULT_WRITE_ATTEMPTS;
    this.principal = options.principal;
    this.authzRetry = options.authzRetry ?? NO_AUTHZ_RETRY;
    if (!Number.isSafeInteger(writeAttempts) || writeAttempts < 1) {
      throw new InvalidArgumentError("OciObjectStore: writeAttempts must be an integer >= 1");
    }
    if (!Number.isSafeInteger(partSize) || partSize < 1) {
      throw new InvalidArgumentError("OciObjectStore: partSizeBytes must be a positive integer");
    }
    if (!Number.isSafeInteger(singlePutMax) || singlePutMax < 0) {
      throw new InvalidArgumentError("OciObjectStore: singlePutMaxBytes must be an integer >= 0");
    }
    this.writes = new OciObjectWrites({
      client: this.client,
      namespace: this.namespace,
      partSize,
      singlePutMax,
      writeAttempts,
      authzRetry: this.authzRetry,
      reading: (bucket, name) => this.reading(bucket, name, OBJECT_ABSENT),
    });
  }

  /**
   * Size, etag and last-modified from HeadObject; undefined only when the object is
   * known to be absent. A HEAD 404 carries no body, so it can't say whether the
   * object, the bucket or the caller's permission is missing: the answer is
   * settled by a one-byte GET, whose 404 names its cause. `ObjectNotFound` is
   * absent; anything else (`BucketNotFound`, `NotAuthorizedOrNotFound`) is a
   * configuration error, retried within the authorization window, never "absent".
   */
  async head(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    this.check(bucket, name);
    return retryNotAuthorized(this.authzRetry, () => this.headOnce(bucket, name));
  }

  private async headOnce(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    const what = `head ${bucket}/${name}`;
    try {
      return await this.headRequest(bucket, name, what);
    } catch (err) {
      if (ociStatus(err) !== 404) throw mapOciError(err, what, this.reading(bucket, name));
    }
    return this.probeAbsent(bucket, name);
  }

  /** One HeadObject call as an ObjectInfo; the SDK's error as it came. */
  private async headRequest(bucket: string, name: string, what: string): Promise<ObjectInfo> {
    const res = await this.client.headObject({
      namespaceName: this.namespace,
      bucketName: bucket,
      objectName: name,
    });
    return {
      name,
      size: Number(res.contentLength ?? 0),
      etag: requireEtag(res.eTag, what),
      lastModified: parseSdkDate(res.lastModified),
    };
  }

  /** After a HEAD 404: a one-byte GET tells an absent object from a refusal (its 404 has a code). */
  private async probeAbsent(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    const what = `head ${bucket}/${name} (GET of one byte after a HEAD 404)`;
    try {
      const res = await this.client.getObject({
        namespaceName: this.namespace,
        bucketName: bucket,
        objectName: name,
        range: new common.Range(0, 0, null),
      });
      // It exists after all (written between the two calls): report it as a HEAD would.
      const value = res.value as Readable | WebReadableStream<Uint8Array> | null | undefined;
      if (value instanceof Readable) value.destroy();
      else if (value) await value.cancel().catch(() => undefined);
      const total = /\/(\d+)$/.exec(String(res.contentRange ?? ""))?.[1];
      return {
        name,
        size: Number(total ?? res.contentLength ?? 0),
        etag: requireEtag(res.eTag, what),
        lastModified: parseSdkDate(res.lastModified),
      };
    } catch (err) {
      if (isAbsent(err, OBJECT_ABSENT)) return undefined;
      // 416: an empty object appeared meanwhile; the next HEAD will see it.
      if (ociStatus(err) === 416) return this.headAgain(bucket, name);
      throw mapOciError(err, what, this.reading(bucket, name));
    }
  }

  private async headAgain(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    const what = `head ${bucket}/${name}`;
    try {
      return await this.headRequest(bucket, name, what);
    } catch (err) {
      throw mapOciError(err, what, this.reading(bucket, name));
    }
  }

  /** How a 404 on this bucket/object reads (see {@link NotFoundReading}). */
  private reading(bucket: string, name?: string, absent: readonly string[] = []): NotFoundReading {
    return {
      absent,
      principal: this.principal,
      resource: name === undefined ? `bucket ${bucket}` : `object ${bucket}/${name}`,
    };
  }

  /** Stream the object or `range` of it; a range past the end reads as empty. */
  async read(bucket: string, name: string, range?: ByteRange): Promise<Readable> {
    this.check(bucket, name);
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new InvalidArgumentError(
          `read ${bucket}/${name}: invalid range [${start}, ${end}): need integers 0 <= start <= end`,
        );
      }
      if (end === start) return Readable.from([], { objectMode: false });
    }
    return retryNotAuthorized(this.authzRetry, () => this.readOnce(bucket, name, range));
  }

  private async readOnce(bucket: string, name: string, range?: ByteRange): Promise<Readable> {
    const what = `read ${bucket}/${name}`;
    try {
      const res = await this.client.getObject({
        namespaceName: this.namespace,
        bucketName: bucket,
        objectName: name,
        // OCI's Range is inclusive at both ends; ours is end-exclusive. Both ends
        // are always sent (an open-ended range is not what the SDK serializes).
        ...(range ? { range: new common.Range(range.start, range.end - 1, null) } : {}),
      });
      const value = res.value as Readable | WebReadableStream<Uint8Array> | null | undefined;
      if (value == null) return Readable.from([], { objectMode: false });
      return value instanceof Readable ? value : Readable.fromWeb(value);
    } catch (err) {
      // 416: the range starts at or past the end of an object that exists.
      if (range && ociStatus(err) === 416) return Readable.from([], { objectMode: false });
      const mapped = mapOciError(err, what, this.reading(bucket, name, OBJECT_ABSENT));
      if (mapped instanceof NotFoundError) {
        throw new NotFoundError(`object ${bucket}/${name} does not exist`, {
          cause: err,
          details: { bucket, name },
        });
      }
      throw mapped;
    }
  }

  /** Atomic write; multipart for streamed bodies over `singlePutMaxBytes` (object-writes.ts). */
  async put(
    bucket: string,
    name: string,
    body: Buffer | string | Readable,
    options: PutOptions = {},
  ): Promise<{ etag: string }> {
    this.check(bucket, name); // a bad name rejects, as every store's does, never throws
    return this.writes.put(bucket, name, body, options);
  }

  /** One page of objects under `prefix`, in name order. */
  async list(
    bucket: string,
    options: { prefix?: string; start?: string; limit?: number } = {},
  ): Promise<ObjectPage> {
    this.checkBucket(bucket);
    const limit = options.limit ?? MAX_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidArgumentError(`list ${bucket}: limit must be 1..${MAX_LIST_LIMIT}`);
    }
    return retryNotAuthorized(this.authzRetry, () => this.listOnce(bucket, options, limit));
  }

  private async listOnce(
    bucket: string,
    options: { prefix?: string; start?: string },
    limit: number,
  ): Promise<ObjectPage> {
    try {
      const res = await this.client.listObjects({
        namespaceName: this.namespace,
        bucketName: bucket,
        // oci-common puts query values into the URL as given: encode them here, or a
        // name with '&', '+' or '#' would change the query's meaning.
        ...(options.prefix ? { prefix: encodeURIComponent(options.prefix) } : {}),
        ...(options.start !== undefined ? { start: encodeURIComponent(options.start) } : {}),
        limit,
        fields: LIST_FIELDS,
      });
      const page = res.listObjects;
      const objects: ObjectInfo[] = (page.objects ?? []).map((o) => ({
        name: o.name,
        size: Number(o.size ?? 0),
        etag: requireEtag(o.etag, `list ${bucket}`),
        lastModified: parseSdkDate(o.timeCreated),
      }));
      return page.nextStartWith ? { objects, nextStart: page.nextStartWith } : { objects };
    } catch (err) {
      throw mapOciError(err, `list ${bucket}`, this.reading(bucket));
    }
  }

  /**
   * Delete; `ObjectNotFound` (already gone) is success. Any other 404 is a
   * refusal or a missing bucket: a configuration error, never "deleted".
   */
  async delete(bucket: string, name: string): Promise<void> {
    this.check(bucket, name);
    await retryNotAuthorized(this.authzRetry, async () => {
      try {
        await this.client.deleteObject({
          namespaceName: this.namespace,
          bucketName: bucket,
          objectName: name,
        });
      } catch (err) {
        if (isAbsent(err, OBJECT_ABSENT)) return;
        throw mapOciError(err, `delete ${bucket}/${name}`, this.reading(bucket, name));
      }
    });
  }

  private checkBucket(bucket: string): void {
    if (typeof bucket !== "string" || !BUCKET_NAME.test(bucket)) {
      throw new UnsafePathError(
        `invalid bucket name ${JSON.stringify(bucket)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
        { details: { bucket } },
      );
    }
  }

  private check(bucket: string, name: string): void {
    this.checkBucket(bucket);
    const reject = (why: string): never => {
      throw new UnsafePathError(`unsafe object name ${JSON.stringify(name)}: ${why}`, {
        details: { bucket, name },
      });
    };
    if (typeof name !== "string" || name.length === 0) reject("it is empty");
    if (name.includes("\0")) reject("it contains a NUL character");
    if (name.startsWith("/")) reject("it is absolute (starts with '/')");
    for (const segment of name.split("/")) {
      if (segment === "..") reject("it contains a '..' segment");
      if (segment === "." || segment === "") reject("it contains an empty or '.' segment");
    }
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw new InvalidArgumentError(`object name longer than ${MAX_NAME_BYTES} bytes`);
    }
  }
}
