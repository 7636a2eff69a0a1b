/**
 * Loads a text-embedding model directory in the Hugging Face / optimum export layout:
 * `config.json`, `tokenizer.json` (+ `tokenizer_config.json`), and `model.onnx` or
 * `onnx/model.onnx`. Checks the graph's inputs (input_ids, attention_mask, optional
 * token_type_ids; int64 or int32) and picks its output (sentence_embedding, else
 * last_hidden_state / token_embeddings), resolves the task's defaults against the
 * model, and computes the model's identity: everything that changes a vector.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ModelError } from "../../core/errors.ts";
import { canonicalJson, sha256Hex } from "../../core/ids.ts";
import type { ModelIdentity } from "../../core/records.ts";
import { type OnnxValueSignature, readOnnxSignature } from "./onnx-signature.ts";
import { contentRoom } from "./sequences.ts";
import {
  type BatchingOptions,
  batchingOf,
  parseTextTask,
  type TextSource,
  type TextTaskConfig,
  textSourceOf,
} from "./task-config.ts";
import { loadTokenizer, type TextTokenizer } from "./tokenizer.ts";

/** Integer element types a text model may take its ids in. */
export type IdTensorType = "int64" | "int32";

/** The model's text inputs (names as in the graph). */
export interface TextModelInputs {
  inputIds: string;
  attentionMask: string;
  /** Present when the graph takes token_type_ids. */
  tokenTypeIds?: string;
  /** Element type of the id inputs (all three share it). */
  type: IdTensorType;
}

/** Everything that decides a vector, with defaults resolved against the model. */
export interface TextEmbeddingSettings {
  pooling: "mean" | "cls" | "none";
  normalize: boolean;
  maxLength: number;
  maxChars: number;
  /** Tokens shared by consecutive chunks; undefined = truncate instead of chunking. */
  chunkOverlap: number | undefined;
  text: TextSource;
  idField: string;
}

/** A loaded text-embedding model. */
export interface TextModel {
  name: string;
  version: string;
  dir: string;
  onnxPath: string;
  onnxBytes: Uint8Array;
  inputs: TextModelInputs;
  /** The output used, and whether it is per token ([batch, seq, dim]) or per text ([batch, dim]). */
  output: { name: string; perToken: boolean };
  dimension: number;
  tokenizer: TextTokenizer;
  settings: TextEmbeddingSettings;
  batching: BatchingOptions;
  /** The descriptor's `task` block as validated (defaults filled in). */
  task: TextTaskConfig;
  /**
   * Identity in the pipeline's terms: sha256 = the ONNX file; descriptorSha256 = the
   * tokenizer files, config.json and the settings above (so a job or a refresh sees any
   * change that alters a vector).
   */
  identity: ModelIdentity;
  /** One hash over both halves of `identity`: what a corpus state records. */
  embeddingIdentity: string;
}

async function readBytes(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ModelError(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseJsonObject(bytes: Buffer, file: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString("utf8"));
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Fall through: the message must not quote the file.
  }
  throw new ModelError(`${what} ${file} is not a JSON object`);
}

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  return parseJsonObject(await readBytes(file, what), file, what);
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** `model.onnx` at the top, else `onnx/model.onnx` (the transformers.js layout). */
async function findOnnx(dir: string): Promise<string> {
  for (const candidate of [path.join(dir, "model.onnx"), path.join(dir, "onnx", "model.onnx")]) {
    if (await exists(candidate)) return candidate;
  }
  throw new ModelError(
    `no ONNX model in ${dir}: expected model.onnx or onnx/model.onnx (the layout of an optimum / Hugging Face export)`,
  );
}

function detectInputs(inputs: OnnxValueSignature[], where: string): TextModelInputs {
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const known = new Set(["input_ids", "attention_mask", "token_type_ids"]);
  const unknown = inputs.filter((i) => !known.has(i.name)).map((i) => i.name);
  if (unknown.length > 0) {
    throw new ModelError(
      `${where} takes inputs ${JSON.stringify(unknown)} that text embedding does not feed; it feeds input_ids, attention_mask and token_type_ids`,
    );
  }
  for (const name of ["input_ids", "attention_mask"]) {
    if (!byName.has(name)) {
      throw new ModelError(
        `${where} has no "${name}" input (its inputs are ${JSON.stringify([...byName.keys()])}): export the encoder with input_ids and attention_mask`,
      );
    }
  }
  const types = new Set(inputs.map((i) => i.type));
  const type = [...types][0];
  if (types.size !== 1 || (type !== "int64" && type !== "int32")) {
    throw new ModelError(
      `${where}: text inputs must all be int64 (or all int32), found ${inputs.map((i) => `${i.name}: ${i.type}`).join(", ")}`,
    );
  }
  return {
    inputIds: "input_ids",
    attentionMask: "attention_mask",
    ...(byName.has("token_type_ids") ? { tokenTypeIds: "token_type_ids" } : {}),
    type,
  };
}

function pickOutput(
  outputs: OnnxValueSignature[],
  requested: string | undefined,
  where: string,
): OnnxValueSignature {
  const names = outputs.map((o) => o.name);
  const name =
    requested ??
    ["sentence_embedding", "last_hidden_state", "token_embeddings"].find((n) => names.includes(n));
  const out = outputs.find((o) => o.name === name);
  if (!out) {
    throw new ModelError(
      requested === undefined
        ? `${where} has none of the outputs sentence_embedding, last_hidden_state, token_embeddings (it has ${JSON.stringify(names)}): set task.output`
        : `task.output "${requested}" is not an output of ${where}; its outputs are ${JSON.stringify(names)}`,
    );
  }
  if (out.type !== "float32") {
    throw new ModelError(
      `${where}: output ${out.name} is ${out.type}; text embedding reads float32 outputs`,
    );
  }
  if (out.dims.length !== 2 && out.dims.length !== 3) {
    throw new ModelError(
      `${where}: output ${out.name} has ${out.dims.length} dims; expected [batch, dim] or [batch, sequence, dim]`,
    );
  }
  return out;
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** The task's settings with the model-dependent defaults filled in and checked. */
function resolveSettings(
  task: TextTaskConfig,
  tokenizer: TextTokenizer,
  config: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  output: string,
  perToken: boolean,
): TextEmbeddingSettings {
  const maxPositions = positiveInt(config.max_position_embeddings);
  const modelMax = positiveInt(tokenizerConfig.model_max_length);
  const maxLength =
    task.maxLength ??
    Math.min(modelMax !== undefined && modelMax <= 1_000_000 ? modelMax : 512, maxPositions ?? 512);
  if (maxPositions !== undefined && maxLength > maxPositions) {
    throw new ModelError(
      `task.maxLength ${maxLength} exceeds config.json's max_position_embeddings ${maxPositions}: the model has no positions past that`,
    );
  }
  const room = contentRoom(tokenizer, maxLength);
  if (room < 1) {
    throw new ModelError(
      `task.maxLength ${maxLength} leaves no room for text after the special tokens`,
    );
  }
  const overlap = task.chunking?.overlap;
  if (overlap !== undefined && overlap >= room) {
    throw new ModelError(
      `task.chunking.overlap ${overlap} must be less than the ${room} text tokens a chunk holds (maxLength ${maxLength} minus special tokens)`,
    );
  }
  const pooling: TextEmbeddingSettings["pooling"] = task.pooling ?? (perToken ? "mean" : "none");
  if (!perToken && pooling !== "none") {
    throw new ModelError(
      `output ${output} is already one vector per text, so task.pooling "${pooling}" can't apply: set pooling to "none", or task.output to a per-token output such as last_hidden_state`,
    );
  }
  if (perToken && pooling === "none") {
    throw new ModelError(
      `output ${output} has a vector per token: set task.pooling to "mean" or "cls" (or use the model's sentence_embedding output)`,
    );
  }
  return {
    pooling,
    normalize: task.normalize,
    maxLength,
    maxChars: task.maxChars ?? (overlap === undefined ? 32 * maxLength : 200_000),
    chunkOverlap: overlap,
    text: textSourceOf(task),
    idField: task.idField,
  };
}

/** Where a model comes from: a descriptor file, or a directory with a task block. */
export type TextModelSource =
  | { descriptorPath: string }
  | { dir: string; task: unknown; name?: string; version?: string };

/** Load and check a text-embedding model. Throws ModelError / ValidationError saying what to fix. */
export async function loadTextModel(source: TextModelSource): Promise<TextModel> {
  let task: TextTaskConfig;
  let dir: string;
  let name: string;
  let version: string;
  let descriptorPath: string;
  if ("descriptorPath" in source) {
    descriptorPath = source.descriptorPath;
    const descriptor = await readJson(descriptorPath, "model descriptor");
    for (const [field, max] of [
      ["name", 128],
      ["version", 64],
    ] as const) {
      const v = descriptor[field];
      if (typeof v !== "string" || v === "" || v.length > max) {
        throw new ModelError(
          `model descriptor ${descriptorPath}: "${field}" must be a string of 1 to ${max} characters`,
        );
      }
    }
    task = parseTextTask(descriptor.task);
    dir = path.resolve(path.dirname(descriptorPath), task.modelDir);
    name = descriptor.name as string;
    version = descriptor.version as string;
  } else {
    task = parseTextTask(source.task);
    dir = path.resolve(source.dir, task.modelDir);
    descriptorPath = dir;
    name = source.name ?? path.basename(dir);
    version = source.version ?? "1";
  }
  const onnxPath = await findOnnx(dir);
  const tokenizerPath = path.join(dir, "tokenizer.json");
  const tokenizerConfigPath = path.join(dir, "tokenizer_config.json");
  const hasTokenizerConfig = await exists(tokenizerConfigPath);
  const [config, tokenizerBytes, tokenizerConfig, onnxBytes] = await Promise.all([
    readJson(path.join(dir, "config.json"), "model config"),
    readBytes(tokenizerPath, "tokenizer"),
    hasTokenizerConfig
      ? readJson(tokenizerConfigPath, "tokenizer config")
      : Promise.resolve({} as Record<string, unknown>),
    readBytes(onnxPath, "ONNX model"),
  ]);
  const tokenizerJson = parseJsonObject(tokenizerBytes, tokenizerPath, "tokenizer");
  const signature = readOnnxSignature(onnxBytes, onnxPath);
  if (signature.externalData) {
    throw new ModelError(
      `${onnxPath} keeps its weights in a separate file (ONNX external data): export it as one file (weights under 2 GB)`,
    );
  }
  const inputs = detectInputs(signature.inputs, onnxPath);
  const out = pickOutput(signature.outputs, task.output, onnxPath);
  const perToken = out.dims.length === 3;
  const lastDim = out.dims[out.dims.length - 1];
  const dimension =
    typeof lastDim === "number" && lastDim > 0 ? lastDim : positiveInt(config.hidden_size);
  if (dimension === undefined) {
    throw new ModelError(
      `${onnxPath}: the output's last dim is not fixed and config.json has no hidden_size: can't tell the vector dimension`,
    );
  }
  const tokenizer = await loadTokenizer(
    tokenizerJson,
    tokenizerConfig,
    dir,
    positiveInt(config.pad_token_id),
  );

  const settings = resolveSettings(task, tokenizer, config, tokenizerConfig, out.name, perToken);
  const onnxSha256 = sha256Hex(onnxBytes);
  const { idField: _id, ...vectorSettings } = settings;
  const descriptorSha256 = sha256Hex(
    canonicalJson({
      task: "text-embedding",
      output: out.name,
      settings: vectorSettings,
      tokenizer: sha256Hex(tokenizerBytes),
      tokenizerConfig: sha256Hex(canonicalJson(tokenizerConfig)),
      config: sha256Hex(canonicalJson(config)),
    }),
  );
  return {
    name,
    version,
    dir,
    onnxPath,
    onnxBytes,
    inputs,
    output: { name: out.name, perToken },
    dimension,
    tokenizer,
    settings,
    batching: batchingOf(task),
    task,
    identity: { name, version, descriptor: descriptorPath, sha256: onnxSha256, descriptorSha256 },
    embeddingIdentity: sha256Hex(`${onnxSha256}:${descriptorSha256}`),
  };
}
