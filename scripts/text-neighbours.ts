/**
 * Something a person can judge: for a few documents, their nearest neighbours by
 * cosine in an embeddings file (a job's predictions.jsonl or a refresh's
 * embeddings.jsonl), with each document's topic and first words from the corpus the
 * generator wrote. Documents of one topic should find each other.
 *
 *   tsx scripts/text-neighbours.ts --embeddings results/text/predictions.jsonl \
 *     --corpus models/text-demo/corpus.jsonl [--docs 3] [--k 5]
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { type EmbeddingRow, nearestNeighbours } from "../src/tasks/text-embedding/collect-rows.ts";

const { values } = parseArgs({
  options: {
    embeddings: { type: "string" },
    corpus: { type: "string" },
    docs: { type: "string", default: "3" },
    k: { type: "string", default: "5" },
  },
  strict: true,
});
if (!values.embeddings || !values.corpus) {
  console.error(
    "usage: text-neighbours --embeddings FILE.jsonl --corpus CORPUS.jsonl [--docs 3] [--k 5]",
  );
  process.exit(2);
}
const corpus = new Map<string, { topic: string; text: string }>();
for (const line of (await readFile(values.corpus, "utf8")).split("\n")) {
  if (!line) continue;
  const d = JSON.parse(line) as { id: string; topic: string; text: string };
  corpus.set(d.id, d);
}
const rows: EmbeddingRow[] = [];
for (const line of (await readFile(values.embeddings, "utf8")).split("\n")) {
  if (!line) continue;
  const r = JSON.parse(line) as { id: string; chunk?: number; embedding: number[] };
  // Chunked output: the first chunk stands for its document.
  if (r.chunk === undefined || r.chunk === 0)
    rows.push({ id: r.id, vector: Float32Array.from(r.embedding) });
}
/** A document id as the corpus names it (an object's id is its path: `…/doc-000001.txt`). */
const docOf = (id: string) => corpus.get(id) ?? corpus.get(path.basename(id, path.extname(id)));
const show = (id: string) => {
  const d = docOf(id);
  return `${id} [${d?.topic ?? "?"}] ${JSON.stringify((d?.text ?? "").slice(0, 60))}`;
};
const docs = Math.min(Number(values.docs), rows.length);
let sameTopic = 0;
let total = 0;
for (let q = 0; q < docs; q++) {
  const query = Math.floor((q * rows.length) / docs);
  console.log(show(rows[query]?.id ?? ""));
  const topic = docOf(rows[query]?.id ?? "")?.topic;
  for (const n of nearestNeighbours(rows, query, Number(values.k))) {
    const id = rows[n.index]?.id ?? "";
    console.log(`   ${n.cosine.toFixed(3)}  ${show(id)}`);
    total++;
    if (docOf(id)?.topic === topic) sameTopic++;
  }
}
console.log(`${sameTopic} of ${total} neighbours share their document's topic`);
