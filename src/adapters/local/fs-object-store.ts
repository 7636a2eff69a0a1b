import { randomBytes, randomInt } from "node:crypto";
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  linkSync,
  renameSync,
} from "node:fs";
import {
  chmod,
  copyFile,
  type FileHandle,
  link,
  open,
  realpath,
  rmdir,
  unlink,
} from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  TooLargeError,
  UnsafePathError,
} from "../../core/errors.ts";
import type {
  ByteRange,
  ObjectInfo,
  ObjectPage,
  ObjectStore,
  PutOptions,
} from "../../ports/object-store.ts";
import { sha256OfFile } from "./file-hash.ts";
import { type FileLockOptions, withFileLock } from "./file-lock.ts";
import { FolderWalker } from "./folder-walk.ts";
import {
  closeQuietly,
  createTempFile,
  errno,
  etagOf,
  fsyncFd,
  infoOf,
  isMissing,
  mapFsError,
  syncDir,
  unlinkQuietly,
  writeBodyToFd,
} from "./fs-primitives.ts";
import { INTERNAL_SEGMENT, ObjectPaths } from "./object-paths.ts";
import { PlacedFiles } from "./placed-files.ts";

/** Open for reading without following a symbolic link in the last name segment. */
const READ_NO_FOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);
/** Read stream chunk size. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** OCI's page size limit. */
const MAX_LIST_LIMIT = 1000;

/** Options for {@link LocalObjectStore}. */
export interface LocalObjectStoreOptions {
  /** Directory holding one subdirectory per bucket (created 0o700 on first write). */
  root: string;
  /** Per-object lock tuning (tests shorten it). */
  lock?: FileLockOptions;
}

/**
 * ObjectStore over a directory: one subdirectory per bucket, object names as
 * relative paths ('/' separated). Writes go to a temp file in the target directory,
 * are fsynced and then renamed (or hard-linked, for create-only) into place, so
 * readers see the old object or the new one, never a mix.
 *
 * Conditional puts are safe across processes: `ifNoneMatch: "*"` uses `link()`,
 * which fails atomically when the name exists; `ifMatch`, plain puts and deletes
 * serialize on a per-object lock file (see {@link withFileLock} for its one
 * bounded race, which needs a crashed lock holder).
 *
 * Limits of the local form: `contentType` and `metadata` are accepted and not
 * stored; a name can't be both an object and a "folder" of others (`a` and `a/b`);
 * names with empty, `.` or `..` segments are rejected. Symbolic links are never
 * followed: an object reached through one (a linked bucket, folder or file, which
 * could point anywhere on the machine) is an UnsafePathError.
 */
export class LocalObjectStore implements ObjectStore {
  /** Absolute root directory. */
  readonly root: string;
  private readonly placed: PlacedFiles;
  private readonly paths: ObjectPaths;
  private readonly folders = new FolderWalker(INTERNAL_SEGMENT);
  private readonly lockOptions: FileLockOptions;

  constructor(options: LocalObjectStoreOptions) {
    if (!options.root) throw new InvalidArgumentError("LocalObjectStore: root is required");
    this.root = resolve(options.root);
    this.paths = new ObjectPaths(this.root);
    this.placed = new PlacedFiles(this.root);
    this.lockOptions = options.lock ?? {};
  }

  /** Size and etag, or undefined when missing. */
  async head(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    const located = this.paths.locate(bucket, name);
    const { path } = located;
    try {
      this.paths.assertNoLinks(located, name);
      const st = this.paths.statFile(path);
      return st && infoOf(name, st, await this.etagFor(bucket, name, path, st));
    } catch (err) {
      throw mapFsError(err, `head ${bucket}/${name}`);
    }
  }

  /** The etag of an object: from its stat, or from its content if it was placed by hard link. */
  private async etagFor(
    bucket: string,
    name: string,
    path: string,
    st: BigIntStats,
    mayBePlaced = true,
  ): Promise<string> {
    if (!mayBePlaced) return etagOf(st);
    return (
      (await this.placed.etag(bucket, name, path, st, async () => this.paths.statFile(path))) ??
      etagOf(st)
    );
  }

  /** Stream the object or `range` of it (clamped to its size); NotFoundError when missing. */
  async read(bucket: string, name: string, range?: ByteRange): Promise<Readable> {
    const { fh, start, end } = await this.openRange(bucket, name, range);
    if (end <= start) {
      await fh.close();
      return Readable.from([], { objectMode: false });
    }
    // The port's end is exclusive; createReadStream's is inclusive. Reads are mostly
    // long sequential scans: 1 MiB chunks cut per-chunk overhead (awaits, block setup)
    // that showed in the worker's profile at the default 64 KiB.
    return fh.createReadStream({ start, end: end - 1, highWaterMark: READ_CHUNK_BYTES });
  }

  /**
   * The object or `range` of it in one buffer, read straight into it: no stream
   * chunks to allocate and concatenate (a Parquet row group's column chunks are
   * megabytes, read at a time). TooLargeError past `maxBytes`, before reading.
   */
  async readBuffer(
    bucket: string,
    name: string,
    range?: ByteRange,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<Buffer> {
    const { fh, start, end } = await this.openRange(bucket, name, range);
    try {
      if (end - start > maxBytes) throw new TooLargeError(`over ${maxBytes} bytes`);
      // Its own memory (not the pool's): handed to a decode thread as a whole ArrayBuffer.
      const buf = Buffer.allocUnsafeSlow(Math.max(0, end - start));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break; // cut short under us: what the stream would give
        got += bytesRead;
      }
      return got === buf.length ? buf : buf.subarray(0, got);
    } catch (err) {
      throw mapFsError(err, `read ${bucket}/${name}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Open for reading, with `range` checked and clamped to the object's size. */
  private async openRange(
    bucket: string,
    name: string,
    range: ByteRange | undefined,
  ): Promise<{ fh: FileHandle; start: number; end: number }> {
    const located = this.paths.locate(bucket, name);
    const { path } = located;
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new InvalidArgumentError(
          `read ${bucket}/${name}: invalid range [${start}, ${end}): need integers 0 <= start <= end`,
        );
      }
    }
    let fh: FileHandle;
    try {
      this.paths.assertNoLinks(located, name);
      fh = await open(path, READ_NO_FOLLOW);
    } catch (err) {
      if (errno(err) === "ELOOP") throw this.paths.linked(bucket, name);
      if (isMissing(err) || errno(err) === "EISDIR") {
        throw new NotFoundError(`object ${bucket}/${name} does not exist`, {
          details: { bucket, name },
        });
      }
      throw mapFsError(err, `read ${bucket}/${name}`);
    }
    try {
      // Size from the open handle: a concurrent overwrite swaps the name, not our inode.
      const st = await fh.stat();
      if (!st.isFile()) {
        throw new NotFoundError(`object ${bucket}/${name} does not exist`, {
          details: { bucket, name },
        });
      }
      const start = Math.min(range?.start ?? 0, st.size);
      const end = Math.min(range?.end ?? st.size, st.size);
      return { fh, start, end };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw mapFsError(err, `read ${bucket}/${name}`);
    }
  }

  /** Atomic write (temp file, fsync, rename); conditions are checked race-free. */
  async put(
    bucket: string,
    name: string,
    body: Buffer | string | Readable,
    options: PutOptions = {},
  ): Promise<{ etag: string }> {
    const located = this.paths.locate(bucket, name);
    const { dir, base, path } = located;
    if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
      throw new InvalidArgumentError(`put ${bucket}/${name}: ifNoneMatch only supports "*"`);
    }
    if (options.ifNoneMatch === "*" && options.ifMatch !== undefined) {
      throw new InvalidArgumentError(`put ${bucket}/${name}: ifMatch and ifNoneMatch both given`);
    }
    const context = `put ${bucket}/${name}`;
    try {
      this.paths.assertNoLinks(located, name);
    } catch (err) {
      throw mapFsError(err, context);
    }
    // Fail fast before streaming a body that can't be stored; the checks that
    // decide are the atomic ones below.
    if (options.ifNoneMatch === "*" || options.ifMatch !== undefined) {
      let current: BigIntStats | undefined;
      try {
        current = this.paths.statFile(path);
      } catch (err) {
        if (err instanceof UnsafePathError) throw err;
      }
      if (options.ifNoneMatch === "*" && current) {
        throw new PreconditionFailedError(
          `put ${bucket}/${name}: object already exists (ifNoneMatch "*")`,
          { details: { bucket, name } },
        );
      }
      if (options.ifMatch !== undefined && (!current || etagOf(current) !== options.ifMatch)) {
        throw this.ifMatchFailed(bucket, name, options.ifMatch, current);
      }
    }
    // The metadata steps (create, stamp, lock, rename, stat) are synchronous syscalls of
    // microseconds; only the body's bytes (past a size) and the two fsyncs go to the
    // thread pool. Each awaited step costs an event-loop turn, and a worker's loop is
    // busy scoring: a part put of ~20 awaited steps cost it ~1 ms of CPU and took as
    // many turns to finish (a checkpoint every 5,000 records was +25% over one per
    // partition).
    const tmp = join(dir, `.${base}.tmp-${randomBytes(8).toString("hex")}`);
    let etag: string;
    let fd: number | undefined;
    try {
      fd = createTempFile(dir, tmp, context);
      await writeBodyToFd(fd, body);
      // Random sub-millisecond mtime: kernel timestamps are jiffy-coarse, and the
      // etag must differ between two same-size puts in the same tick.
      const seconds = (Date.now() + randomInt(1000) / 1000) / 1000;
      futimesSync(fd, seconds, seconds);
      await fsyncFd(fd);
      if (options.ifNoneMatch === "*") {
        try {
          linkSync(tmp, path);
        } catch (err) {
          if (errno(err) === "EEXIST") {
            throw new PreconditionFailedError(
              `put ${bucket}/${name}: object already exists (ifNoneMatch "*")`,
              { details: { bucket, name } },
            );
          }
          throw err;
        }
        unlinkQuietly(tmp);
      } else if (options.ifMatch === undefined && this.createdByLink(bucket, name, tmp, path)) {
        // A new object: created atomically without the lock.
      } else {
        const replace = () => {
          if (options.ifMatch !== undefined) {
            const current = this.paths.statFile(path);
            if (!current || etagOf(current) !== options.ifMatch) {
              throw this.ifMatchFailed(bucket, name, options.ifMatch, current);
            }
          }
          this.placed.forget(bucket, name);
          renameSync(tmp, path);
        };
        await withFileLock(join(dir, `.${base}.lock`), async () => replace(), this.lockOptions);
      }
      // After the link/rename: both change the ctime that is part of the etag.
      etag = etagOf(fstatSync(fd, { bigint: true }));
    } catch (err) {
      unlinkQuietly(tmp);
      const code = errno(err);
      if (code === "EISDIR") {
        throw new InvalidArgumentError(
          `${context}: a folder of objects already uses this name (the local store can't hold both "a" and "a/b")`,
          { cause: err },
        );
      }
      throw mapFsError(err, context);
    } finally {
      if (fd !== undefined) closeQuietly(fd);
    }
    await syncDir(dir);
    return { etag };
  }

  /**
   * Create object `name` from the local file `file` without copying its bytes where
   * the filesystem allows: a hard link (the object is then the file itself, so a
   * change to the file is a change of the object, and its etag says so), else a
   * reflink where the filesystem has one, else a copy. Create-only: throws
   * PreconditionFailedError when the name exists.
   */
  async placeFile(
    bucket: string,
    name: string,
    file: string,
    /** The file's sha256 when the caller has it (it becomes the etag of a linked object). */
    sha256?: string,
  ): Promise<{ etag: string; linked: boolean }> {
    const located = this.paths.locate(bucket, name);
    const { dir, base, path } = located;
    const context = `place ${file} as ${bucket}/${name}`;
    const tmp = join(dir, `.${base}.tmp-${randomBytes(8).toString("hex")}`);
    let linked = true;
    try {
      this.paths.assertNoLinks(located, name);
      // link() would link a symbolic link itself: link what it points to.
      const source = await realpath(file);
      closeSync(createTempFile(dir, tmp, context));
      await unlink(tmp);
      try {
        await link(source, tmp);
      } catch (err) {
        const code = errno(err);
        if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw err;
        linked = false;
        await copyFile(source, tmp, constants.COPYFILE_FICLONE);
        await chmod(tmp, 0o600);
      }
      try {
        await link(tmp, path);
      } catch (err) {
        if (errno(err) === "EEXIST") {
          throw new PreconditionFailedError(`${context}: object already exists`, {
            details: { bucket, name },
          });
        }
        throw err;
      }
      await unlink(tmp);
      const st = this.paths.statFile(path);
      if (!st) throw new NotFoundError(`${context}: the object vanished as it was placed`);
      await syncDir(dir);
      if (!linked) return { etag: etagOf(st), linked };
      await this.placed.remember(bucket, name, st, sha256 ?? (await sha256OfFile(path, true)));
      return { etag: await this.etagFor(bucket, name, path, st), linked };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw mapFsError(err, context);
    }
  }

  /**
   * Object names under `prefix`, in order, without stats or etags: what a caller that
   * only compares names needs (the local stager looking for removed files). Reading
   * each placed object's record for its etag made that pass cost as much as a listing.
   */
  async *names(bucket: string, prefix: string): AsyncGenerator<string> {
    const slash = prefix.lastIndexOf("/");
    const folder = slash >= 0 ? prefix.slice(0, slash + 1) : "";
    if (folder !== "" && !this.paths.validFolder(folder)) return;
    const bucketDir = this.paths.bucketDir(bucket);
    const folderDir = join(bucketDir, folder);
    try {
      this.paths.assertNoLinks({ bucketDir, dir: folderDir }, prefix);
    } catch (err) {
      throw mapFsError(err, `list ${bucket}`);
    }
    for await (const [name] of this.folders.walk(folderDir, folder, prefix, undefined)) yield name;
  }

  /** Objects in name order; `start` is inclusive, `nextStart` names the next object. */
  async list(
    bucket: string,
    options: { prefix?: string; start?: string; limit?: number } = {},
  ): Promise<ObjectPage> {
    const bucketDir = this.paths.bucketDir(bucket);
    const prefix = options.prefix ?? "";
    const start = options.start;
    const limit = options.limit ?? MAX_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidArgumentError(`list ${bucket}: limit must be 1..${MAX_LIST_LIMIT}`);
    }
    // Walk only the folder the prefix names. If that folder part could not be part of
    // a valid object name, nothing matches (and it must never be joined onto a path).
    const slash = prefix.lastIndexOf("/");
    const folder = slash >= 0 ? prefix.slice(0, slash + 1) : "";
    if (folder !== "" && !this.paths.validFolder(folder)) return { objects: [] };
    const objects: ObjectInfo[] = [];
    let nextStart: string | undefined;
    try {
      const folderDir = join(bucketDir, folder);
      this.paths.assertNoLinks({ bucketDir, dir: folderDir }, prefix);
      // Names come from the walk in order; their stats and etags are read a run at a
      // time, concurrently (one at a time, a page of a large folder took seconds).
      const walk = this.folders.walk(folderDir, folder, prefix, start);
      // A bucket with no placed object at all needs no look for a record per object.
      const mayBePlaced = await this.placed.anyIn(bucket);
      let done = false;
      while (!done && nextStart === undefined) {
        const run: [string, string][] = [];
        while (run.length < limit + 1 - objects.length) {
          const next = await walk.next();
          if (next.done) {
            done = true;
            break;
          }
          run.push(next.value);
        }
        const infos = await Promise.all(
          run.map(async ([name, path]) => {
            let st: BigIntStats | undefined;
            try {
              st = this.paths.statFile(path);
            } catch (err) {
              throw mapFsError(err, `list ${bucket}`);
            }
            // Undefined: deleted while we walked.
            return st && infoOf(name, st, await this.etagFor(bucket, name, path, st, mayBePlaced));
          }),
        );
        for (const info of infos) {
          if (!info) continue;
          if (objects.length === limit) {
            nextStart = info.name;
            break;
          }
          objects.push(info);
        }
      }
      await walk.return(undefined);
    } catch (err) {
      throw mapFsError(err, `list ${bucket}`);
    }
    return nextStart === undefined ? { objects } : { objects, nextStart };
  }

  /** Delete (missing is fine), then remove folders it left empty. */
  async delete(bucket: string, name: string): Promise<void> {
    const located = this.paths.locate(bucket, name);
    const { bucketDir, dir, base, path } = located;
    try {
      this.paths.assertNoLinks(located, name);
      await withFileLock(
        join(dir, `.${base}.lock`),
        async () => {
          try {
            this.placed.forget(bucket, name);
            await unlink(path);
          } catch (err) {
            if (isMissing(err)) return;
            // unlink on a folder fails EISDIR (Linux) or EPERM (macOS): no such object.
            const code = errno(err);
            if ((code === "EISDIR" || code === "EPERM") && !this.paths.statFile(path)) return;
            throw err;
          }
        },
        this.lockOptions,
      );
    } catch (err) {
      if (isMissing(err)) return; // the folder is gone, so is the object
      throw mapFsError(err, `delete ${bucket}/${name}`);
    }
    // A concurrent put into a folder we remove retries its mkdir (see createTemp).
    let current = dir;
    while (current !== bucketDir && current.startsWith(bucketDir + sep)) {
      try {
        await rmdir(current);
      } catch {
        break; // not empty (or gone): stop climbing
      }
      current = dirname(current);
    }
  }

  /**
   * An unconditional put of an object that does not exist yet: link(2) creates it
   * atomically or fails EEXIST, so it needs no lock file. The lock serializes a
   * conditional put's check and rename with other writers of an existing object; a
   * link can't land between those (the name exists then). Most puts are new objects
   * (every checkpoint's part): this saves each a lock file's create and unlink, about a
   * third of its CPU. False when the object exists (then replaced under the lock).
   */
  private createdByLink(bucket: string, name: string, tmp: string, path: string): boolean {
    // A record left by a placed object removed from outside the store must not describe
    // this one. A placeFile linking this name meanwhile makes the link below fail.
    this.placed.forget(bucket, name);
    try {
      linkSync(tmp, path);
    } catch (err) {
      if (errno(err) === "EEXIST") return false;
      throw err;
    }
    unlinkQuietly(tmp);
    return true;
  }

  private ifMatchFailed(
    bucket: string,
    name: string,
    ifMatch: string,
    current: BigIntStats | undefined,
  ): PreconditionFailedError {
    if (!current) {
      return new PreconditionFailedError(
        `put ${bucket}/${name}: ifMatch given but the object does not exist`,
        { details: { bucket, name, ifMatch } },
      );
    }
    const etag = etagOf(current);
    return new PreconditionFailedError(
      `put ${bucket}/${name}: etag is ${etag}, not ${ifMatch} (ifMatch); re-read and retry`,
      { details: { bucket, name, ifMatch, etag } },
    );
  }
}

/** Factory for the local object store rooted at `root`. */
export function createLocalObjectStore(root: string): LocalObjectStore {
  return new LocalObjectStore({ root });
}
