/**
 * A text-embedding model as the pipeline's model loader gives it (one member of
 * `LoadedModel`, src/model/descriptor.ts): the model directory loaded and checked,
 * with the identity jobs and manifests record.
 */
import type { ModelIdentity } from "../../core/records.ts";
import { loadTextModel, type TextModel } from "./model-dir.ts";
import type { TextTaskConfig } from "./task-config.ts";

/** A text-embedding model as the pipeline loads it: the model directory plus its identity. */
export interface LoadedTextModel {
  kind: "text-embedding";
  descriptorPath: string;
  /** The descriptor as written: name, version and the `task` block (defaults filled in). */
  descriptor: { name: string; version: string; task: TextTaskConfig };
  onnxPath: string;
  onnxBytes: Uint8Array;
  /** Name, version, the ONNX file's sha256, the settings' hash and the vector dimension. */
  identity: ModelIdentity;
  text: TextModel;
}

/** Load a text-embedding descriptor and its model directory. Throws ModelError saying what to fix. */
export async function loadTextEmbeddingModel(descriptorPath: string): Promise<LoadedTextModel> {
  const text = await loadTextModel({ descriptorPath });
  return {
    kind: "text-embedding",
    descriptorPath,
    descriptor: { name: text.name, version: text.version, task: text.task },
    onnxPath: text.onnxPath,
    onnxBytes: text.onnxBytes,
    identity: { ...text.identity, dimension: text.dimension },
    text,
  };
}
