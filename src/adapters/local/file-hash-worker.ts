/**
 * The hash thread's entry (see file-hash-thread.ts): hashes the file named in its
 * workerData and posts the hex digest, or the error's code and message, then ends.
 */
import { parentPort, workerData } from "node:worker_threads";
import { sha256OfFile } from "./file-hash.ts";

/** What the thread is given. */
export interface HashRequest {
  path: string;
  noFollow: boolean;
}

/** What the thread answers. */
export type HashReply = { sha256: string } | { error: { message: string; code?: string } };

const request = workerData as HashRequest;
sha256OfFile(request.path, request.noFollow).then(
  (sha256) => parentPort?.postMessage({ sha256 } satisfies HashReply),
  (err: NodeJS.ErrnoException) =>
    parentPort?.postMessage({
      error: { message: err.message, ...(err.code ? { code: err.code } : {}) },
    } satisfies HashReply),
);
