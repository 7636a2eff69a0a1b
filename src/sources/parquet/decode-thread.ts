/**
 * Numeric (and key text) column chunks decoded on a thread of their own, one per process: while
 * the main thread featurizes and scores one row group, the next one's pages are
 * decompressed and decoded beside it (with two or more cores). The bytes of a
 * ranged read are transferred, not copied, and so are the decoded columns back.
 *
 * The thread's entry is decode-worker.ts under tsx, or parquet-decode.js beside the
 * esbuild bundle (scripts/build.ts). Where neither is found, on one core, or after
 * the thread failed, callers decode inline: the thread only ever saves time.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { PipelineError } from "../../core/errors.ts";
import { type ThreadEntry, threadEntry } from "../../core/thread-entry.ts";
import type { DecodedColumn, DecodeRequest } from "./decode-worker.ts";

let worker: Worker | undefined;
/** The thread has loaded its modules and answers at once. */
let ready = false;
let broken = false;
let idle: NodeJS.Timeout | undefined;
/** An idle thread ends after this long (it never holds a process open: see `thread`). */
const IDLE_MS = 2000;
let nextId = 1;
const pending = new Map<
  number,
  { resolve: (v: Record<string, DecodedColumn>) => void; reject: (e: Error) => void }
>();

/** How to start the thread, or undefined when this build has no entry for it. */
function entry(): ThreadEntry | undefined {
  return threadEntry(import.meta.url, "./decode-worker.ts", "parquet-decode.js");
}

function fail(err: Error): void {
  broken = true;
  ready = false;
  void worker?.terminate();
  worker = undefined;
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function thread(): Worker | undefined {
  if (worker || broken) return worker;
  const file = entry();
  if (!file || availableParallelism() < 2) {
    broken = true;
    return undefined;
  }
  const w = new Worker(file.code, { eval: file.eval });
  w.unref();
  // Ended when idle: a thread left starting or idle must not hold a process open (one
  // loaded through tsx's hooks can, unref'd or not).
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (pending.size === 0 && worker === w) {
        worker = undefined;
        ready = false;
        void w.terminate();
      }
    }, IDLE_MS);
    idle.unref();
  };
  type Message = { id?: number; ready?: true; out?: Record<string, DecodedColumn>; error?: string };
  w.on("message", (msg: Message) => {
    if (msg.ready) {
      if (worker !== w) return;
      ready = true;
      if (pending.size === 0) armIdle(); // started by warming, maybe never asked
      return;
    }
    const p = pending.get(msg.id as number);
    if (!p) return;
    pending.delete(msg.id as number);
    if (msg.error !== undefined || !msg.out) {
      p.reject(new PipelineError("INTERNAL", `Parquet decode thread: ${msg.error}`));
    } else {
      decodeThreadStats.decoded++;
      p.resolve(msg.out);
    }
    if (pending.size === 0) {
      w.unref();
      armIdle();
    }
  });
  w.on("error", (err) => fail(err));
  w.on("exit", (code) => {
    if (worker === w && code !== 0)
      fail(new Error(`Parquet decode thread exited with code ${code}`));
  });
  worker = w;
  return w;
}

/** Requests the decode thread answered in this process (tests and the benchmark). */
export const decodeThreadStats = { decoded: 0 };

/**
 * True when chunks can go to the decode thread now: it is up and loaded. The first
 * call starts it; until it is ready (a few hundred ms) callers decode inline, so the
 * first row group is never kept waiting on the thread's start.
 */
export function decodeThreadAvailable(): boolean {
  return thread() !== undefined && ready;
}

/** Start the decode thread if this process can have one (warming; returns at once). */
export function startDecodeThread(): void {
  thread();
}

/**
 * Decode the chunks of `buffer` (a ranged read, transferred: don't use it
 * afterwards) on the decode thread.
 */
export function decodeOffThread(
  buffer: ArrayBuffer,
  rows: number,
  chunks: DecodeRequest["chunks"],
): Promise<Record<string, DecodedColumn>> {
  const w = thread();
  if (!w) return Promise.reject(new Error("no Parquet decode thread here"));
  const id = nextId++;
  clearTimeout(idle);
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    // Held while a request is out, so a caller awaiting it keeps the process alive.
    w.ref();
    const req: DecodeRequest = { id, buffer, rows, chunks };
    w.postMessage(req, [buffer]);
  });
}
