/**
 * Where a local store's objects live on disk, and the checks that keep them there:
 * bucket and object names, the store's own temp and lock files, and symbolic links,
 * which are never followed.
 */
import { type BigIntStats, lstatSync, realpathSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { InvalidArgumentError, UnsafePathError } from "../../core/errors.ts";
import { errno, isMissing } from "./fs-primitives.ts";

/** Bucket names: what OCI allows, minus anything a filesystem would treat specially. */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Names of the store's own files inside a bucket (temp files, per-object lock files
 * and locks moved aside as stale). `list` hides them and object names may not
 * take this form, so they can never collide with an object.
 */
export const INTERNAL_SEGMENT = /^\..*\.(?:tmp-[0-9a-f]{16}|lock(?:\.stale-[0-9a-f]{16})?)$/;

/** Longest object-name segment: leaves room for the temp/lock suffixes under NAME_MAX (255). */
const MAX_SEGMENT_BYTES = 200;
/** OCI's object name limit. */
const MAX_NAME_BYTES = 1024;

/** An object's file and the folders around it. */
export interface Located {
  bucketDir: string;
  /** Directory that holds the object file. */
  dir: string;
  /** Last name segment (the file name). */
  base: string;
  path: string;
}

/** Names to paths, and the link checks, under one root directory. */
export class ObjectPaths {
  /** realpath of `root`, once it exists. */
  private realRootPath: string | undefined;

  constructor(
    /** Absolute root directory. */
    readonly root: string,
  ) {}

  /** The folder of `bucket`; UnsafePathError for a name OCI or a filesystem would not take. */
  bucketDir(bucket: string): string {
    if (typeof bucket !== "string" || !BUCKET_NAME.test(bucket)) {
      throw new UnsafePathError(
        `invalid bucket name ${JSON.stringify(bucket)}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
        { details: { bucket } },
      );
    }
    return join(this.root, bucket);
  }

  /** Validate an object name and map it to its file. */
  locate(bucket: string, name: string): Located {
    const bucketDir = this.bucketDir(bucket);
    const reject = (why: string): never => {
      throw new UnsafePathError(`unsafe object name ${JSON.stringify(name)}: ${why}`, {
        details: { bucket, name },
      });
    };
    if (typeof name !== "string" || name.length === 0) reject("it is empty");
    if (name.includes("\0")) reject("it contains a NUL character");
    if (name.includes("\\")) reject("it contains a backslash");
    if (name.startsWith("/")) reject("it is absolute (starts with '/')");
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw new InvalidArgumentError(`object name longer than ${MAX_NAME_BYTES} bytes`);
    }
    const segments = name.split("/");
    for (const segment of segments) {
      if (segment === "..") reject("it contains a '..' segment");
      if (segment === "." || segment === "") reject("it contains an empty or '.' segment");
      if (INTERNAL_SEGMENT.test(segment)) reject("that form is reserved for temp and lock files");
      if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
        throw new InvalidArgumentError(
          `object name ${JSON.stringify(name)}: a '/'-separated part is longer than ${MAX_SEGMENT_BYTES} bytes`,
        );
      }
    }
    const path = resolve(bucketDir, ...segments);
    // Defense in depth: the checks above already make this impossible.
    if (!path.startsWith(bucketDir + sep)) reject("it resolves outside its bucket");
    const base = segments[segments.length - 1] ?? reject("it is empty");
    return { bucketDir, dir: dirname(path), base, path };
  }

  /** A list prefix's folder part ("a/b/") is walkable when it could prefix a valid name. */
  validFolder(folder: string): boolean {
    if (folder.includes("\0") || folder.includes("\\") || folder.startsWith("/")) return false;
    return folder
      .slice(0, -1)
      .split("/")
      .every((s) => s !== "" && s !== "." && s !== ".." && !INTERNAL_SEGMENT.test(s));
  }

  /**
   * Refuse to reach `located` through a symbolic link: the deepest folder on its
   * way that exists must resolve to exactly where its name says, below the real
   * root. (The last name segment is guarded where it is opened: O_NOFOLLOW, lstat.)
   */
  assertNoLinks(located: Pick<Located, "bucketDir" | "dir">, name: string): void {
    const realRoot = this.realRoot();
    if (realRoot === undefined) return; // nothing exists yet, so no link either
    let lexical = located.dir;
    for (;;) {
      const expected =
        lexical === this.root ? realRoot : join(realRoot, relative(this.root, lexical));
      let real: string;
      try {
        real = realpathSync.native(lexical);
      } catch (err) {
        if (isMissing(err) && lexical !== this.root) {
          // Missing, or a link to nowhere: a folder created through it would land outside.
          if (lstatQuietly(lexical)?.isSymbolicLink()) break;
          lexical = dirname(lexical);
          continue;
        }
        if (errno(err) === "ELOOP") break;
        throw err;
      }
      if (real === expected) return;
      break;
    }
    throw this.linked(relative(this.root, located.bucketDir), name);
  }

  linked(bucket: string, name: string): UnsafePathError {
    return new UnsafePathError(
      `unsafe object name ${JSON.stringify(name)} in bucket ${JSON.stringify(bucket)}: it is reached through a symbolic link, which the local store does not follow (it could point outside the bucket)`,
      { details: { bucket, name } },
    );
  }

  private realRoot(): string | undefined {
    if (this.realRootPath !== undefined) return this.realRootPath;
    try {
      this.realRootPath = realpathSync.native(this.root);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return this.realRootPath;
  }

  /** Stats of a regular file, or undefined when missing or not a file; a symlink is unsafe. */
  statFile(path: string): BigIntStats | undefined {
    try {
      const st = lstatSync(path, { bigint: true });
      if (st.isSymbolicLink()) {
        const rel = relative(this.root, path).split(sep);
        throw this.linked(rel[0] ?? "", rel.slice(1).join("/"));
      }
      return st.isFile() ? st : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }
}

function lstatQuietly(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
