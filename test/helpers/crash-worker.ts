/**
 * A worker process for test/poison.test.ts: the real PartitionWorker over the
 * embedded stores, started by the real ProcessPool, except that its view of the
 * input bucket SIGKILLs the process the moment the worker reads a record holding
 * CRASH_MARKER — what a segfault in native code on that record would look like:
 * no exception, no cleanup, no hand-back, every time that record comes up.
 *
 * Input is handed to the worker one line per chunk and only as it asks for more,
 * so a worker whose partition ends before the marker's line never reads it.
 */
import type { Readable } from "node:stream";
import { createLogger } from "../../src/core/log.ts";
import { PartitionWorker } from "../../src/pipeline/partition-worker.ts";
import type { ObjectStore } from "../../src/ports/object-store.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";
import { CRASH_MARKER } from "./poison.ts";

const dataDir = process.env.BATCH_INFER_DATA_DIR;
if (!dataDir) throw new Error("BATCH_INFER_DATA_DIR is required");
const marker = Buffer.from(CRASH_MARKER);

/** Yield `source` a line at a time, dying on the line that holds the marker. */
async function* lineByLine(source: Readable): AsyncGenerator<Buffer> {
  let tail: Buffer = Buffer.alloc(0);
  for await (const raw of source) {
    const chunk = raw as Buffer;
    let s = 0;
    while (s < chunk.length) {
      const nl = chunk.indexOf(0x0a, s);
      const piece = chunk.subarray(s, nl < 0 ? chunk.length : nl + 1);
      // The marker may straddle two pieces: look at the end of the previous one too.
      if (Buffer.concat([tail, piece]).includes(marker)) process.kill(process.pid, "SIGKILL");
      tail = piece.subarray(Math.max(0, piece.length - marker.length + 1));
      yield piece;
      s += piece.length;
    }
  }
}

const deps = openLocalPipeline(dataDir, { log: createLogger({ level: "error" }) });
const real = deps.store;
const store: ObjectStore = {
  head: (b, o) => real.head(b, o),
  put: (b, o, body, options) => real.put(b, o, body, options),
  list: (b, options) => real.list(b, options),
  delete: (b, o) => real.delete(b, o),
  async read(b, o, range) {
    const source = await real.read(b, o, range);
    if (b !== "input") return source;
    const lines = lineByLine(source);
    // The worker only iterates and destroys its source; a generator with destroy() is enough.
    return Object.assign(lines, {
      destroy: () => {
        source.destroy();
        void lines.return(undefined);
      },
    }) as unknown as Readable;
  },
};

const worker = new PartitionWorker(
  { ...deps, store },
  {
    workerId: process.env.WORKER_ID ?? `crash-${process.pid}`,
    scorer: { thread: false },
    receiveWaitSeconds: 1,
    onClaim: (claim) => process.send?.({ type: "claim", claim: claim ?? null }),
    onCommit: (p) => {
      process.send?.({
        type: "commit",
        partition: p.index,
        offset: p.offset,
        end: p.end,
        done: p.state === "done",
      });
    },
  },
);
const stop = () => worker.stop();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
await worker.run();
deps.close();
process.exit(0);
