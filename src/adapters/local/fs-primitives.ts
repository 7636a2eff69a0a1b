/**
 * Filesystem helpers of the local object store: errno mapping (transient errors are
 * retryable), stat-based etags and object infos, durable writes.
 */
import { createHash } from "node:crypto";
import {
  type BigIntStats,
  closeSync,
  fsync,
  mkdirSync,
  open,
  openSync,
  unlinkSync,
  write,
  writeSync,
} from "node:fs";
import { Readable } from "node:stream";
import { promisify } from "node:util";
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

const fsyncAsync = promisify(fsync);
const openAsync = promisify(open);
const writeAsync = promisify(write);

/** fsync on the thread pool (the one step of a put that waits on the disk). */
export function fsyncFd(fd: number): Promise<void> {
  return fsyncAsync(fd);
}

/**
 * Bodies up to this size are written with blocking writes: into the page cache, a
 * MiB is ~100 µs, less than the thread-pool round trips of an awaited write.
 */
const SYNC_WRITE_MAX_BYTES = 1 << 20;

async function writeAllToFd(fd: number, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  if (bytes.length <= SYNC_WRITE_MAX_BYTES) {
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    return;
  }
  while (offset < bytes.length) {
    const { bytesWritten } = await writeAsync(fd, bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Write a put's body (bytes, text, or a stream pulled chunk by chunk) at the fd's position. */
export async function writeBodyToFd(fd: number, body: Buffer | string | Readable): Promise<void> {
  if (typeof body === "string") return writeAllToFd(fd, Buffer.from(body, "utf8"));
  if (body instanceof Uint8Array) return writeAllToFd(fd, body);
  if (body instanceof Readable) {
    // Pulling chunk by chunk gives backpressure for free; nothing is buffered whole.
    for await (const chunk of body) {
      if (typeof chunk === "string") await writeAllToFd(fd, Buffer.from(chunk, "utf8"));
      else if (chunk instanceof Uint8Array) await writeAllToFd(fd, chunk);
      else throw new InvalidArgumentError("put: body stream must yield Buffers or strings");
    }
    return;
  }
  throw new InvalidArgumentError("put: body must be a Buffer, a string or a Readable");
}

/** Make a rename durable: fsync the directory entry. Best effort (not every fs allows it). */
export async function syncDir(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    await fsyncAsync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the data itself was already synced.
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Closed is closed.
      }
    }
  }
}

/**
 * Create `path` if it does not exist (O_EXCL, mode 0600) and return its fd; EEXIST
 * when it does. On the thread pool, unlike the store's other metadata steps: creating
 * an inode waits for a journal commit in flight (an fsync of the previous put, or of
 * another worker's), and a blocking open then held a worker's event loop ~0.27 ms a
 * part (ext4; as much as the rest of a put's metadata steps together). Temp files and
 * lock files are both created this way.
 */
export function createExclusive(path: string): Promise<number> {
  return openAsync(path, "wx", 0o600);
}

/**
 * Create a put's temp file (its fd), creating its folders when missing, and again when
 * a concurrent delete has just removed them (the create: {@link createExclusive}).
 */
export async function createTempFile(dir: string, tmp: string, context: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createExclusive(tmp);
    } catch (err) {
      if (!isMissing(err) || attempt >= 5) throw err;
    }
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = errno(err);
      if (code === "EEXIST" || code === "ENOTDIR") {
        throw new InvalidArgumentError(
          `${context}: an object already uses part of this name as its full name (the local store can't hold both "a" and "a/b")`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

/** Remove a file that may not exist. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or never created.
  }
}

/** Close an fd whatever happened to it. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Closed is closed.
  }
}
