/**
 * Generates a small deterministic text-embedding model directory (BERT-architecture
 * encoder in ONNX + tokenizer files, Hugging Face export layout) and, optionally, a
 * topical JSON Lines corpus to embed with it:
 *
 *   tsx scripts/gen-text-model.ts --out models/text-demo
 *     [--tokenizer wordpiece|bpe] [--output last_hidden_state|sentence_embedding]
 *     [--hidden 128] [--layers 2] [--heads 4] [--intermediate 512] [--max-positions 512]
 *     [--seed S] [--layout onnx-dir|flat] [--corpus N --corpus-out FILE.jsonl --corpus-seed S]
 *     [--corpus-dir DIR]   (the same documents as one file each: DIR/<id>.txt, for `refresh`)
 *
 * Writes config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx and a
 * descriptor.json (task: text-embedding). Nothing is downloaded.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { finished } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { describeError, InvalidArgumentError } from "../src/core/errors.ts";
import { generateCorpus } from "../src/tasks/text-embedding/model-gen/corpus.ts";
import {
  DEFAULT_TEXT_MODEL,
  writeTextModel,
} from "../src/tasks/text-embedding/model-gen/generate.ts";

function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(
      `--${name} must be a positive integer, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) {
    throw new InvalidArgumentError(
      `--${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Write `count` corpus documents as JSON Lines ({"id","topic","text"}). */
export async function writeCorpusJsonl(file: string, count: number, seed: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const out = createWriteStream(file);
  for (const d of generateCorpus(count, seed)) {
    if (!out.write(`${JSON.stringify({ id: d.id, topic: d.topic, text: d.text })}\n`)) {
      await once(out, "drain");
    }
  }
  out.end();
  await finished(out);
}

/** Runs the CLI with `argv` (without node and script). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      tokenizer: { type: "string" },
      output: { type: "string" },
      hidden: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      intermediate: { type: "string" },
      "max-positions": { type: "string" },
      seed: { type: "string" },
      layout: { type: "string" },
      corpus: { type: "string" },
      "corpus-out": { type: "string" },
      "corpus-seed": { type: "string" },
      "corpus-dir": { type: "string" },
    },
    strict: true,
  });
  if (!values.out) throw new InvalidArgumentError("--out DIR is required");
  const t0 = performance.now();
  const tokenizer = oneOf("tokenizer", values.tokenizer, ["wordpiece", "bpe"] as const);
  const output = oneOf("output", values.output, [
    "last_hidden_state",
    "sentence_embedding",
  ] as const);
  const layout = oneOf("layout", values.layout, ["onnx-dir", "flat"] as const);
  const model = await writeTextModel(path.resolve(values.out), {
    ...(tokenizer ? { tokenizer } : {}),
    ...(output ? { output } : {}),
    ...(layout ? { layout } : {}),
    hidden: intFlag("hidden", values.hidden, DEFAULT_TEXT_MODEL.hidden),
    layers: intFlag("layers", values.layers, DEFAULT_TEXT_MODEL.layers),
    heads: intFlag("heads", values.heads, DEFAULT_TEXT_MODEL.heads),
    intermediate: intFlag("intermediate", values.intermediate, DEFAULT_TEXT_MODEL.intermediate),
    maxPositions: intFlag(
      "max-positions",
      values["max-positions"],
      DEFAULT_TEXT_MODEL.maxPositions,
    ),
    seed: intFlag("seed", values.seed, DEFAULT_TEXT_MODEL.seed),
  });
  const s = model.shape;
  console.error(
    `wrote ${model.dir}: ${model.tokenizer}, vocab ${model.vocabSize}, hidden ${s.hidden}, ${s.layers} layers × ${s.heads} heads, output ${model.output} (${Math.round(performance.now() - t0)} ms)`,
  );
  if (values.corpus !== undefined) {
    const file = path.resolve(values["corpus-out"] ?? path.join(values.out, "corpus.jsonl"));
    const count = intFlag("corpus", values.corpus, 1000);
    const seed = intFlag("corpus-seed", values["corpus-seed"], 7);
    await writeCorpusJsonl(file, count, seed);
    console.error(`wrote ${count} documents to ${file}`);
    if (values["corpus-dir"]) {
      const dir = path.resolve(values["corpus-dir"]);
      await mkdir(dir, { recursive: true });
      for (const d of generateCorpus(count, seed)) {
        await writeFile(path.join(dir, `${d.id}.txt`), d.text);
      }
      console.error(`wrote the same ${count} documents as files under ${dir}`);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(describeError(err));
    process.exitCode = err instanceof InvalidArgumentError ? 2 : 1;
  });
}
