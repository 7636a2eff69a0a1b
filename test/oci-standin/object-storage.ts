/**
 * Object Storage for the OCI stand-in: buckets, objects, ranged reads,
 * conditional writes, listing, multipart uploads and the OCI Events envelope a
 * bucket with "Emit object events" on produces for each upload. State lives in
 * memory. Paths, query names and headers are the ones oci-objectstorage's
 * client.js sends:
 *
 * - object names are one path segment, `encodeURIComponent`-encoded (a "/" in
 *   the name arrives as `%2F`); `*object` routes also accept raw slashes;
 * - query values are sent as given (the SDK does not encode them), so a caller
 *   that needs `&`, `+` or `#` in a prefix must encode it itself;
 * - `range: bytes=a-b` (inclusive), `if-match`, `if-none-match`, `opc-meta-*`.
 *
 * IAM (when the server enforces it): each operation needs the permissions of
 * Object Storage's policy reference (see iam-permissions.ts), with
 * `target.bucket.name`; a refusal is the 404 `BucketNotFound` "does not exist ...
 * or you are not authorized" that OCI gives for both, checked before anything
 * about the object is revealed (a HEAD carries no body at all).
 *
 * Multipart parts other than the last must be at least `minPartBytes` (10 MiB:
 * "Part size must be greater than 10 MiB", oracle/oci-cli
 * services/object_storage/src/oci_cli_object_storage/objectstorage_cli_extended.py);
 * a commit that breaks it is 400 `InvalidUploadPart` here (the real code is UNCONFIRMED).
 *
 * UNCONFIRMED details of the real service, and what this stand-in assumes:
 * conditions on CreateMultipartUpload are checked at create (fail fast) and
 * again on commit, each request's own headers only; the error code for an
 * unknown upload id is `NoSuchUpload`; a commit whose part etag does not match is
 * 400 `InvalidUploadPart`; an overwrite emits `updateobject`.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { OperationName } from "./iam-permissions.ts";
import { type OciStandIn, ociError, type StandInRequest, type StandInResponse } from "./server.ts";

/** Options for {@link registerObjectStorage}. */
export interface ObjectStorageOptions {
  /** The tenancy's Object Storage namespace; any other `/n/{ns}` is 404. */
  namespace: string;
  /**
   * Receives the OCI Events envelope for each upload to a bucket with object events
   * on, after the upload's response went out. A throw or rejection is retried a few
   * times (Events delivers at least once); deduplication is the receiver's business.
   */
  onObjectEvent?: (event: object) => void | Promise<void>;
  /** Smallest multipart part but the last (default 10 MiB, the service's). Tests of part logic scale it down. */
  minPartBytes?: number;
}

/** The service's smallest multipart part (all but the last). */
export const MIN_PART_BYTES = 10 * 1024 * 1024;

/** Bucket settings for {@link ObjectStorageHandle.createBucket}. */
export interface BucketOptions {
  /** OCI's "Emit object events" (off by default, as in OCI). */
  objectEventsEnabled?: boolean;
  compartmentId?: string;
}

/** What a test can do to, and see of, the stand-in's Object Storage. */
export interface ObjectStorageHandle {
  /** Create an empty bucket (buckets are made here, not through the API). */
  createBucket(name: string, options?: BucketOptions): void;
  /** The stored bytes of an object, or undefined. */
  objectBytes(bucket: string, name: string): Buffer | undefined;
  /** Names of a bucket's objects, sorted. */
  objectNames(bucket: string): string[];
  /** Multipart uploads created and neither committed nor aborted. */
  openUploads(bucket: string): number;
  /** Resolves once every scheduled event delivery has finished (delivered or given up). */
  idle(): Promise<void>;
  /** Deliveries that still failed after the last retry. */
  readonly failedDeliveries: unknown[];
}

interface StoredObject {
  bytes: Buffer;
  etag: string;
  /** Second resolution, as the Last-Modified header carries it. */
  lastModified: Date;
  contentType: string;
  /** Base64 MD5 of the bytes (single put), or OCI's `<md5-of-md5s>-<parts>` (multipart). */
  md5: string;
  multipart: boolean;
  meta: Record<string, string>;
}

interface Part {
  bytes: Buffer;
  etag: string;
  md5: Buffer;
}

interface Upload {
  id: string;
  object: string;
  timeCreated: Date;
  contentType: string;
  meta: Record<string, string>;
  parts: Map<number, Part>;
}

interface Bucket {
  name: string;
  id: string;
  compartmentId: string;
  objectEventsEnabled: boolean;
  objects: Map<string, StoredObject>;
  uploads: Map<string, Upload>;
}

const DEFAULT_COMPARTMENT = "ocid1.compartment.oc1..standincompartment";
const COMPARTMENT_NAME = "standin";
const MAX_LIST_LIMIT = 1000;
const MAX_PART_NUM = 10_000;
const DELIVERY_ATTEMPTS = 4;
const LIST_FIELDS = new Set([
  "name",
  "size",
  "etag",
  "timeCreated",
  "md5",
  "timeModified",
  "storageTier",
  "archivalState",
]);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

function md5(bytes: Buffer): Buffer {
  return createHash("md5").update(bytes).digest();
}

/** Now, truncated to whole seconds (what an HTTP date can say). */
function nowSeconds(): Date {
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

/** RFC 3339 without fractional seconds, as OCI Events writes eventTime. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Code-unit order (what the local store uses; see README on name order). */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function objectHeaders(obj: StoredObject): Record<string, string> {
  const headers: Record<string, string> = {
    etag: obj.etag,
    "last-modified": obj.lastModified.toUTCString(),
    "content-type": obj.contentType,
    "accept-ranges": "bytes",
    "archival-state": "Available",
  };
  if (obj.multipart) headers["opc-multipart-md5"] = obj.md5;
  else headers["content-md5"] = obj.md5;
  for (const [k, v] of Object.entries(obj.meta)) headers[`opc-meta-${k}`] = v;
  return headers;
}

/** User metadata from `opc-meta-*` request headers (keys without the prefix). */
function metaFromHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith("opc-meta-") && v !== undefined) {
      meta[k.slice("opc-meta-".length)] = Array.isArray(v) ? v.join(", ") : v;
    }
  }
  return meta;
}

/**
 * Check `if-match` / `if-none-match` for a write against the current object.
 * Returns the 412 (or 400) to send, or undefined when the write may go ahead.
 */
function writeConditionFailure(
  headers: IncomingHttpHeaders,
  current: StoredObject | undefined,
  what: string,
): StandInResponse | undefined {
  const ifMatch = header(headers, "if-match");
  const ifNoneMatch = header(headers, "if-none-match");
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== "*") {
      return ociError(400, "InvalidParameter", "The only valid value of if-none-match is '*'");
    }
    if (current) {
      return ociError(412, "IfNoneMatchFailed", `${what} already exists (if-none-match: *)`);
    }
  }
  if (ifMatch !== undefined && (!current || current.etag !== ifMatch)) {
    return ociError(
      412,
      "IfMatchFailed",
      current
        ? `The If-Match header value '${ifMatch}' does not match the ETag of ${what}`
        : `${what} does not exist (if-match: ${ifMatch})`,
    );
  }
  return undefined;
}

/** Parse a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range; undefined = ignore the header. */
function parseRange(
  value: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return undefined;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== "" && Number(b) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * Mount Object Storage on `server`. Buckets are created through the returned handle;
 * everything else goes through the real API paths.
 */
export function registerObjectStorage(
  server: OciStandIn,
  options: ObjectStorageOptions,
): ObjectStorageHandle {
  const buckets = new Map<string, Bucket>();
  const inFlight = new Set<Promise<void>>();
  const failedDeliveries: unknown[] = [];
  const minPartBytes = options.minPartBytes ?? MIN_PART_BYTES;

  const notFoundOrNotAuthorized = (req: StandInRequest): StandInResponse =>
    ociError(
      404,
      "BucketNotFound",
      `Either the bucket named '${req.params.bucket ?? ""}' does not exist in the namespace '${req.params.ns ?? ""}' or you are not authorized to access it`,
    );

  /**
   * The bucket a request names, if it exists and the caller may do `op` in it;
   * else the one 404 OCI answers for both. `op` may depend on the object's
   * existence (PutObject: create or overwrite), so it can be a function of the bucket.
   */
  const bucketOf = (
    req: StandInRequest,
    op: OperationName | ((bucket: Bucket) => OperationName),
  ): Bucket | StandInResponse => {
    const ns = req.params.ns ?? "";
    const name = req.params.bucket ?? "";
    const bucket = buckets.get(name);
    if (ns !== options.namespace || !bucket) return notFoundOrNotAuthorized(req);
    const operation = typeof op === "function" ? op(bucket) : op;
    if (!server.allows(req, operation, bucket.compartmentId, { "target.bucket.name": name })) {
      return notFoundOrNotAuthorized(req);
    }
    return bucket;
  };

  const objectNotFound = (bucket: Bucket, name: string): StandInResponse =>
    ociError(
      404,
      "ObjectNotFound",
      `The object '${name}' was not found in the bucket '${bucket.name}'`,
    );

  const deliver = (event: object): void => {
    const handler = options.onObjectEvent;
    if (!handler) return;
    const run = async (): Promise<void> => {
      // After the response: the handler runs in a later turn than the one that sends it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let attempt = 1; ; attempt++) {
        try {
          await handler(event);
          return;
        } catch (err) {
          if (attempt >= DELIVERY_ATTEMPTS) {
            failedDeliveries.push(err);
            return;
          }
          await new Promise<void>((resolve) => setTimeout(resolve, 5 * 2 ** attempt));
        }
      }
    };
    const p = run().finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  /** Store `obj` under `name` and emit the create/update event when the bucket asks for it. */
  const commitObject = (bucket: Bucket, name: string, obj: StoredObject): void => {
    const existed = bucket.objects.has(name);
    bucket.objects.set(name, obj);
    if (!bucket.objectEventsEnabled) return;
    deliver({
      cloudEventsVersion: "0.1",
      eventID: randomUUID(),
      eventType: existed
        ? "com.oraclecloud.objectstorage.updateobject"
        : "com.oraclecloud.objectstorage.createobject",
      eventTypeVersion: "2.0",
      source: "ObjectStorage",
      eventTime: rfc3339(new Date()),
      schemaURL: null,
      contentType: "application/json",
      extensions: { compartmentId: bucket.compartmentId },
      data: {
        compartmentId: bucket.compartmentId,
        compartmentName: COMPARTMENT_NAME,
        resourceName: name,
        resourceId: `/n/${options.namespace}/b/${bucket.name}/o/${name}`,
        // Object Storage is regional: its events say "all" rather than one AD.
        availabilityDomain: "all",
        freeformTags: {},
        definedTags: {},
        additionalDetails: {
          bucketName: bucket.name,
          bucketId: bucket.id,
          namespace: options.namespace,
          eTag: obj.etag,
          archivalState: "Available",
        },
      },
    });
  };

  // ---- Objects ------------------------------------------------------------------

  const readObject = (req: StandInRequest): StandInResponse => {
    const bucket = bucketOf(req, req.method === "HEAD" ? "HeadObject" : "GetObject");
    if (!("objects" in bucket)) return bucket;
    const name = req.params.object ?? "";
    const obj = bucket.objects.get(name);
    if (!obj) return objectNotFound(bucket, name);
    const ifMatch = header(req.headers, "if-match");
    if (ifMatch !== undefined && ifMatch !== obj.etag) {
      return ociError(412, "IfMatchFailed", `ETag of '${name}' is not ${ifMatch}`);
    }
    const ifNoneMatch = header(req.headers, "if-none-match");
    if (ifNoneMatch !== undefined && (ifNoneMatch === "*" || ifNoneMatch === obj.etag)) {
      return { status: 304, headers: { etag: obj.etag } };
    }
    const headers = objectHeaders(obj);
    const size = obj.bytes.length;
    const range = parseRange(header(req.headers, "range"), size);
    if (range === "unsatisfiable") {
      return {
        ...ociError(416, "InvalidRange", `The requested range is not satisfiable (size ${size})`),
        headers: { "content-range": `bytes */${size}` },
      };
    }
    const head = req.method === "HEAD";
    if (range) {
      const length = range.end - range.start + 1;
      headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
      headers["content-length"] = String(length);
      return {
        status: 206,
        headers,
        body: head ? undefined : obj.bytes.subarray(range.start, range.end + 1),
      };
    }
    headers["content-length"] = String(size);
    return { status: 200, headers, body: head ? undefined : obj.bytes };
  };

  const putObject = (req: StandInRequest): StandInResponse => {
    const bucket = bucketOf(req, (b) =>
      b.objects.has(req.params.object ?? "") ? "PutObjectOverwrite" : "PutObjectNew",
    );
    if (!("objects" in bucket)) return bucket;
    const name = req.params.object ?? "";
    const declared = header(req.headers, "content-length");
    if (declared !== undefined && Number(declared) !== req.body.length) {
      return ociError(400, "InvalidContentLength", "Content-Length does not match the body");
    }
    const failed = writeConditionFailure(req.headers, bucket.objects.get(name), `'${name}'`);
    if (failed) return failed;
    const bytes = Buffer.from(req.body);
    const obj: StoredObject = {
      bytes,
      etag: randomUUID(),
      lastModified: nowSeconds(),
      contentType: header(req.headers, "content-type") ?? "application/octet-stream",
      md5: md5(bytes).toString("base64"),
      multipart: false,
      meta: metaFromHeaders(req.headers),
    };
    commitObject(bucket, name, obj);
    return {
      status: 200,
      headers: {
        etag: obj.etag,
        "last-modified": obj.lastModified.toUTCString(),
        "opc-content-md5": obj.md5,
      },
    };
  };

  const deleteObject = (req: StandInRequest): StandInResponse => {
    const bucket = bucketOf(req, "DeleteObject");
    if (!("objects" in bucket)) return bucket;
    const name = req.params.object ?? "";
    const obj = bucket.objects.get(name);
    if (!obj) return objectNotFound(bucket, name);
    const ifMatch = header(req.headers, "if-match");
    if (ifMatch !== undefined && ifMatch !== obj.etag) {
      return ociError(412, "IfMatchFailed", `ETag of '${name}' is not ${ifMatch}`);
    }
    bucket.objects.delete(name);
    return { status: 204, headers: { "last-modified": new Date().toUTCString() } };
  };

  const listObjects = (req: StandInRequest): StandInResponse => {
    const bucket = bucketOf(req, "ListObjects");
    if (!("objects" in bucket)) return bucket;
    const q = req.url.searchParams;
    const prefix = q.get("prefix") ?? "";
    const start = q.get("start") ?? undefined;
    const startAfter = q.get("startAfter") ?? undefined;
    const end = q.get("end") ?? undefined;
    const delimiter = q.get("delimiter") ?? undefined;
    const limitText = q.get("limit");
    const limit = limitText === null ? MAX_LIST_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      return ociError(400, "InvalidParameter", `limit must be 1..${MAX_LIST_LIMIT}`);
    }
    if (delimiter !== undefined && delimiter !== "/") {
      return ociError(400, "InvalidParameter", "Only '/' is a supported delimiter");
    }
    const fields = new Set(["name"]);
    for (const f of (q.get("fields") ?? "").split(",").filter(Boolean)) {
      if (!LIST_FIELDS.has(f)) return ociError(400, "InvalidParameter", `unknown field ${f}`);
      fields.add(f);
    }
    const names = [...bucket.objects.keys()]
      .filter(
        (n) =>
          n.startsWith(prefix) &&
          (start === undefined || n >= start) &&
          (startAfter === undefined || n > startAfter) &&
          (end === undefined || n < end),
      )
      .sort(compareNames);
    const objects: Record<string, unknown>[] = [];
    const prefixes: string[] = [];
    let nextStartWith: string | undefined;
    for (const name of names) {
      let entry: string | undefined;
      if (delimiter !== undefined) {
        const cut = name.indexOf(delimiter, prefix.length);
        if (cut >= 0) entry = name.slice(0, cut + 1);
      }
      if (entry !== undefined && prefixes.includes(entry)) continue;
      if (objects.length + prefixes.length === limit) {
        nextStartWith = name;
        break;
      }
      if (entry !== undefined) {
        prefixes.push(entry);
        continue;
      }
      const obj = bucket.objects.get(name);
      if (!obj) continue;
      const summary: Record<string, unknown> = { name };
      if (fields.has("size")) summary.size = obj.bytes.length;
      if (fields.has("etag")) summary.etag = obj.etag;
      if (fields.has("md5")) summary.md5 = obj.md5;
      if (fields.has("timeCreated")) summary.timeCreated = obj.lastModified.toISOString();
      if (fields.has("timeModified")) summary.timeModified = obj.lastModified.toISOString();
      if (fields.has("storageTier")) summary.storageTier = "Standard";
      if (fields.has("archivalState")) summary.archivalState = "Available";
      objects.push(summary);
    }
    const body: Record<string, unknown> = { objects, prefixes };
    if (nextStartWith !== undefined) body.nextStartWith = nextStartWith;
    return { status: 200, body };
  };

  // ---- Multipart uploads ----------------------------------------------------------

  /** The upload a `/u/{object}?uploadId=` request names, or its error. */
  const uploadOf = (
    req: StandInRequest,
    op: OperationName,
  ): { bucket: Bucket; upload: Upload } | StandInResponse => {
    const bucket = bucketOf(req, op);
    if (!("objects" in bucket)) return bucket;
    const id = req.url.searchParams.get("uploadId") ?? "";
    const upload = bucket.uploads.get(id);
    if (!upload || upload.object !== req.params.object) {
      return ociError(
        404,
        "NoSuchUpload",
        `No multipart upload '${id}' for '${req.params.object}' in '${bucket.name}'`,
      );
    }
    return { bucket, upload };
  };

  const parseJson = (req: StandInRequest): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(req.body.toString("utf8"));
      return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };

  const createUpload = (req: StandInRequest): StandInResponse => {
    const bucket = bucketOf(req, "CreateMultipartUpload");
    if (!("objects" in bucket)) return bucket;
    const details = parseJson(req);
    const object = details?.object;
    if (typeof object !== "string" || object === "") {
      return ociError(400, "InvalidParameter", "createMultipartUploadDetails.object is required");
    }
    const meta: Record<string, string> = {};
    const rawMeta = details?.metadata;
    if (rawMeta !== undefined) {
      if (typeof rawMeta !== "object" || rawMeta === null) {
        return ociError(400, "InvalidParameter", "metadata must be an object");
      }
      for (const [k, v] of Object.entries(rawMeta)) {
        if (!k.startsWith("opc-meta-") || typeof v !== "string") {
          return ociError(400, "InvalidParameter", `metadata key ${k} must be opc-meta-*`);
        }
        meta[k.slice("opc-meta-".length)] = v;
      }
    }
    const failed = writeConditionFailure(req.headers, bucket.objects.get(object), `'${object}'`);
    if (failed) return failed;
    const upload: Upload = {
      id: randomUUID(),
      object,
      timeCreated: new Date(),
      contentType:
        typeof details?.contentType === "string" ? details.contentType : "application/octet-stream",
      meta,
      parts: new Map(),
    };
    bucket.uploads.set(upload.id, upload);
    return {
      status: 200,
      headers: { location: `/n/${options.namespace}/b/${bucket.name}/u/${object}` },
      body: {
        namespace: options.namespace,
        bucket: bucket.name,
        object,
        uploadId: upload.id,
        timeCreated: upload.timeCreated.toISOString(),
        storageTier: "Standard",
      },
    };
  };

  const uploadPart = (req: StandInRequest): StandInResponse => {
    const found = uploadOf(req, "UploadPart");
    if (!("upload" in found)) return found;
    const num = Number(req.url.searchParams.get("uploadPartNum"));
    if (!Number.isInteger(num) || num < 1 || num > MAX_PART_NUM) {
      return ociError(400, "InvalidParameter", `uploadPartNum must be 1..${MAX_PART_NUM}`);
    }
    const declared = header(req.headers, "content-length");
    if (declared !== undefined && Number(declared) !== req.body.length) {
      return ociError(400, "InvalidContentLength", "Content-Length does not match the body");
    }
    const bytes = Buffer.from(req.body);
    const part: Part = { bytes, etag: randomUUID(), md5: md5(bytes) };
    found.upload.parts.set(num, part);
    return {
      status: 200,
      headers: { etag: part.etag, "opc-content-md5": part.md5.toString("base64") },
    };
  };

  const commitUpload = (req: StandInRequest): StandInResponse => {
    const found = uploadOf(req, "CommitMultipartUpload");
    if (!("upload" in found)) return found;
    const { bucket, upload } = found;
    const details = parseJson(req);
    const list = details?.partsToCommit;
    if (!Array.isArray(list) || list.length === 0) {
      return ociError(400, "InvalidParameter", "partsToCommit must list at least one part");
    }
    const chosen: { num: number; part: Part }[] = [];
    for (const item of list as { partNum?: unknown; etag?: unknown }[]) {
      const num = Number(item?.partNum);
      const part = upload.parts.get(num);
      if (!part || part.etag !== item?.etag) {
        return ociError(
          400,
          "InvalidUploadPart",
          `part ${String(item?.partNum)} with etag ${String(item?.etag)} was not uploaded`,
        );
      }
      chosen.push({ num, part });
    }
    chosen.sort((a, b) => a.num - b.num);
    for (let i = 1; i < chosen.length; i++) {
      if (chosen[i]?.num === chosen[i - 1]?.num) {
        return ociError(400, "InvalidParameter", "a part is listed twice");
      }
    }
    const small = chosen.slice(0, -1).find((c) => c.part.bytes.length < minPartBytes);
    if (small) {
      return ociError(
        400,
        "InvalidUploadPart",
        `part ${small.num} is ${small.part.bytes.length} bytes; every part but the last must be at least ${minPartBytes}`,
      );
    }
    const failed = writeConditionFailure(
      req.headers,
      bucket.objects.get(upload.object),
      `'${upload.object}'`,
    );
    if (failed) return failed;
    const bytes = Buffer.concat(chosen.map((c) => c.part.bytes));
    const multipartMd5 = `${md5(Buffer.concat(chosen.map((c) => c.part.md5))).toString("base64")}-${chosen.length}`;
    const obj: StoredObject = {
      bytes,
      etag: randomUUID(),
      lastModified: nowSeconds(),
      contentType: upload.contentType,
      md5: multipartMd5,
      multipart: true,
      meta: upload.meta,
    };
    bucket.uploads.delete(upload.id);
    commitObject(bucket, upload.object, obj);
    return {
      status: 200,
      headers: {
        etag: obj.etag,
        "last-modified": obj.lastModified.toUTCString(),
        "opc-multipart-md5": multipartMd5,
      },
    };
  };

  const abortUpload = (req: StandInRequest): StandInResponse => {
    const found = uploadOf(req, "AbortMultipartUpload");
    if (!("upload" in found)) return found;
    found.bucket.uploads.delete(found.upload.id);
    return { status: 204 };
  };

  const svc = "objectstorage";
  server
    .route("GET", "/n/:ns/b/:bucket/o", listObjects, svc)
    .route("HEAD", "/n/:ns/b/:bucket/o/*object", readObject, svc)
    .route("GET", "/n/:ns/b/:bucket/o/*object", readObject, svc)
    .route("PUT", "/n/:ns/b/:bucket/o/*object", putObject, svc)
    .route("DELETE", "/n/:ns/b/:bucket/o/*object", deleteObject, svc)
    .route("POST", "/n/:ns/b/:bucket/u", createUpload, svc)
    .route("PUT", "/n/:ns/b/:bucket/u/*object", uploadPart, svc)
    .route("POST", "/n/:ns/b/:bucket/u/*object", commitUpload, svc)
    .route("DELETE", "/n/:ns/b/:bucket/u/*object", abortUpload, svc);

  return {
    createBucket(name, bucketOptions = {}) {
      if (buckets.has(name)) throw new Error(`stand-in bucket ${name} already exists`);
      buckets.set(name, {
        name,
        id: `ocid1.bucket.oc1.iad.${randomBytes(16).toString("hex")}`,
        compartmentId: bucketOptions.compartmentId ?? DEFAULT_COMPARTMENT,
        objectEventsEnabled: bucketOptions.objectEventsEnabled ?? false,
        objects: new Map(),
        uploads: new Map(),
      });
    },
    objectBytes(bucket, name) {
      return buckets.get(bucket)?.objects.get(name)?.bytes;
    },
    objectNames(bucket) {
      return [...(buckets.get(bucket)?.objects.keys() ?? [])].sort(compareNames);
    },
    openUploads(bucket) {
      return buckets.get(bucket)?.uploads.size ?? 0;
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    failedDeliveries,
  };
}
