import path from "node:path";
import { LocalObjectStore } from "../adapters/local/fs-object-store.ts";
import { JsonlEventLog } from "../adapters/local/jsonl-event-sink.ts";
import { SqliteCheckpointStore } from "../adapters/local/sqlite-checkpoint-store.ts";
import { SqliteTaskQueue } from "../adapters/local/sqlite-task-queue.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { loadModel } from "../model/descriptor.ts";
import type { PipelineDeps } from "../pipeline/deps.ts";

/** Where the embedded default keeps its state (all of it under one directory). */
export interface LocalPaths {
  dataDir: string;
  buckets: string;
  queueDb: string;
  checkpointDb: string;
  eventLog: string;
}

/** The embedded default's file layout under `dataDir`. */
export function localPaths(dataDir: string): LocalPaths {
  const dir = path.resolve(dataDir);
  return {
    dataDir: dir,
    buckets: path.join(dir, "buckets"),
    queueDb: path.join(dir, "state", "queue.db"),
    checkpointDb: path.join(dir, "state", "checkpoints.db"),
    eventLog: path.join(dir, "events.jsonl"),
  };
}

/** The local adapters plus the handles the CLI needs beyond the ports. */
export interface LocalPipeline extends PipelineDeps {
  paths: LocalPaths;
  objects: LocalObjectStore;
  eventLog: JsonlEventLog;
  tasks: SqliteTaskQueue;
  close(): void;
}

/** Queue-level dead-letter backstop; partitions are normally failed by the worker's attempt cap first. */
export const LOCAL_MAX_DELIVERIES = 25;

/** Build the embedded pipeline's dependencies over `dataDir`. */
export function openLocalPipeline(
  dataDir: string,
  options: { log?: Logger; now?: () => number } = {},
): LocalPipeline {
  const paths = localPaths(dataDir);
  const objects = new LocalObjectStore({ root: paths.buckets });
  const tasks = new SqliteTaskQueue({
    path: paths.queueDb,
    queue: "partitions",
    maxDeliveries: LOCAL_MAX_DELIVERIES,
  });
  const checkpoints = new SqliteCheckpointStore({ path: paths.checkpointDb });
  const eventLog = new JsonlEventLog({ path: paths.eventLog });
  return {
    paths,
    objects,
    eventLog,
    tasks,
    store: objects,
    queue: tasks,
    checkpoints,
    events: eventLog,
    log: options.log ?? createLogger({ level: "warn" }),
    now: options.now ?? Date.now,
    loadModel,
    close() {
      tasks.close();
      checkpoints.close();
    },
  };
}
