/**
 * Filesystem helpers of the local object store: errno mapping (transient errors are
 * retryable), stat-based etags and object infos, durable writes.
 */
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { Readable } from "node:stream";
import { InvalidArgumentError, PipelineError, StoreUnavailableError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../ports/object-store.ts";

export const TRANSIENT_FS_CODES = new Set([
  "EIO",
  "ENOSPC",
  "EDQUOT",
  "EMFILE",
  "ENFILE",
  "EAGAIN",
  "EBUSY",
  "ETIMEDOUT",
  "ESTALE",
]);

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export function isMissing(err: unknown): boolean {
  const code = errno(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Map filesystem failures: transient ones become retryable StoreUnavailableError. */
export function mapFsError(err: unknown, context: string): unknown {
  if (err instanceof PipelineError) return err;
  const code = errno(err);
  if (code !== undefined && TRANSIENT_FS_CODES.has(code)) {
    return new StoreUnavailableError(`${context}: ${code}`, { cause: err });
  }
  if (code === "ENAMETOOLONG") {
    return new InvalidArgumentError(`${context}: name too long for the local filesystem`, {
      cause: err,
    });
  }
  return err;
}

/**
 * Etag from (device, inode, size, mtime and ctime in ns). Every put writes a new file
 * (new inode while the old one is still linked) and stamps it with a randomized
 * microsecond mtime, so a later object only repeats an old etag if it reuses a freed
 * inode, has the same size and draws the same microsecond within the same
 * millisecond. The ctime matters for objects placed by hard link (`placeFile`): the
 * object is then the user's file, which can be rewritten in place with its size and
 * mtime restored (`cp -p`, `rsync -a --inplace`); no one can set a ctime back.
 * Content-hash etags would need a sidecar or a full read on `head`.
 */
export function etagOf(st: BigIntStats): string {
  return createHash("sha256")
    .update(`${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`)
    .digest("hex")
    .slice(0, 32);
}

export function infoOf(name: string, st: BigIntStats, etag = etagOf(st)): ObjectInfo {
  return {
    name,
    size: Number(st.size),
    etag,
    lastModified: new Date(Number(st.mtimeNs / 1_000_000n)),
  };
}

/** Code-unit order, which is what OCI and `start`/`nextStart` comparisons use. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

export async function writeBody(fh: FileHandle, body: Buffer | string | Readable): Promise<void> {
  if (typeof body === "string") return writeAll(fh, Buffer.from(body, "utf8"));
  if (body instanceof Uint8Array) return writeAll(fh, body);
  if (body instanceof Readable) {
    // Pulling chunk by chunk gives backpressure for free; nothing is buffered whole.
    for await (const chunk of body) {
      if (typeof chunk === "string") await writeAll(fh, Buffer.from(chunk, "utf8"));
      else if (chunk instanceof Uint8Array) await writeAll(fh, chunk);
      else throw new InvalidArgumentError("put: body stream must yield Buffers or strings");
    }
    return;
  }
  throw new InvalidArgumentError("put: body must be a Buffer, a string or a Readable");
}

/** Make a rename durable: fsync the directory entry. Best effort (not every fs allows it). */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the data itself was already synced.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
