/**
 * gzip inputs on the embedded default. A gzip stream can't be split into byte ranges
 * (a reader can't start in the middle of one), so `run` decompresses a `.gz` file once,
 * while staging it, into a real file in the data directory: the job then reads plain
 * CSV or JSON Lines by byte ranges like any other. That copy costs the uncompressed
 * size on disk (it stays in the input bucket with the job) and one pass of gunzip.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { InvalidArgumentError } from "../core/errors.ts";
import { isGzipName } from "../core/job-spec.ts";
import { looksGzipped } from "../sources/line-kind.ts";

/** Whether the file starts like a gzip stream (magic bytes, not its name). */
export async function isGzipFile(file: string): Promise<boolean> {
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(3);
    const { bytesRead } = await handle.read(head, 0, 3, 0);
    return looksGzipped(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/**
 * Whether `file` is gzip (by its bytes), refusing a `.gz` name on other bytes: the
 * name would make every reader take it for what it is not.
 */
export async function checkGzipFile(file: string): Promise<boolean> {
  const gzip = await isGzipFile(file);
  if (!gzip && isGzipName(file)) {
    throw new InvalidArgumentError(
      `input file ${file} is named .gz but is not gzip data: rename it to what it holds (.csv, .jsonl)`,
    );
  }
  return gzip;
}

/** What zlib said, as the end of a sentence. */
function zlibReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "Z_BUF_ERROR" || /unexpected end of file/i.test(e.message)) {
    return "it ends in the middle of the compressed data: truncated, e.g. an interrupted download";
  }
  return `zlib: ${e.message}`;
}

/** The error for a gzip file that does not decompress to the end. */
export function corruptGzip(file: string, err: unknown): InvalidArgumentError {
  return new InvalidArgumentError(
    `input file ${file} is not a complete gzip file (${zlibReason(err)}); nothing was staged or scored. Check it with \`gzip -t\` and fetch it again`,
    { cause: err },
  );
}

/** A decompressed copy of a gzip file, and its content's sha256 and size. */
export interface Decompressed {
  path: string;
  sha256: string;
  size: number;
}

/**
 * Decompress `file` into a new file under `dir` (made private to the data directory),
 * hashing the decompressed bytes as they pass. Throws InvalidArgumentError (and leaves
 * nothing behind) for a truncated or corrupt gzip file.
 */
export async function gunzipToTemp(file: string, dir: string): Promise<Decompressed> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, `${randomBytes(8).toString("hex")}.part`);
  const hash = createHash("sha256");
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(
      createReadStream(file, { highWaterMark: 1 << 20 }),
      createGunzip({ chunkSize: 1 << 20 }),
      tap,
      createWriteStream(target, { mode: 0o600 }),
    );
  } catch (err) {
    await rm(target, { force: true });
    // zlib's errors carry Z_* codes (Z_BUF_ERROR: truncated; Z_DATA_ERROR: corrupt).
    if ((err as NodeJS.ErrnoException).code?.startsWith("Z_")) throw corruptGzip(file, err);
    throw err;
  }
  return { path: target, sha256: hash.digest("hex"), size };
}

/**
 * The first `limit` decompressed bytes of a gzip file (fewer when it is shorter),
 * and whether that is all of it: enough to read a header before anything is staged.
 */
export async function gunzipHead(
  file: string,
  limit: number,
): Promise<{ bytes: Buffer; complete: boolean }> {
  const parts: Buffer[] = [];
  let total = 0;
  const source = createReadStream(file, { highWaterMark: 64 * 1024 });
  const gunzip = createGunzip();
  source.pipe(gunzip);
  source.on("error", (err) => gunzip.destroy(err));
  try {
    for await (const chunk of gunzip) {
      const buf = chunk as Buffer;
      parts.push(buf);
      total += buf.length;
      if (total > limit) {
        return { bytes: Buffer.concat(parts, total).subarray(0, limit), complete: false };
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith("Z_")) throw corruptGzip(file, err);
    throw err;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  return { bytes: Buffer.concat(parts, total), complete: true };
}
