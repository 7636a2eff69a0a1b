import { readFile } from "node:fs/promises";
import path from "node:path";
import { ModelError } from "../core/errors.ts";
import { canonicalJson, sha256Hex, withoutComments } from "../core/ids.ts";
import type { ModelIdentity } from "../core/records.ts";
import { compileValidator } from "../core/schema.ts";
import {
  type LoadedImageModel,
  loadImageModelFrom,
} from "../tasks/image-classification/descriptor.ts";
import {
  type LoadedTextModel,
  loadTextEmbeddingModel,
} from "../tasks/text-embedding/loaded-model.ts";
import descriptorSchema from "./descriptor.schema.json" with { type: "json" };

/** A numeric input column; `missing` is imputed for empty/null values. */
export interface NumberFeature {
  column: string;
  type: "number";
  missing?: number;
}
/** true/false/1/0/yes/no → 1 or 0. */
export interface BooleanFeature {
  column: string;
  type: "boolean";
  missing?: boolean;
}
/** One-hot over `categories`; an unknown value is all zeros or a bad record. */
export interface CategoryFeature {
  column: string;
  type: "category";
  categories: string[];
  unknown?: "zeros" | "error";
}
/** One column's contribution to the feature vector. */
export type Feature = NumberFeature | BooleanFeature | CategoryFeature;

/** A model output mapped to an output column (`index` within the output's last dimension). */
export interface OutputMapping {
  name: string;
  column: string;
  index?: number;
}

/** The model descriptor (src/model/descriptor.schema.json). */
export interface ModelDescriptor {
  name: string;
  version: string;
  onnx: string;
  input: { name: string };
  keyColumns?: string[];
  features: Feature[];
  outputs: OutputMapping[];
  label?: { from: string; threshold: number; column: string; labels: [string, string] };
  metrics?: Record<string, unknown>;
}

/** A tabular descriptor with its ONNX bytes loaded and identity computed. */
export interface TabularModel {
  kind: "tabular";
  descriptor: ModelDescriptor;
  descriptorPath: string;
  onnxPath: string;
  onnxBytes: Uint8Array;
  identity: ModelIdentity;
  /** Width of the feature vector. */
  width: number;
}

/**
 * Any loaded model; `kind` is the task its descriptor's `task` block names (absent =
 * tabular). A new task kind adds its loaded form here and its loader to
 * {@link loadModel}, and its runtime to src/tasks/registry.ts.
 */
export type LoadedModel = TabularModel | LoadedImageModel | LoadedTextModel;

/** The task kinds a descriptor can name. */
export type TaskKind = LoadedModel["kind"];

const validateDescriptor = compileValidator<ModelDescriptor>(
  "model descriptor",
  "INVALID_MODEL",
  descriptorSchema,
);

/** Number of float slots a feature takes in the vector. */
export function featureWidth(f: Feature): number {
  return f.type === "category" ? f.categories.length : 1;
}

/** Validate a parsed descriptor (schema + cross-field rules). */
export function parseDescriptor(raw: unknown): ModelDescriptor {
  const d = validateDescriptor(raw);
  const outputColumns = new Set(d.outputs.map((o) => o.column));
  if (d.label && !outputColumns.has(d.label.from)) {
    throw new ModelError(
      `model descriptor invalid at /label/from: "${d.label.from}" is not one of the output columns ${JSON.stringify([...outputColumns])}`,
    );
  }
  return d;
}

/** The descriptor JSON at `descriptorPath`, parsed (ModelError when unreadable or not JSON). */
export async function readDescriptorJson(descriptorPath: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(descriptorPath, "utf8");
  } catch (err) {
    throw new ModelError(
      `cannot read model descriptor ${descriptorPath}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    // Not the parser's message: it quotes the file's content, which a caller
    // naming an arbitrary file (fn invoke with a spec) must not get back.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new ModelError(
      `model descriptor ${descriptorPath} is not valid JSON${at ? ` (at byte ${at})` : ""}`,
    );
  }
}

/** The task kind a parsed descriptor names (absent `task` = tabular). */
export function taskKindOf(raw: unknown): string {
  const task = (raw as { task?: { kind?: unknown } } | null)?.task;
  return task && typeof task === "object" && typeof task.kind === "string" ? task.kind : "tabular";
}

/**
 * Read a descriptor file and what it names (the ONNX file; an image model's labels),
 * as the task its `task` block says. Throws ModelError with what to fix.
 */
export async function loadModel(descriptorPath: string): Promise<LoadedModel> {
  const raw = await readDescriptorJson(descriptorPath);
  if (taskKindOf(raw) === "image-classification") return loadImageModelFrom(raw, descriptorPath);
  if (taskKindOf(raw) === "text-embedding") return loadTextEmbeddingModel(descriptorPath);
  return loadTabularFrom(raw, descriptorPath);
}

/** Load a descriptor that must be tabular (tools and tests that featurize rows themselves). */
export async function loadTabularModel(descriptorPath: string): Promise<TabularModel> {
  const model = await loadModel(descriptorPath);
  if (model.kind !== "tabular") {
    throw new ModelError(
      `model descriptor ${descriptorPath} is a ${model.kind} model; a tabular one (features and outputs) is needed here`,
    );
  }
  return model;
}

async function loadTabularFrom(raw: unknown, descriptorPath: string): Promise<TabularModel> {
  const descriptor = parseDescriptor(raw);
  const onnxPath = path.resolve(path.dirname(descriptorPath), descriptor.onnx);
  let onnxBytes: Uint8Array;
  try {
    onnxBytes = await readFile(onnxPath);
  } catch (err) {
    throw new ModelError(
      `cannot read ONNX file ${onnxPath} named by ${descriptorPath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return {
    kind: "tabular",
    descriptor,
    descriptorPath,
    onnxPath,
    onnxBytes,
    width: descriptor.features.reduce((n, f) => n + featureWidth(f), 0),
    identity: {
      name: descriptor.name,
      version: descriptor.version,
      descriptor: descriptorPath,
      sha256: sha256Hex(onnxBytes),
      descriptorSha256: sha256Hex(canonicalJson(withoutComments(descriptor))),
    },
  };
}
