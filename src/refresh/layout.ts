/**
 * Where a corpus refresh keeps its objects, all in the output bucket under one root
 * per corpus (`<prefix>/<corpus key>/`):
 *
 *   head.json                      the corpus head (head.ts): generation, model, what runs
 *   plans/g<N>-<tag>/plan.jsonl    a refresh's decision per document (plan.ts)
 *   plans/g<N>-<tag>/embed.jsonl   the documents to embed, as an object-list manifest
 *   jobs/<jobId>/…                 the embedding job's outputs (a normal job)
 *   v<N>/embeddings.jsonl          generation N's complete embedding set
 *   v<N>/delta.jsonl               what changed since generation N-1 (upserts, deletes)
 *   v<N>/state.jsonl               per document: etag, size, content hash, rows, byte range
 *   v<N>/failed.jsonl              documents that could not be embedded (retried next time)
 *   v<N>/refresh.json              the refresh's summary (counts, model, locations)
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { sha256Hex } from "../core/ids.ts";

/** A corpus: one document per object under a prefix. */
export interface CorpusRef {
  bucket: string;
  prefix: string;
}

/** Object names of one generation. */
export interface GenerationLayout {
  root: string;
  embeddings: string;
  delta: string;
  state: string;
  failed: string;
  summary: string;
}

/** Object names of a corpus's refresh state. */
export interface CorpusLayout {
  bucket: string;
  /** `<prefix>/<key>` (no trailing slash). */
  root: string;
  key: string;
  head: string;
  jobsPrefix: string;
  generation(n: number): GenerationLayout;
  /** A plan's directory (a refresh that loses the race deletes its own). */
  planDir(generation: number, tag: string): string;
}

/** A short stable name for a corpus (its bucket and prefix). */
export function corpusKey(corpus: CorpusRef): string {
  return sha256Hex(`${corpus.bucket}/${corpus.prefix}`).slice(0, 16);
}

/** The layout of `corpus`'s refresh objects in `output`. */
export function corpusLayout(
  corpus: CorpusRef,
  output: { bucket: string; prefix: string },
): CorpusLayout {
  const key = corpusKey(corpus);
  const prefix = output.prefix.replace(/\/+$/, "");
  const root = prefix === "" ? key : `${prefix}/${key}`;
  if (output.bucket === corpus.bucket && `${root}/`.startsWith(corpus.prefix)) {
    throw new InvalidArgumentError(
      `refresh outputs ${output.bucket}/${root}/ are under the corpus prefix ${corpus.bucket}/${corpus.prefix}: the refresh would list (and re-embed) its own outputs; use another output bucket or prefix`,
    );
  }
  return layoutAt(output.bucket, root, key);
}

/** The layout whose head is `bucket/head` (what an embedding job records). */
export function layoutOfHead(bucket: string, head: string): CorpusLayout {
  const root = head.replace(/\/head\.json$/, "");
  return layoutAt(bucket, root, root.slice(root.lastIndexOf("/") + 1));
}

function layoutAt(bucket: string, root: string, key: string): CorpusLayout {
  return {
    bucket,
    root,
    key,
    head: `${root}/head.json`,
    jobsPrefix: `${root}/jobs`,
    generation(n) {
      const g = `${root}/v${n}`;
      return {
        root: g,
        embeddings: `${g}/embeddings.jsonl`,
        delta: `${g}/delta.jsonl`,
        state: `${g}/state.jsonl`,
        failed: `${g}/failed.jsonl`,
        summary: `${g}/refresh.json`,
      };
    },
    planDir: (n, tag) => `${root}/plans/g${n}-${tag}`,
  };
}

/** Code-unit order: what object listings use, so every sorted stream here agrees with them. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
