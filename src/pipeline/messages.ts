import taskMessageSchema from "../../events/schemas/task-message.schema.json" with { type: "json" };
import { compileValidator } from "../core/schema.ts";

/** Score partition `partition` of job `jobId`. */
export interface PartitionTask {
  kind: "partition";
  jobId: string;
  partition: number;
}
/** All partitions of `jobId` are terminal: merge its outputs. */
export interface MergeTask {
  kind: "merge";
  jobId: string;
}
/** A message body on the partition queue. */
export type Task = PartitionTask | MergeTask;

/** Queue channel for each task kind (OCI Queue channels; a column locally). */
export const CHANNELS = { partition: "partitions", merge: "merge" } as const;

const validateTask = compileValidator<Task>("task message", "INVALID_EVENT", taskMessageSchema);

/** Parse and validate a queue message body. */
export function parseTask(body: string): Task {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return validateTask(undefined);
  }
  return validateTask(raw);
}

/** Serialize a task for the queue. */
export function taskMessage(task: Task): { body: string; channel: string } {
  return { body: JSON.stringify(task), channel: CHANNELS[task.kind] };
}
