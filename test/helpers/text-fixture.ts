import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ObjectStore } from "../../src/ports/object-store.ts";
import { generateCorpus } from "../../src/tasks/text-embedding/model-gen/corpus.ts";
import { writeTextModel } from "../../src/tasks/text-embedding/model-gen/generate.ts";

/**
 * A generated text-embedding model directory with its descriptor; `task` fields are
 * merged into the descriptor's task block (chunking, maxLength, a template …).
 */
export async function textModel(dir: string, task: Record<string, unknown> = {}): Promise<string> {
  await writeTextModel(dir);
  const descriptor = path.join(dir, "descriptor.json");
  const d = JSON.parse(await readFile(descriptor, "utf8")) as { task: Record<string, unknown> };
  d.task = { ...d.task, ...task };
  await writeFile(descriptor, `${JSON.stringify(d, null, 2)}\n`);
  return descriptor;
}

/** `count` topical documents (`doc-000000` …) as name → text. */
export function corpusTexts(count: number, seed = 7): Map<string, string> {
  return new Map(generateCorpus(count, seed).map((d) => [d.id, d.text]));
}

/** Put each document as an object `prefix + name + ".txt"`. */
export async function putCorpus(
  store: ObjectStore,
  bucket: string,
  prefix: string,
  docs: Map<string, string>,
): Promise<void> {
  for (const [name, text] of docs) await store.put(bucket, `${prefix}${name}.txt`, text);
}

/** An embedding row as the pipeline writes it. */
export interface Row {
  id: string;
  chunk?: number;
  embedding: number[];
  sha256?: string;
}

/** Parse JSON Lines text. */
export function jsonRows<T = Row>(text: string): T[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/** Cosine similarity of two vectors. */
export function cos(a: number[], b: number[] | Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}
