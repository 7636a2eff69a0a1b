/**
 * The image-classification model descriptor (the `task` block of
 * src/model/descriptor.schema.json, kind "image-classification") and its loader: the
 * ONNX bytes, the labels (a file or inline), and an identity that covers both plus
 * the preprocessing (they change the outputs as much as weights).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ModelError } from "../../core/errors.ts";
import { canonicalJson, sha256Hex, withoutComments } from "../../core/ids.ts";
import type { ModelIdentity } from "../../core/records.ts";
import { compileValidator } from "../../core/schema.ts";
import schema from "../../model/descriptor.schema.json" with { type: "json" };

/** Accepted input formats (recognised by magic bytes, never by name). */
export type ImageFormat = "jpeg" | "png" | "webp" | "gif" | "tiff" | "avif";

/** How an image becomes a tensor. Defaults are filled in by validation. */
export interface ImagePreprocess {
  width: number;
  height: number;
  resize: "crop" | "letterbox" | "stretch";
  shorterSide?: number;
  padColor?: [number, number, number];
  kernel: "nearest" | "linear" | "cubic" | "mitchell" | "lanczos2" | "lanczos3";
  channels: "rgb" | "bgr" | "gray";
  layout: "nchw" | "nhwc";
  dtype: "float32" | "uint8";
  scale?: number;
  mean?: number[];
  std?: number[];
  maxInputPixels: number;
  formats?: ImageFormat[];
}

/** The `task` block of an image model. */
export interface ImageTaskBlock {
  kind: "image-classification";
  input: string;
  output: string;
  scores: "softmax" | "sigmoid" | "none";
  /** A labels file relative to the descriptor, or the labels inline. */
  labels: string | string[];
  topK: number;
  includeLogits: boolean;
  preprocess: ImagePreprocess;
}

/** A descriptor whose task is image classification. */
export interface ImageModelDescriptor {
  name: string;
  version: string;
  onnx: string;
  task: ImageTaskBlock;
  metrics?: Record<string, unknown>;
}

/** A loaded image model: descriptor, ONNX bytes, labels and identity. */
export interface LoadedImageModel {
  kind: "image-classification";
  descriptor: ImageModelDescriptor;
  descriptorPath: string;
  onnxPath: string;
  onnxBytes: Uint8Array;
  labels: string[];
  identity: ModelIdentity;
}

export const DEFAULT_FORMATS: readonly ImageFormat[] = ["jpeg", "png", "webp", "gif", "tiff"];

const validate = compileValidator<ImageModelDescriptor>(
  "image model descriptor",
  "INVALID_MODEL",
  schema,
);

/** Schema validation plus the rules a schema can't say, each with the fix. */
export function parseImageDescriptor(raw: unknown): ImageModelDescriptor {
  const d = validate(raw);
  if (d.task?.kind !== "image-classification") {
    throw new ModelError(
      'image model descriptor invalid at /task: needs a task block with kind "image-classification"',
    );
  }
  const p = d.task.preprocess;
  const channels = p.channels === "gray" ? 1 : 3;
  if (p.dtype === "uint8" && (p.mean || p.std || p.scale !== undefined)) {
    throw new ModelError(
      "image model descriptor invalid at /task/preprocess: a uint8 input takes raw 0-255 pixels; remove mean/std/scale and normalise inside the model, or use dtype float32",
    );
  }
  for (const key of ["mean", "std"] as const) {
    const v = p[key];
    if (v && v.length !== channels) {
      throw new ModelError(
        `image model descriptor invalid at /task/preprocess/${key}: ${v.length} values for ${channels} channel(s) (channels "${p.channels}")`,
      );
    }
  }
  if (p.shorterSide !== undefined) {
    if (p.resize !== "crop") {
      throw new ModelError(
        `image model descriptor invalid at /task/preprocess/shorterSide: only resize "crop" uses it (resize is "${p.resize}")`,
      );
    }
    if (p.shorterSide < Math.max(p.width, p.height)) {
      throw new ModelError(
        `image model descriptor invalid at /task/preprocess/shorterSide: ${p.shorterSide} is smaller than the ${p.width}x${p.height} crop`,
      );
    }
  }
  if (p.padColor && p.resize !== "letterbox") {
    throw new ModelError(
      `image model descriptor invalid at /task/preprocess/padColor: only resize "letterbox" pads (resize is "${p.resize}")`,
    );
  }
  return d;
}

/** Parse a labels file: a JSON array of strings, or one label per line. */
export function parseLabels(text: string, file: string): string[] {
  let labels: string[];
  if (file.endsWith(".json")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ModelError(`labels file ${file} is not valid JSON`);
    }
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      throw new ModelError(`labels file ${file} must hold a JSON array of strings`);
    }
    labels = value;
  } else {
    labels = text.replace(/\r?\n$/, "").split(/\r?\n/);
  }
  const blank = labels.findIndex((l) => l.trim() === "");
  if (labels.length === 0 || blank >= 0) {
    throw new ModelError(
      `labels file ${file}: ${labels.length === 0 ? "no labels" : `label ${blank} (line ${blank + 1}) is empty`}; one label per class, line i naming class i`,
    );
  }
  return labels;
}

async function readOrExplain(file: string, what: string, by: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ModelError(`cannot read ${what} ${file} named by ${by}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Read an image model's descriptor, ONNX file and labels. Throws ModelError saying what to fix. */
export async function loadImageModel(descriptorPath: string): Promise<LoadedImageModel> {
  const text = (await readOrExplain(descriptorPath, "model descriptor", "the job")).toString(
    "utf8",
  );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ModelError(`model descriptor ${descriptorPath} is not valid JSON`);
  }
  return loadImageModelFrom(raw, descriptorPath);
}

/** Load an image model from its parsed descriptor JSON (read from `descriptorPath`). */
export async function loadImageModelFrom(
  raw: unknown,
  descriptorPath: string,
): Promise<LoadedImageModel> {
  const descriptor = parseImageDescriptor(raw);
  const dir = path.dirname(descriptorPath);
  const onnxPath = path.resolve(dir, descriptor.onnx);
  const onnxBytes = await readOrExplain(onnxPath, "ONNX file", descriptorPath);
  const named = descriptor.task.labels;
  let labels: string[];
  let labelsWhere: string;
  if (typeof named === "string") {
    labelsWhere = path.resolve(dir, named);
    const text = (await readOrExplain(labelsWhere, "labels file", descriptorPath)).toString("utf8");
    labels = parseLabels(text, labelsWhere);
  } else {
    labelsWhere = `the labels inline in ${descriptorPath}`;
    labels = parseLabels(JSON.stringify(named), `${descriptorPath}#/task/labels.json`);
  }
  if (descriptor.task.topK > labels.length) {
    throw new ModelError(
      `image model descriptor invalid at /task/topK: ${descriptor.task.topK} is more than the ${labels.length} labels in ${labelsWhere}`,
    );
  }
  return {
    kind: "image-classification",
    descriptor,
    descriptorPath,
    onnxPath,
    onnxBytes,
    labels,
    identity: {
      name: descriptor.name,
      version: descriptor.version,
      descriptor: descriptorPath,
      sha256: sha256Hex(onnxBytes),
      // The labels name the outputs: a relabelled model is a different model.
      descriptorSha256: sha256Hex(
        canonicalJson({ descriptor: withoutComments(descriptor), labels }),
      ),
    },
  };
}
