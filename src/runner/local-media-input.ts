/**
 * A local directory (a media library) as the objects under a prefix of the embedded
 * default's input bucket: each file is placed as an object by hard link where the
 * filesystem allows (no copy), under a prefix named by the directory's real path.
 * Running the same directory again re-places only files that changed and removes
 * objects whose files are gone; the job's identity then follows the listing (names
 * and content hashes), so an unchanged library is the same job.
 *
 * Files and folders whose names start with "." (.DS_Store, .thumbnails) are left out.
 */
import { lstatSync, statSync } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError, NotFoundError } from "../core/errors.ts";
import { sha256Hex } from "../core/ids.ts";
import type { LocalPipeline } from "./local-stores.ts";

/** Where a directory went. */
export interface StagedDirectory {
  bucket: string;
  prefix: string;
  files: number;
  /** Files placed now (new or changed since the last run). */
  placed: number;
  /** Objects removed because their file is gone. */
  removed: number;
}

/** Files under `dir` (relative, '/'-separated), dot-names left out, symlinks to files followed. */
async function* walk(dir: string, rel = ""): AsyncGenerator<{ rel: string; file: string }> {
  const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const relPath = rel === "" ? e.name : `${rel}/${e.name}`;
    const file = path.join(dir, relPath);
    if (e.isDirectory()) yield* walk(dir, relPath);
    else if (e.isFile()) yield { rel: relPath, file };
    else if (e.isSymbolicLink() && (await stat(file).catch(() => undefined))?.isFile()) {
      yield { rel: relPath, file };
    }
  }
}

/** Run `fn` over an async sequence with at most `limit` at once. */
async function forEachLimit<T>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  for await (const item of items) {
    const p: Promise<void> = fn(item).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
}

/**
 * True when the object at `objectPath` is `file` itself (a hard link placed earlier).
 * Synchronous: run once per file of a directory that may hold 100,000 documents, and
 * two stat calls cost less than the promise API's round trips around them.
 */
function sameFile(objectPath: string, file: string): boolean {
  const a = lstatSync(objectPath, { bigint: true, throwIfNoEntry: false });
  const b = statSync(file, { bigint: true });
  return a !== undefined && a.ino === b.ino && a.dev === b.dev;
}

/**
 * Stage the files under `dir` as objects of `bucket` (see the module comment).
 * Throws NotFoundError when `dir` is missing, InvalidArgumentError when it holds no files.
 */
export async function stageLocalDirectory(
  pipeline: LocalPipeline,
  bucket: string,
  dir: string,
): Promise<StagedDirectory> {
  const absolute = path.resolve(dir);
  let real: string;
  try {
    real = await realpath(absolute);
  } catch {
    throw new NotFoundError(`input directory ${absolute} does not exist`);
  }
  const prefix = `dirs/${sha256Hex(real).slice(0, 16)}/`;
  const names = new Set<string>();
  let placed = 0;
  await forEachLimit(walk(real), 8, async ({ rel, file }) => {
    const name = `${prefix}${rel}`;
    names.add(name);
    const objectPath = path.join(pipeline.paths.buckets, bucket, ...name.split("/"));
    if (sameFile(objectPath, file)) return;
    // Replaced or never staged: place the file as it is now.
    await pipeline.store.delete(bucket, name);
    await pipeline.objects.placeFile(bucket, name, file);
    placed++;
  });
  if (names.size === 0) {
    throw new InvalidArgumentError(
      `input directory ${absolute} holds no files (names starting with "." are left out)`,
    );
  }
  let removed = 0;
  for await (const name of pipeline.objects.names(bucket, prefix)) {
    if (!names.has(name)) {
      await pipeline.store.delete(bucket, name);
      removed++;
    }
  }
  return { bucket, prefix, files: names.size, placed, removed };
}
