/**
 * A worker process that takes one message, tells the pool it holds it, then dies
 * (SIGKILL: no hand-back of its own) — for the pool's hand-back test.
 */
import { SqliteTaskQueue } from "../../src/adapters/local/sqlite-task-queue.ts";

const queue = new SqliteTaskQueue({
  path: process.env.QUEUE_DB as string,
  queue: process.env.QUEUE_NAME as string,
  maxDeliveries: 0,
});
const [msg] = await queue.receive({ max: 1, visibilitySeconds: 60, waitSeconds: 5 });
if (!msg) process.exit(2);
process.send?.(
  { type: "claim", claim: { receipt: msg.receipt, jobId: "job-x", partition: 0 } },
  () => process.kill(process.pid, "SIGKILL"),
);
