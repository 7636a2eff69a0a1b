/**
 * Downloads of remote model files (Object Storage objects, Data Science artifacts):
 * streamed to a new file and hashed on the way, and started over when the remote
 * object changes under the download.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PipelineError, StoreUnavailableError } from "../../core/errors.ts";
import { hashingTap } from "./model-cache.ts";

/** Descriptors are small; anything bigger is not one (and is not read into memory). */
export const MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024;

/** Attempts when a remote model changes while it is being downloaded. */
const CHANGED_ATTEMPTS = 3;

/** Stream `source` into a new file (0o600), hashing it; returns size and digests. */
export async function download(
  source: Readable,
  file: string,
  what: string,
): Promise<{ size: number; sha256: string; md5: string }> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const sha = createHash("sha256");
  const md5 = createHash("md5");
  const counter = { bytes: 0 };
  try {
    await pipeline(
      source,
      hashingTap([sha, md5], counter),
      createWriteStream(file, { flags: "wx", mode: 0o600 }),
    );
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw new StoreUnavailableError(`downloading ${what}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { size: counter.bytes, sha256: sha.digest("hex"), md5: md5.digest("base64") };
}

/** Thrown inside a download when the remote object changed under it; the caller starts over. */
export class ChangedWhileReading extends Error {}

/** Run `attempt` again (up to CHANGED_ATTEMPTS times) while it throws ChangedWhileReading. */
export async function withChangeRetries<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ChangedWhileReading)) throw err;
      if (i >= CHANGED_ATTEMPTS) {
        throw new StoreUnavailableError(
          `${what} kept changing while it was downloaded (${i} attempts): try again once uploads to it have finished`,
        );
      }
    }
  }
}
