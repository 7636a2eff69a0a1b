import type { Logger } from "../core/log.ts";
import type { LoadedModel } from "../model/descriptor.ts";
import type { CheckpointStore } from "../ports/checkpoint-store.ts";
import type { EventSink } from "../ports/event-sink.ts";
import type { ObjectStore } from "../ports/object-store.ts";
import type { TaskQueue } from "../ports/task-queue.ts";

/** The stores every pipeline step works through (injected: local or OCI adapters). */
export interface PipelineStores {
  store: ObjectStore;
  queue: TaskQueue;
  checkpoints: CheckpointStore;
  events: EventSink;
}

/** Dependencies shared by splitter, worker and merger. */
export interface PipelineDeps extends PipelineStores {
  log: Logger;
  /** Epoch ms; injectable for tests. */
  now(): number;
  /** Load a model descriptor (and its ONNX bytes) by location. */
  loadModel(descriptor: string): Promise<LoadedModel>;
}
