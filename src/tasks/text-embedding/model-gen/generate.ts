/**
 * Writes a small, deterministic text-embedding model directory in the layout an
 * optimum / Hugging Face ONNX export has: `config.json`, `tokenizer.json`,
 * `tokenizer_config.json`, `onnx/model.onnx` (or `model.onnx` at the top), plus a
 * pipeline `descriptor.json` whose `task` block selects text embedding.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { encodeOnnxModel } from "../../../model/onnx-writer.ts";
import { type BertOutput, type BertShape, buildBertGraph } from "./bert-graph.ts";
import { bertWeights, type TokenTopicCounts } from "./bert-weights.ts";
import {
  bpeTokenizerConfig,
  bpeTokenizerJson,
  bpeVocabulary,
  learnMerges,
} from "./bpe-tokenizer.ts";
import { TOPIC_WORDS, TOPICS } from "./word-lists.ts";
import {
  wordPieceTokenizerConfig,
  wordPieceTokenizerJson,
  wordPieceVocabulary,
} from "./wordpiece-tokenizer.ts";

/** What to generate. */
export interface TextModelOptions {
  /** WordPiece (BERT uncased) or byte-level BPE (RoBERTa-style, no token_type_ids). */
  tokenizer?: "wordpiece" | "bpe";
  /** Graph output (default last_hidden_state). */
  output?: BertOutput;
  hidden?: number;
  layers?: number;
  heads?: number;
  intermediate?: number;
  /** Position embeddings and the tokenizer's model_max_length (default 512). */
  maxPositions?: number;
  seed?: number;
  /** `onnx/model.onnx` (default, what transformers.js expects) or `model.onnx` at the top. */
  layout?: "onnx-dir" | "flat";
  /** BPE merges to learn (default 1500). */
  merges?: number;
  /** Name written into config.json and the descriptor. */
  name?: string;
}

/** What was written. */
export interface GeneratedTextModel {
  dir: string;
  onnxPath: string;
  shape: BertShape;
  output: BertOutput;
  tokenizer: "wordpiece" | "bpe";
  vocabSize: number;
}

/** Defaults: small enough for tests on two shared cores, big enough to mean something. */
export const DEFAULT_TEXT_MODEL = {
  hidden: 128,
  layers: 2,
  heads: 4,
  intermediate: 512,
  maxPositions: 512,
  seed: 20240611,
} as const;

/**
 * Count, for each token, how often it appears in each topic's words as the tokenizer
 * splits them (several surface forms per word, so BPE pieces get their share).
 */
function tokenTopicCounts(
  tokenizer: Tokenizer,
  vocabSize: number,
  forms: (word: string) => string[],
): TokenTopicCounts {
  const counts = Array.from({ length: vocabSize }, () => new Float32Array(TOPICS.length));
  TOPICS.forEach((topic, t) => {
    for (const word of TOPIC_WORDS[topic] ?? []) {
      for (const form of forms(word)) {
        const ids = tokenizer.encode(form, { add_special_tokens: false }).ids;
        for (const id of ids) {
          const row = counts[id] as Float32Array;
          row[t] = (row[t] as number) + 1 / ids.length;
        }
      }
    }
  });
  return counts;
}

const capital = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);

/** Generate the model directory `dir` (created if missing; files overwritten). */
export async function writeTextModel(
  dir: string,
  options: TextModelOptions = {},
): Promise<GeneratedTextModel> {
  const kind = options.tokenizer ?? "wordpiece";
  const output = options.output ?? "last_hidden_state";
  const maxPositions = options.maxPositions ?? DEFAULT_TEXT_MODEL.maxPositions;
  let tokenizerJson: Record<string, unknown>;
  let tokenizerConfig: Record<string, unknown>;
  let vocabSize: number;
  let forms: (word: string) => string[];
  if (kind === "wordpiece") {
    const vocab = wordPieceVocabulary();
    tokenizerJson = wordPieceTokenizerJson(vocab);
    tokenizerConfig = wordPieceTokenizerConfig(maxPositions);
    vocabSize = vocab.length;
    forms = (w) => [w];
  } else {
    const merges = learnMerges(options.merges ?? 1500);
    const vocab = bpeVocabulary(merges);
    tokenizerJson = bpeTokenizerJson(vocab, merges);
    tokenizerConfig = bpeTokenizerConfig(maxPositions);
    vocabSize = vocab.length;
    forms = (w) => [` ${w}`, ` ${capital(w)}`, ` ${w}s`, w];
  }
  const shape: BertShape = {
    vocabSize,
    hidden: options.hidden ?? DEFAULT_TEXT_MODEL.hidden,
    layers: options.layers ?? DEFAULT_TEXT_MODEL.layers,
    heads: options.heads ?? DEFAULT_TEXT_MODEL.heads,
    intermediate: options.intermediate ?? DEFAULT_TEXT_MODEL.intermediate,
    maxPositions,
    typeVocabSize: kind === "wordpiece" ? 2 : 0,
  };
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  const counts = tokenTopicCounts(tokenizer, vocabSize, forms);
  const weights = bertWeights(
    shape,
    counts,
    TOPICS.length,
    options.seed ?? DEFAULT_TEXT_MODEL.seed,
  );
  const name = options.name ?? `demo-${kind}-encoder`;
  const onnx = encodeOnnxModel({
    ...buildBertGraph(shape, weights, output, name),
    docString: `Generated ${kind} text encoder (seed ${options.seed ?? DEFAULT_TEXT_MODEL.seed})`,
  });
  const config = {
    _name_or_path: name,
    architectures: [kind === "wordpiece" ? "BertModel" : "RobertaModel"],
    model_type: kind === "wordpiece" ? "bert" : "roberta",
    vocab_size: vocabSize,
    hidden_size: shape.hidden,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    intermediate_size: shape.intermediate,
    hidden_act: "gelu",
    max_position_embeddings: maxPositions,
    type_vocab_size: Math.max(shape.typeVocabSize, 1),
    layer_norm_eps: 1e-12,
    pad_token_id: kind === "wordpiece" ? 0 : 1,
    torch_dtype: "float32",
  };
  const onnxPath =
    options.layout === "flat" ? path.join(dir, "model.onnx") : path.join(dir, "onnx", "model.onnx");
  await mkdir(path.dirname(onnxPath), { recursive: true });
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  await Promise.all([
    writeFile(onnxPath, onnx),
    writeFile(path.join(dir, "config.json"), json(config)),
    writeFile(path.join(dir, "tokenizer.json"), json(tokenizerJson)),
    writeFile(path.join(dir, "tokenizer_config.json"), json(tokenizerConfig)),
    writeFile(
      path.join(dir, "descriptor.json"),
      json({
        name,
        version: "1",
        task: {
          kind: "text-embedding",
          modelDir: ".",
          idField: "id",
          text: { field: "text" },
          pooling: output === "sentence_embedding" ? "none" : "mean",
          normalize: true,
        },
      }),
    ),
  ]);
  return { dir, onnxPath, shape, output, tokenizer: kind, vocabSize };
}
