/**
 * Objects of the local store that are hard links to a user's file (`placeFile`): the
 * store remembers, per object, the file's stat when its content was last hashed and
 * that hash, which is the object's etag. The object is the user's file, and a `touch`,
 * `chmod` or another hard link changes its stat without changing a byte: a changed
 * stat makes the store hash the file again, and the etag changes only if the bytes
 * did (so a touched input does not abort its job, and a rewritten one always does).
 */
import { createHash, randomBytes } from "node:crypto";
import { type BigIntStats, readFileSync, unlinkSync } from "node:fs";
import { lstat, mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sha256OfFile } from "./file-hash.ts";

interface PlacedRecord {
  snapshot: string;
  sha256: string;
}

function snapshotOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** The records, kept under `<root>/.placed/` (no bucket name starts with "."). */
export class PlacedFiles {
  constructor(private readonly root: string) {}

  private recordPath(bucket: string, name: string): string {
    return join(this.root, ".placed", bucket, createHash("sha256").update(name).digest("hex"));
  }

  private async write(path: string, record: PlacedRecord): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${randomBytes(8).toString("hex")}`;
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await rename(tmp, path);
  }

  /** Whether any object of `bucket` is placed: a listing of a bucket with none looks up no records. */
  async anyIn(bucket: string): Promise<boolean> {
    return (await lstat(join(this.root, ".placed", bucket)).catch(() => undefined)) !== undefined;
  }

  /** Remember that object `name` (stat `st`) was placed by hard link and holds `sha256`. */
  async remember(bucket: string, name: string, st: BigIntStats, sha256: string): Promise<void> {
    await this.write(this.recordPath(bucket, name), { snapshot: snapshotOf(st), sha256 });
  }

  /** Forget an object (deleted, or replaced by a put); synchronous: called under a lock, a few µs. */
  forget(bucket: string, name: string): void {
    try {
      unlinkSync(this.recordPath(bucket, name));
    } catch {
      // No record: the object was not placed.
    }
  }

  /**
   * The content etag of a placed object, or undefined for an object the store wrote
   * itself. `restat` reads the object's stat again (to know the hash matched it).
   */
  async etag(
    bucket: string,
    name: string,
    path: string,
    st: BigIntStats,
    restat: () => Promise<BigIntStats | undefined>,
  ): Promise<string | undefined> {
    const recordPath = this.recordPath(bucket, name);
    let record: PlacedRecord;
    try {
      // Synchronously: a record is a few dozen bytes, and a listing reads one per
      // object; the promise API's four round trips per file (open, stat, read, close)
      // cost more than the reads themselves (a 100,000-document corpus: seconds).
      record = JSON.parse(readFileSync(recordPath, "utf8")) as PlacedRecord;
    } catch {
      return undefined;
    }
    const snapshot = snapshotOf(st);
    if (record.snapshot === snapshot) return record.sha256.slice(0, 32);
    // The file's stat changed: hash it again (once; the record then holds the new stat).
    const sha256 = await sha256OfFile(path, true);
    const after = await restat();
    if (after && snapshotOf(after) === snapshot) await this.write(recordPath, { snapshot, sha256 });
    return sha256.slice(0, 32);
  }
}
