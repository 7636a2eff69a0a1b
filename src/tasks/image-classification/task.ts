/**
 * Image classification as a task of the worker's seam: what the worker loop needs
 * from a loaded image model (encoder per attempt, decoder, output columns, default
 * checkpoint interval).
 */
import type { OutputColumn, TaskDecoder, TaskEncoder } from "../task.ts";
import { ImageDecoder, imageOutputColumns } from "./decoder.ts";
import type { LoadedImageModel } from "./descriptor.ts";
import { ImageEncoder, type ImageEncoderOptions, type ImageWindowMeta } from "./encoder.ts";

/**
 * Images per checkpoint (and per part object) unless the job says otherwise. Rows'
 * 50,000 would be minutes of decoding and inference per chunk on CPU; 256 images
 * are a second or two on the shapes model and ~30 s on a ResNet-50-sized one, so a
 * killed worker loses little and a part stays a few KB to a few MB.
 */
export const IMAGE_CHECKPOINT_EVERY = 256;

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
