export type { CheckpointStore, Versioned } from "./checkpoint-store.ts";
export type { EventLog, EventSink, PipelineEvent } from "./event-sink.ts";
export type { ByteRange, ObjectInfo, ObjectPage, ObjectStore, PutOptions } from "./object-store.ts";
export type { ReplicaTarget } from "./replica-target.ts";
export type { QueueMessage, QueueStats, ReceiveOptions, TaskQueue } from "./task-queue.ts";
