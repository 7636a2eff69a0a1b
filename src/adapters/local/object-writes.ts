/**
 * The local store's writes: put, placeFile and delete. Each works in the object's own
 * folder: a temp file is written and fsynced, then linked or renamed into place and
 * the folder fsynced, so a reader sees the old object or the new one, never a mix,
 * and a crash leaves one or the other. A new object (a plain put, or `ifNoneMatch:
 * "*"`) is linked into place without a lock; replacing one (an `ifMatch` put, a plain
 * put over an existing object) and deleting one hold the object's lock file, so a
 * conditional put's check and its rename are one step to every other writer.
 */
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
import { chmod, copyFile, link, realpath, rmdir, unlink } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  UnsafePathError,
} from "../../core/errors.ts";
import type { PutOptions } from "../../ports/object-store.ts";
import { sha256OfFile } from "./file-hash.ts";
import { type FileLockOptions, withFileLock } from "./file-lock.ts";
import {
  closeQuietly,
  createTempFile,
  errno,
  etagOf,
  fsyncFd,
  isMissing,
  mapFsError,
  syncDir,
  unlinkQuietly,
  writeBodyToFd,
} from "./fs-primitives.ts";
import type { ObjectPaths } from "./object-paths.ts";
import type { PlacedFiles } from "./placed-files.ts";

/** What the writes share with the store's reads. */
export interface ObjectWritesDeps {
  paths: ObjectPaths;
  placed: PlacedFiles;
  lockOptions: FileLockOptions;
  /** The etag of an object as head reports it (a placed object's is its content hash). */
  etagFor(bucket: string, name: string, path: string, st: BigIntStats): Promise<string>;
}

/** Writes of {@link LocalObjectStore}: see the module comment. */
export class ObjectWrites {
  private readonly paths: ObjectPaths;
  private readonly placed: PlacedFiles;
  private readonly lockOptions: FileLockOptions;
  private readonly etagFor: ObjectWritesDeps["etagFor"];

  constructor(deps: ObjectWritesDeps) {
    this.paths = deps.paths;
    this.placed = deps.placed;
    this.lockOptions = deps.lockOptions;
    this.etagFor = deps.etagFor;
  }

  /** Atomic write (temp file, fsync, link or rename); conditions are checked race-free. */
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
    // The metadata steps (stamp, lock, link or rename, stat) are synchronous syscalls of
    // microseconds; the create (see createTempFile), the body's bytes (past a size) and
    // the two fsyncs go to the thread pool. Each awaited step costs an event-loop turn,
    // and a worker's loop is busy scoring: a part put of ~20 awaited steps cost it ~1 ms
    // of CPU and took as many turns to finish (a checkpoint every 5,000 records was +25%
    // over one per partition).
    const tmp = join(dir, `.${base}.tmp-${randomBytes(8).toString("hex")}`);
    let etag: string;
    let fd: number | undefined;
    try {
      fd = await createTempFile(dir, tmp, context);
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
      closeSync(await createTempFile(dir, tmp, context));
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
