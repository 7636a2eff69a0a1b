import { type BigIntStats, constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { InvalidArgumentError, NotFoundError, TooLargeError } from "../../core/errors.ts";
import type {
  ByteRange,
  ObjectInfo,
  ObjectPage,
  ObjectStore,
  PutOptions,
} from "../../ports/object-store.ts";
import { type FileLockOptions, withFileLock } from "./file-lock.ts";
import { FolderWalker } from "./folder-walk.ts";
import { errno, etagOf, infoOf, isMissing, mapFsError } from "./fs-primitives.ts";
import { INTERNAL_SEGMENT, ObjectPaths } from "./object-paths.ts";
import { ObjectWrites } from "./object-writes.ts";
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
 * are fsynced and then hard-linked (a new object) or renamed (a replaced one) into
 * place, so readers see the old object or the new one, never a mix.
 *
 * Conditional puts are safe across processes: `ifNoneMatch: "*"`, and a plain put
 * of a name that does not exist yet, use `link()`, which fails atomically when the
 * name exists; `ifMatch`, a plain put replacing an object, and deletes serialize on a
 * per-object lock file (see {@link withFileLock} for its one bounded race, which
 * needs a crashed lock holder). The writes are in object-writes.ts.
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
  private readonly writes: ObjectWrites;

  constructor(options: LocalObjectStoreOptions) {
    if (!options.root) throw new InvalidArgumentError("LocalObjectStore: root is required");
    this.root = resolve(options.root);
    this.paths = new ObjectPaths(this.root);
    this.placed = new PlacedFiles(this.root);
    this.writes = new ObjectWrites({
      paths: this.paths,
      placed: this.placed,
      lockOptions: options.lock ?? {},
      etagFor: (bucket, name, path, st) => this.etagFor(bucket, name, path, st),
    });
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

  /** Atomic write (temp file, fsync, link or rename); conditions are checked race-free. */
  put(
    bucket: string,
    name: string,
    body: Buffer | string | Readable,
    options: PutOptions = {},
  ): Promise<{ etag: string }> {
    return this.writes.put(bucket, name, body, options);
  }

  /**
   * Create object `name` from the local file `file` without copying its bytes where
   * the filesystem allows (a hard link, else a reflink, else a copy). Create-only:
   * throws PreconditionFailedError when the name exists.
   */
  placeFile(
    bucket: string,
    name: string,
    file: string,
    /** The file's sha256 when the caller has it (it becomes the etag of a linked object). */
    sha256?: string,
  ): Promise<{ etag: string; linked: boolean }> {
    return this.writes.placeFile(bucket, name, file, sha256);
  }

  /** Delete (missing is fine), then remove folders it left empty. */
  delete(bucket: string, name: string): Promise<void> {
    return this.writes.delete(bucket, name);
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
}

/** Factory for the local object store rooted at `root`. */
export function createLocalObjectStore(root: string): LocalObjectStore {
  return new LocalObjectStore({ root });
}
