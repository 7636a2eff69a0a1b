/**
 * sha256 of a file on a thread of its own, so the main thread can do other work while
 * a large input is hashed (the CLI checks the model and the input's header meanwhile:
 * ~130 ms of a 1M-row run's start). Where this build has no thread entry, on one
 * core, or when the thread can't start, the file is hashed on the calling thread: the
 * thread only ever saves time.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { threadEntry } from "../../core/thread-entry.ts";
import { sha256OfFile } from "./file-hash.ts";
import type { HashReply, HashRequest } from "./file-hash-worker.ts";

/** Hashes done on a thread in this process (tests check the thread was used). */
export const hashThreadStats = { hashed: 0 };

/**
 * sha256 (hex) of a file's content, hashed beside the calling thread. Errors are those
 * of {@link sha256OfFile} (an Error with the errno `code`, e.g. ENOENT). `signal`
 * ends the thread early (the answer is no longer wanted) and rejects with its reason.
 */
export function sha256OfFileBeside(
  path: string,
  options: { noFollow?: boolean; signal?: AbortSignal } = {},
): Promise<string> {
  const noFollow = options.noFollow ?? false;
  const entry =
    availableParallelism() >= 2
      ? threadEntry(import.meta.url, "./file-hash-worker.ts", "file-hash.js")
      : undefined;
  if (!entry) return sha256OfFile(path, noFollow);
  let worker: Worker;
  try {
    worker = new Worker(entry.code, {
      eval: entry.eval,
      workerData: { path, noFollow } satisfies HashRequest,
    });
  } catch {
    return sha256OfFile(path, noFollow);
  }
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener("abort", onAbort);
      fn();
      void worker.terminate();
    };
    const onAbort = () => settle(() => reject(options.signal?.reason));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (reply: HashReply) => {
      if ("sha256" in reply) {
        hashThreadStats.hashed++;
        settle(() => resolve(reply.sha256));
      } else {
        const err = Object.assign(new Error(reply.error.message), reply.error);
        settle(() => reject(err));
      }
    });
    // The thread itself failed (it could not load): hash here instead.
    worker.once("error", () => settle(() => sha256OfFile(path, noFollow).then(resolve, reject)));
    worker.once("exit", () => settle(() => sha256OfFile(path, noFollow).then(resolve, reject)));
  });
}
