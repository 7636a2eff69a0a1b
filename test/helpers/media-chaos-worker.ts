/**
 * A worker process for test/media-chaos.test.ts: the real PartitionWorker over the
 * embedded stores, started by the real ProcessPool, that signals itself at chosen
 * moments of chosen partitions — deterministic whatever the machine's load, because
 * the moment is a state of the work, not a time. MEDIA_CHAOS is JSON: partition
 * index → "kill-at-commit" (SIGKILL right after its first checkpoint commit),
 * "kill-after-commit" (SIGKILL a turn of the event loop later: mid-chunk, with
 * images decoded and batches on the inference thread) or "term" (SIGTERM: checkpoint
 * and hand back). Each fires on the partition's first attempt only.
 */
import { createLogger } from "../../src/core/log.ts";
import { PartitionWorker } from "../../src/pipeline/partition-worker.ts";
import { openLocalPipeline } from "../../src/runner/local-stores.ts";

const dataDir = process.env.BATCH_INFER_DATA_DIR;
if (!dataDir) throw new Error("BATCH_INFER_DATA_DIR is required");
const plan = JSON.parse(process.env.MEDIA_CHAOS ?? "{}") as Record<string, string>;

const deps = openLocalPipeline(dataDir, { log: createLogger({ level: "error" }) });
const worker = new PartitionWorker(deps, {
  workerId: process.env.WORKER_ID ?? `media-chaos-${process.pid}`,
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
    const action = plan[String(p.index)];
    if (!action || p.state === "done" || p.attempts.length !== 1 || p.parts.length !== 1) return;
    if (action === "kill-at-commit") process.kill(process.pid, "SIGKILL");
    else if (action === "kill-after-commit")
      setImmediate(() => process.kill(process.pid, "SIGKILL"));
    else if (action === "term") process.kill(process.pid, "SIGTERM");
  },
});
const stop = () => worker.stop();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
await worker.run();
deps.close();
process.exit(0);
