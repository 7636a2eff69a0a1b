/**
 * A worker process for test/poison.test.ts: the real PartitionWorker over the
 * embedded stores, started by the real ProcessPool, except that its task SIGKILLs
 * the process the moment it is handed a record holding CRASH_MARKER — what a
 * segfault in native code on that record would look like: no exception, no cleanup,
 * no hand-back, every time that record is scored. (Reading the bytes is harmless: the
 * finalize step scans a failed partition's bytes for the CSV chaining check.)
 */
import { createLogger } from "../../src/core/log.ts";
import { PartitionWorker } from "../../src/pipeline/partition-worker.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";
import type { RecordBlock } from "../../src/sources/record-source.ts";
import type { TaskRuntime } from "../../src/tasks/task.ts";
import { CRASH_MARKER } from "./poison.ts";

const dataDir = process.env.BATCH_INFER_DATA_DIR;
if (!dataDir) throw new Error("BATCH_INFER_DATA_DIR is required");
const marker = Buffer.from(CRASH_MARKER);

function holdsMarker(block: RecordBlock, i: number): boolean {
  if (block.kind !== "lines") return false;
  const l = block.lines;
  const s = l.starts[i] as number;
  return s >= 0 && l.buf.subarray(s, l.ends[i] as number).includes(marker);
}

/** The runtime with an encoder that dies on the marker record. */
function crashing(rt: TaskRuntime): TaskRuntime {
  return {
    ...rt,
    encoder() {
      const inner = rt.encoder();
      return {
        add(block: RecordBlock, i: number) {
          if (holdsMarker(block, i)) process.kill(process.pid, "SIGKILL");
          return inner.add(block, i);
        },
        take: (flush: boolean) => inner.take(flush),
      };
    },
  };
}

const deps = openLocalPipeline(dataDir, { log: createLogger({ level: "error" }) });
const worker = new PartitionWorker(deps, {
  workerId: process.env.WORKER_ID ?? `crash-${process.pid}`,
  scorer: { thread: false },
  receiveWaitSeconds: 1,
  instrumentRuntime: crashing,
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
});
const stop = () => worker.stop();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
await worker.run();
deps.close();
process.exit(0);
