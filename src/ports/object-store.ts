import type { Readable } from "node:stream";

/** What `head` and `list` report about one object. */
export interface ObjectInfo {
  name: string;
  size: number;
  /** Opaque version tag; changes whenever the content changes. */
  etag: string;
  lastModified: Date;
}

/** A byte range: `start` inclusive, `end` exclusive (JS convention; OCI's Range header is inclusive). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Conditions and metadata for `put`. */
export interface PutOptions {
  /** `"*"`: only create, fail with PreconditionFailedError if the object exists. */
  ifNoneMatch?: "*";
  /** Only replace the object whose etag is this. */
  ifMatch?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** A page of `list`. */
export interface ObjectPage {
  objects: ObjectInfo[];
  /** Pass as `start` to get the next page; absent on the last page. */
  nextStart?: string;
}

/**
 * Port: a bucketed object store (Object Storage on OCI, a directory per bucket locally).
 * Writes are atomic: a reader sees the old object or the new one, never a mix.
 */
export interface ObjectStore {
  /**
   * Size and etag, or undefined when the object is known not to exist. A store
   * that can't tell a missing object from a refused caller (OCI answers both with
   * 404) throws a retryable error instead: never undefined for "maybe absent".
   */
  head(bucket: string, name: string): Promise<ObjectInfo | undefined>;
  /** Stream the object, or the part of it in `range`. Throws NotFoundError when missing (same rule as `head`). */
  read(bucket: string, name: string, range?: ByteRange): Promise<Readable>;
  /**
   * Optional: the object or `range` of it in one buffer, read without stream chunks
   * (a local file). Same errors as `read`, plus TooLargeError when it is longer than
   * `maxBytes`. Callers use `readBytes` (src/sources/read-bytes.ts), which falls back
   * to `read`.
   */
  readBuffer?(bucket: string, name: string, range?: ByteRange, maxBytes?: number): Promise<Buffer>;
  /** Write an object atomically. Throws PreconditionFailedError when a condition fails. */
  put(
    bucket: string,
    name: string,
    body: Buffer | string | Readable,
    options?: PutOptions,
  ): Promise<{ etag: string }>;
  /** Objects whose names start with `prefix`, in name order, `limit` per page. */
  list(
    bucket: string,
    options?: { prefix?: string; start?: string; limit?: number },
  ): Promise<ObjectPage>;
  /** Delete; deleting a missing object is not an error (a refused delete is). */
  delete(bucket: string, name: string): Promise<void>;
}
