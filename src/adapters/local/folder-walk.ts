/**
 * Walking a bucket's folders in object-name order, for listings: folder entries
 * sorted by key, and a large quiet folder's sorted entries kept between pages.
 */
import type { BigIntStats, Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { compareCodeUnits, isMissing } from "./fs-primitives.ts";

/** One entry of a folder as a listing walks it. */
interface FolderEntry {
  key: string;
  folder: boolean;
  path: string;
}
/** Folders with fewer entries are read afresh for every page (cheap enough). */
const FOLDER_CACHE_MIN_ENTRIES = 2000;
/** A folder's entries are cached only once its mtime is this old (coarse timestamps). */
const FOLDER_CACHE_QUIET_MS = 2000;
/** Folders cached per store. */
const FOLDER_CACHE_SIZE = 8;

/** Walks folders for one store (see the module comment); `internal` names are skipped. */
export class FolderWalker {
  constructor(private readonly internal: RegExp) {}

  /** Sorted entries of large, quiet folders, so a paged listing reads and sorts them once. */
  private readonly cache = new Map<string, { stamp: string; entries: FolderEntry[] }>();

  /**
   * The entries of folder `dir` (object names starting `rel`), sorted by key; undefined
   * when it is gone. Reading and sorting a folder of 100,000 documents for each page of
   * 1,000 made listing it quadratic (a minute), so a large folder's sorted entries are
   * kept while its stat says it is unchanged — and only once it has been quiet for a
   * few seconds: a change within the same clock tick as the cached stat would not
   * change it (timestamps are coarse), a later one does.
   */
  private async sortedEntries(dir: string, rel: string): Promise<FolderEntry[] | undefined> {
    let st: BigIntStats;
    try {
      st = await lstat(dir, { bigint: true });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const stamp = `${rel}\0${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
    const cached = this.cache.get(dir);
    if (cached?.stamp === stamp) return cached.entries;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const keyed: FolderEntry[] = [];
    for (const entry of entries) {
      if (this.internal.test(entry.name)) continue;
      // Symlinks are not followed: they could point outside the bucket.
      if (entry.isDirectory()) {
        keyed.push({ key: `${rel}${entry.name}/`, folder: true, path: join(dir, entry.name) });
      } else if (entry.isFile()) {
        keyed.push({ key: `${rel}${entry.name}`, folder: false, path: join(dir, entry.name) });
      }
    }
    keyed.sort((a, b) => compareCodeUnits(a.key, b.key));
    const quietMs = Date.now() - Number(st.mtimeNs / 1_000_000n);
    if (keyed.length >= FOLDER_CACHE_MIN_ENTRIES && quietMs > FOLDER_CACHE_QUIET_MS) {
      this.cache.delete(dir);
      this.cache.set(dir, { stamp, entries: keyed });
      while (this.cache.size > FOLDER_CACHE_SIZE) {
        this.cache.delete(this.cache.keys().next().value as string);
      }
    }
    return keyed;
  }

  /**
   * Files under `dir` in global name order. Siblings sort by their key (folders with
   * a trailing '/'), and every name under a folder starts with its key, so a
   * depth-first walk yields names already sorted and can stop early.
   */
  async *walk(
    dir: string,
    rel: string,
    prefix: string,
    start: string | undefined,
  ): AsyncGenerator<[name: string, path: string]> {
    const keyed = await this.sortedEntries(dir, rel);
    if (!keyed) return;
    for (const { key, folder, path } of keyed) {
      if (folder) {
        if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
        // Every name under `key` is < start when start > key and doesn't extend it.
        if (start !== undefined && key < start && !start.startsWith(key)) continue;
        yield* this.walk(path, key, prefix, start);
      } else {
        if (!key.startsWith(prefix)) continue;
        if (start !== undefined && key < start) continue;
        yield [key, path];
      }
    }
  }
}
