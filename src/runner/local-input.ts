/**
 * A local file as the input object of the embedded default: named by its content,
 * placed without copying its bytes.
 *
 * Identity follows content: the object is `<sha256 prefix>/<file name>` in the input
 * bucket, so two files with the same name (or size, or mtime) but other bytes are two
 * objects and two jobs, and the same bytes run twice — even by two commands at once —
 * are one object and one job. The object is a hard link to the file where the
 * filesystem allows (no copy, no second copy on disk), else a reflink or a copy; a
 * hard-linked object IS the file, so a change to the file in place changes the
 * object's etag, and workers refuse to commit scores of an input that changed.
 *
 * Hashing costs one read of the file (about 1.6 GB/s with SHA extensions); it is
 * cached by the file's (device, inode, size, mtime, ctime), so running the same
 * command again does not read it again.
 *
 * A gzip file (by its magic bytes) is the exception: its records can't be read by
 * byte range, so it is decompressed once into a real file named by the decompressed
 * content (`x.csv.gz` → `<sha256 prefix>/x.csv`; the same data plain or gzipped is one
 * object and one job). That copy takes the uncompressed size on disk and stays in the
 * input bucket; running the command again finds it instead of decompressing again.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { sha256OfFile } from "../adapters/local/file-hash.ts";
import { sha256OfFileBeside } from "../adapters/local/file-hash-thread.ts";
import { withFileLock } from "../adapters/local/file-lock.ts";
import { InvalidArgumentError, NotFoundError, PreconditionFailedError } from "../core/errors.ts";
import { sha256Hex } from "../core/ids.ts";
import { withoutGzipSuffix } from "../core/job-spec.ts";
import { checkGzipFile, type Decompressed, gunzipToTemp } from "./gunzip-input.ts";
import type { LocalPipeline } from "./local-stores.ts";

/** Where a local file went. */
export interface StagedInput {
  bucket: string;
  object: string;
  etag: string;
  sha256: string;
  size: number;
  /**
   * linked: a hard link to the file; copied: its bytes were copied; decompressed: a gzip
   * file decompressed into a new file; existing: already staged.
   */
  how: "linked" | "copied" | "decompressed" | "existing";
}

/** The bytes to place: the file itself, or (gzip) its decompressed copy, made on demand. */
interface Source {
  /** The object's file name (a gzip file's without `.gz`). */
  name: string;
  gzip: boolean;
  /** A file holding the content: the input itself, or a decompressed temporary copy. */
  file(): Promise<string>;
  /** Remove what file() made. */
  cleanup(): Promise<void>;
}

type FileStat = Awaited<ReturnType<typeof statBig>>;

/**
 * Below this size the input is hashed on the calling thread: starting a hash thread
 * (an isolate and its bundle) costs ~50-100 ms while the workers boot, and hashing
 * 16 MiB takes ~10 ms here. Measured on a 10k-row file: hashed at ~180 ms from the
 * command's start instead of ~280 ms.
 */
const INLINE_HASH_BYTES = 16n << 20n;

function statBig(file: string) {
  return stat(file, { bigint: true });
}

function statKey(real: string, st: FileStat): string {
  return sha256Hex(`${real}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeNs}\0${st.ctimeNs}`);
}

/**
 * Whether two stats of one file show the same bytes. A write changes the mtime (and
 * the ctime, which can't be set back); a hard link made meanwhile (another `run` of
 * the same file staging it) changes only the ctime and the link count.
 */
function sameBytes(a: FileStat, b: FileStat): boolean {
  if (a.dev !== b.dev || a.ino !== b.ino || a.size !== b.size || a.mtimeNs !== b.mtimeNs) {
    return false;
  }
  return a.ctimeNs === b.ctimeNs || a.nlink !== b.nlink;
}

/** A small JSON record under the data dir, written atomically. */
async function writeRecord(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  await writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
  await rename(tmp, file);
}

async function readRecord<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** The object names a content hash may take: the plain one, then disambiguated ones. */
function candidateNames(sha: string, base: string): string[] {
  const safe = base.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 120) || "input";
  const head = sha.slice(0, 16);
  return [`${head}/${safe}`, ...Array.from({ length: 4 }, (_, i) => `${head}/v${i + 2}/${safe}`)];
}

/** A local file as it was when its content was identified (see {@link identifyLocalInput}). */
export interface InputIdentity {
  absolute: string;
  st: FileStat;
  gzip: boolean;
  /** Where the hash of this (device, inode, size, mtime, ctime) is remembered. */
  hashRecord: string;
  /** The content's sha256; undefined for a gzip file not seen before (its hash is the decompressed bytes'). */
  sha256?: string;
}

/**
 * Identify `file` by its content without writing anything: its sha256, from the
 * remembered hash of this very file (same device, inode, size, mtime and ctime) or
 * hashed (a file of 16 MiB or more on a thread of its own, so a caller can check other
 * things meanwhile).
 * Throws NotFoundError when the file is missing, InvalidArgumentError when it is not
 * a regular file or changes while it is read; `signal` stops a hash on the thread.
 */
export async function identifyLocalInput(
  pipeline: LocalPipeline,
  file: string,
  signal?: AbortSignal,
): Promise<InputIdentity> {
  const absolute = path.resolve(file);
  let st: FileStat;
  try {
    st = await statBig(absolute);
  } catch {
    throw new NotFoundError(`input file ${absolute} does not exist`);
  }
  if (!st.isFile()) throw new InvalidArgumentError(`input ${absolute} is not a regular file`);
  const gzip = await checkGzipFile(absolute);
  const hashRecord = path.join(
    pipeline.paths.dataDir,
    "state",
    "input-hashes",
    `${statKey(absolute, st)}${gzip ? ".gunzip" : ""}`,
  );
  const known = (await readRecord<{ sha256: string }>(hashRecord))?.sha256;
  if (known || gzip) return { absolute, st, gzip, hashRecord, ...(known ? { sha256: known } : {}) };
  const sha256 =
    st.size < INLINE_HASH_BYTES
      ? await sha256OfFile(absolute)
      : await sha256OfFileBeside(absolute, signal ? { signal } : {});
  await assertUnchanged(absolute, st);
  return { absolute, st, gzip, hashRecord, sha256 };
}

async function assertUnchanged(absolute: string, before: FileStat): Promise<void> {
  if (!sameBytes(before, await statBig(absolute))) {
    throw new InvalidArgumentError(
      `input file ${absolute} changed while it was being read: run again once it is complete`,
    );
  }
}

/**
 * Stage `file` as an object of `bucket` (see the module comment), identified first
 * unless `identity` (from {@link identifyLocalInput} of the same file) is given.
 * Throws NotFoundError when the file is missing (with the absolute path tried),
 * InvalidArgumentError when it is not a regular file or changes while it is read.
 */
export async function stageLocalInput(
  pipeline: LocalPipeline,
  bucket: string,
  file: string,
  identity?: InputIdentity,
): Promise<StagedInput> {
  const id = identity ?? (await identifyLocalInput(pipeline, file));
  const { absolute, gzip, hashRecord } = id;
  const dataDir = pipeline.paths.dataDir;
  const source = sourceOf(absolute, gzip, path.join(dataDir, "state", "gunzip"));
  try {
    let sha = id.sha256;
    if (!sha) {
      sha = await source.hashed();
      await assertUnchanged(absolute, id.st);
    }
    const content = sha;
    const stagedRecord = path.join(dataDir, "state", "staged", sha);
    await mkdir(path.dirname(stagedRecord), { recursive: true, mode: 0o700 });
    return await withFileLock(
      `${stagedRecord}.lock`,
      () => place(pipeline, bucket, absolute, source, content, stagedRecord, hashRecord),
      { timeoutMs: 30 * 60_000 },
    );
  } finally {
    await source.cleanup();
  }
}

/** The source of `absolute`'s object (see {@link Source}); `hashed()` decompresses a gzip file. */
function sourceOf(
  absolute: string,
  gzip: boolean,
  tempDir: string,
): Source & { hashed(): Promise<string> } {
  const base = path.basename(absolute);
  if (!gzip) {
    return {
      name: base,
      gzip,
      file: async () => absolute,
      cleanup: async () => {},
      hashed: () => sha256OfFile(absolute),
    };
  }
  let copy: Promise<Decompressed> | undefined;
  const decompressed = () => {
    copy ??= gunzipToTemp(absolute, tempDir);
    return copy;
  };
  return {
    name: withoutGzipSuffix(base),
    gzip,
    file: async () => (await decompressed()).path,
    hashed: async () => (await decompressed()).sha256,
    cleanup: async () => {
      const made = await copy?.catch(() => undefined);
      if (made) await rm(made.path, { force: true });
    },
  };
}

async function place(
  pipeline: LocalPipeline,
  bucket: string,
  absolute: string,
  source: Source,
  sha: string,
  stagedRecord: string,
  hashRecord: string,
): Promise<StagedInput> {
  const dataDir = pipeline.paths.dataDir;
  const known = await readRecord<{ object: string; etag: string }>(stagedRecord);
  const remember = async (object: string, etag: string) => {
    await writeRecord(stagedRecord, { object, etag });
    // The file's ctime changed if we just linked it: key the hash by what it is now.
    const now = await statBig(absolute).catch(() => undefined);
    const key = `${now ? statKey(absolute, now) : ""}${source.gzip ? ".gunzip" : ""}`;
    if (now) await writeRecord(path.join(path.dirname(hashRecord), key), { sha256: sha });
  };
  if (known) {
    const current = await pipeline.store.head(bucket, known.object);
    if (current && current.etag === known.etag) {
      await remember(known.object, current.etag);
      return {
        bucket,
        object: known.object,
        etag: current.etag,
        sha256: sha,
        size: current.size,
        how: "existing",
      };
    }
  }
  // The content's bytes: the file, or a gzip file's decompressed copy (made only now
  // when the hash was known from an earlier run).
  const file = await source.file();
  const size = (await stat(file)).size;
  for (const object of candidateNames(sha, source.name)) {
    try {
      const placed = await pipeline.objects.placeFile(bucket, object, file, sha);
      await remember(object, placed.etag);
      return {
        bucket,
        object,
        etag: placed.etag,
        sha256: sha,
        size,
        how: source.gzip ? "decompressed" : placed.linked ? "linked" : "copied",
      };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    // Taken: by this content staged a moment ago (another command racing us), or by
    // an object changed in place since it was staged. Only the bytes can tell.
    const existing = await pipeline.store.head(bucket, object);
    if (!existing || existing.size !== size) continue;
    const hash = createHash("sha256");
    for await (const chunk of await pipeline.store.read(bucket, object))
      hash.update(chunk as Buffer);
    const again = await pipeline.store.head(bucket, object);
    if (hash.digest("hex") === sha && again?.etag === existing.etag) {
      await remember(object, existing.etag);
      return { bucket, object, etag: existing.etag, sha256: sha, size, how: "existing" };
    }
  }
  throw new InvalidArgumentError(
    `input ${absolute}: every object name for its content is taken by changed copies in ${dataDir}; remove ${path.join(pipeline.paths.buckets, bucket, sha.slice(0, 16))}`,
  );
}
