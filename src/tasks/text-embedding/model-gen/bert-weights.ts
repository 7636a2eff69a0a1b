/**
 * Deterministic weights for the generated encoder. The token embeddings carry the
 * meaning: every topic has a random direction, and a token is pulled towards the
 * topics of the words it is part of, so a document's mean token vector points at its
 * topic. The layers are random but scaled so the residual stream keeps that signal
 * while attention and the feed-forward block still change every vector noticeably
 * (a mistake in masking or pooling shows up in the tests).
 */
import { Rng } from "../../../model/datasets.ts";
import type { BertLayerWeights, BertShape, BertWeights } from "./bert-graph.ts";

/** How much each topic a token takes part in (rows: tokens, columns: topics). */
export type TokenTopicCounts = Float32Array[];

function gaussian(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

function unitVector(rng: Rng, h: number): Float32Array {
  const v = gaussian(rng, h, 1);
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  for (let i = 0; i < h; i++) v[i] = (v[i] as number) / norm;
  return v;
}

function nearOne(rng: Rng, n: number, std: number): Float32Array {
  const v = gaussian(rng, n, std);
  for (let i = 0; i < n; i++) v[i] = 1 + (v[i] as number);
  return v;
}

/**
 * Token embedding matrix [vocab, hidden]: topic direction × purity (the share of the
 * token's uses in its main topic) plus a token-specific random part.
 */
export function topicTokenEmbeddings(
  counts: TokenTopicCounts,
  topics: number,
  hidden: number,
  rng: Rng,
): Float32Array {
  const centroids = Array.from({ length: topics }, () => unitVector(rng, hidden));
  const out = new Float32Array(counts.length * hidden);
  counts.forEach((c, token) => {
    const noise = unitVector(rng, hidden);
    const row = out.subarray(token * hidden, (token + 1) * hidden);
    let total = 0;
    let top = 0;
    for (const n of c) {
      total += n;
      top = Math.max(top, n);
    }
    const dir = new Float32Array(hidden);
    if (total > 0) {
      for (let t = 0; t < topics; t++) {
        const w = c[t] ?? 0;
        if (w === 0) continue;
        const centroid = centroids[t] as Float32Array;
        for (let i = 0; i < hidden; i++) dir[i] = (dir[i] as number) + w * (centroid[i] as number);
      }
      let norm = 0;
      for (const x of dir) norm += x * x;
      norm = Math.sqrt(norm) || 1;
      const strength = (1.6 * top) / total / norm;
      for (let i = 0; i < hidden; i++) dir[i] = (dir[i] as number) * strength;
    }
    for (let i = 0; i < hidden; i++) row[i] = (dir[i] as number) + 0.6 * (noise[i] as number);
  });
  return out;
}

function layerWeights(rng: Rng, h: number, inter: number): BertLayerWeights {
  const s = 1 / Math.sqrt(h);
  return {
    wq: gaussian(rng, h * h, 1.2 * s),
    bq: gaussian(rng, h, 0.02),
    wk: gaussian(rng, h * h, 1.2 * s),
    bk: gaussian(rng, h, 0.02),
    wv: gaussian(rng, h * h, s),
    bv: gaussian(rng, h, 0.02),
    wo: gaussian(rng, h * h, 0.5 * s),
    bo: gaussian(rng, h, 0.02),
    ln1Scale: nearOne(rng, h, 0.05),
    ln1Bias: gaussian(rng, h, 0.02),
    w1: gaussian(rng, h * inter, s),
    b1: gaussian(rng, inter, 0.02),
    w2: gaussian(rng, inter * h, 0.5 / Math.sqrt(inter)),
    b2: gaussian(rng, h, 0.02),
    ln2Scale: nearOne(rng, h, 0.05),
    ln2Bias: gaussian(rng, h, 0.02),
  };
}

/** All encoder weights for `shape`, from `seed`; token embeddings from topic counts. */
export function bertWeights(
  shape: BertShape,
  counts: TokenTopicCounts,
  topics: number,
  seed: number,
): BertWeights {
  const rng = new Rng(seed);
  const { hidden: h } = shape;
  return {
    wordEmbeddings: topicTokenEmbeddings(counts, topics, h, rng),
    positionEmbeddings: gaussian(rng, shape.maxPositions * h, 0.2 / Math.sqrt(h)),
    tokenTypeEmbeddings: gaussian(rng, shape.typeVocabSize * h, 0.1 / Math.sqrt(h)),
    embLnScale: nearOne(rng, h, 0.05),
    embLnBias: gaussian(rng, h, 0.02),
    layers: Array.from({ length: shape.layers }, () => layerWeights(rng, h, shape.intermediate)),
  };
}
