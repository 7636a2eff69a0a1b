/**
 * Image classification as a task of the worker's seam: what the worker loop needs
 * from a loaded image model (encoder per attempt, decoder, output columns, default
 * checkpoint interval).
 */
import type { OutputColumn, TaskDecoder, TaskEncoder } from "../task.ts";
import { ImageDecoder, imageOutputColumns } from "./decoder.ts";
import { IMAGE_CHECKPOINT_EVERY } from "./defaults.ts";
import type { LoadedImageModel } from "./descriptor.ts";
import { ImageEncoder, type ImageEncoderOptions, type ImageWindowMeta } from "./encoder.ts";

export { IMAGE_CHECKPOINT_EVERY } from "./defaults.ts";

/** The image task for one loaded model. */
export interface ImageClassificationTask {
  kind: "image-classification";
  outputColumns: OutputColumn[];
  checkpointEvery: number;
  /** A fresh encoder per partition attempt. */
  newEncoder(): TaskEncoder<ImageWindowMeta>;
  decoder: TaskDecoder<ImageWindowMeta>;
}

/** Build the task; `options` tune batching and decode concurrency. */
export function createImageTask(
  model: LoadedImageModel,
  options: ImageEncoderOptions = {},
): ImageClassificationTask {
  const block = model.descriptor.task;
  return {
    kind: "image-classification",
    outputColumns: imageOutputColumns(block),
    checkpointEvery: IMAGE_CHECKPOINT_EVERY,
    newEncoder: () => new ImageEncoder(block.input, block.preprocess, options),
    decoder: new ImageDecoder(block, model.labels),
  };
}
