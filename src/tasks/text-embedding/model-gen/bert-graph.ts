/**
 * A BERT-architecture encoder as an ONNX graph (opset 17): word + position (+ token
 * type) embeddings, LayerNorm, post-LN layers of multi-head self-attention with the
 * attention mask and a GELU feed-forward block. Outputs `last_hidden_state`, or
 * `sentence_embedding` (masked mean, L2-normalised inside the graph) like a
 * sentence-transformers export.
 */
import type { OnnxGraphSpec, OnnxNode, OnnxTensor } from "../../../model/onnx-writer.ts";

/** Shape of the encoder. */
export interface BertShape {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  /** 0: the graph has no `token_type_ids` input (RoBERTa-style). */
  typeVocabSize: number;
}

/** One encoder layer's weights (matrices row-major [in, out], as MatMul takes them). */
export interface BertLayerWeights {
  wq: Float32Array;
  bq: Float32Array;
  wk: Float32Array;
  bk: Float32Array;
  wv: Float32Array;
  bv: Float32Array;
  wo: Float32Array;
  bo: Float32Array;
  ln1Scale: Float32Array;
  ln1Bias: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  ln2Scale: Float32Array;
  ln2Bias: Float32Array;
}

/** All weights of the encoder. */
export interface BertWeights {
  wordEmbeddings: Float32Array;
  positionEmbeddings: Float32Array;
  /** Empty when typeVocabSize is 0. */
  tokenTypeEmbeddings: Float32Array;
  embLnScale: Float32Array;
  embLnBias: Float32Array;
  layers: BertLayerWeights[];
}

/** Which output the graph ends in. */
export type BertOutput = "last_hidden_state" | "sentence_embedding";

const LN_EPSILON = 1e-12;
// A masked key gets this added to its score: exp underflows to exactly 0 in float32, so
// padding changes nothing (what makes batched and single runs agree).
const MASKED_SCORE = -10000;

function scalar(name: string, value: number): OnnxTensor {
  return { name, dims: [], data: Float32Array.of(value) };
}

function int64s(name: string, values: number[], dims = [values.length]): OnnxTensor {
  return { name, dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) };
}

/** Build the graph spec for `shape` with `weights`. */
export function buildBertGraph(
  shape: BertShape,
  weights: BertWeights,
  output: BertOutput,
  name = "text-encoder",
): OnnxGraphSpec {
  const { hidden: h, heads, intermediate, vocabSize, maxPositions, typeVocabSize } = shape;
  if (h % heads !== 0) throw new RangeError(`hidden ${h} is not a multiple of heads ${heads}`);
  const headDim = h / heads;
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [
    { name: "word_embeddings", dims: [vocabSize, h], data: weights.wordEmbeddings },
    { name: "position_embeddings", dims: [maxPositions, h], data: weights.positionEmbeddings },
    { name: "emb_ln_scale", dims: [h], data: weights.embLnScale },
    { name: "emb_ln_bias", dims: [h], data: weights.embLnBias },
    scalar("one", 1),
    scalar("half", 0.5),
    scalar("inv_sqrt2", Math.SQRT1_2),
    scalar("masked_score", MASKED_SCORE),
    scalar("attn_scale", 1 / Math.sqrt(headDim)),
    int64s("seq_axis", [1], []),
    int64s("pos_start", [0], []),
    int64s("pos_step", [1], []),
    int64s("mask_axes", [1, 2]),
    int64s("split_heads", [0, 0, heads, headDim]),
    int64s("merge_heads", [0, 0, h]),
  ];
  const node = (
    opType: string,
    inputs: string[],
    out: string,
    attributes?: OnnxNode["attributes"],
  ) => {
    nodes.push({
      opType,
      inputs,
      outputs: [out],
      name: out,
      ...(attributes ? { attributes } : {}),
    });
    return out;
  };
  const layerNorm = (x: string, scale: string, bias: string, out: string) =>
    node("LayerNormalization", [x, scale, bias], out, {
      axis: { i: -1 },
      epsilon: { f: LN_EPSILON },
    });
  const dense = (x: string, w: string, b: string, out: string) =>
    node("Add", [node("MatMul", [x, w], `${out}_mm`), b], out);

  // Embeddings.
  let emb = node("Gather", ["word_embeddings", "input_ids"], "word_emb");
  const seqLen = node("Gather", [node("Shape", ["input_ids"], "ids_shape"), "seq_axis"], "seq_len");
  const positions = node("Range", ["pos_start", seqLen, "pos_step"], "position_ids");
  emb = node("Add", [emb, node("Gather", ["position_embeddings", positions], "pos_emb")], "emb_wp");
  if (typeVocabSize > 0) {
    inits.push({
      name: "token_type_embeddings",
      dims: [typeVocabSize, h],
      data: weights.tokenTypeEmbeddings,
    });
    const tt = node("Gather", ["token_type_embeddings", "token_type_ids"], "type_emb");
    emb = node("Add", [emb, tt], "emb_wpt");
  }
  let x = layerNorm(emb, "emb_ln_scale", "emb_ln_bias", "emb_out");

  // Additive attention bias [B,1,1,S]: 0 where attended, MASKED_SCORE where padded.
  const maskF = node("Cast", ["attention_mask"], "mask_f", { to: { i: 1 } });
  const mask4 = node("Unsqueeze", [maskF, "mask_axes"], "mask_4d");
  const attnBias = node(
    "Mul",
    [node("Sub", ["one", mask4], "mask_inv"), "masked_score"],
    "attn_bias",
  );

  weights.layers.forEach((lw, l) => {
    const p = `l${l}_`;
    const add = (suffix: string, dims: number[], data: Float32Array) =>
      inits.push({ name: p + suffix, dims, data });
    add("wq", [h, h], lw.wq);
    add("bq", [h], lw.bq);
    add("wk", [h, h], lw.wk);
    add("bk", [h], lw.bk);
    add("wv", [h, h], lw.wv);
    add("bv", [h], lw.bv);
    add("wo", [h, h], lw.wo);
    add("bo", [h], lw.bo);
    add("ln1_scale", [h], lw.ln1Scale);
    add("ln1_bias", [h], lw.ln1Bias);
    add("w1", [h, intermediate], lw.w1);
    add("b1", [intermediate], lw.b1);
    add("w2", [intermediate, h], lw.w2);
    add("b2", [h], lw.b2);
    add("ln2_scale", [h], lw.ln2Scale);
    add("ln2_bias", [h], lw.ln2Bias);
    const heads4 = (t: string, perm: number[], out: string) =>
      node("Transpose", [node("Reshape", [t, "split_heads"], `${out}_r`)], out, {
        perm: { ints: perm },
      });
    const q = heads4(dense(x, `${p}wq`, `${p}bq`, `${p}q`), [0, 2, 1, 3], `${p}qh`);
    const k = heads4(dense(x, `${p}wk`, `${p}bk`, `${p}k`), [0, 2, 3, 1], `${p}kh`);
    const v = heads4(dense(x, `${p}wv`, `${p}bv`, `${p}v`), [0, 2, 1, 3], `${p}vh`);
    const scores = node("Mul", [node("MatMul", [q, k], `${p}qk`), "attn_scale"], `${p}scores`);
    const probs = node("Softmax", [node("Add", [scores, attnBias], `${p}masked`)], `${p}probs`, {
      axis: { i: -1 },
    });
    const ctx = node("Transpose", [node("MatMul", [probs, v], `${p}ctx_h`)], `${p}ctx_t`, {
      perm: { ints: [0, 2, 1, 3] },
    });
    const attn = dense(
      node("Reshape", [ctx, "merge_heads"], `${p}ctx`),
      `${p}wo`,
      `${p}bo`,
      `${p}attn`,
    );
    x = layerNorm(node("Add", [x, attn], `${p}res1`), `${p}ln1_scale`, `${p}ln1_bias`, `${p}ln1`);
    // GELU, exact form: 0.5·f·(1 + erf(f/√2)).
    const f = dense(x, `${p}w1`, `${p}b1`, `${p}ff1`);
    const erf = node("Erf", [node("Mul", [f, "inv_sqrt2"], `${p}ff_s`)], `${p}ff_erf`);
    const gelu = node(
      "Mul",
      [node("Mul", [f, node("Add", [erf, "one"], `${p}ff_e1`)], `${p}ff_m`), "half"],
      `${p}gelu`,
    );
    const ff = dense(gelu, `${p}w2`, `${p}b2`, `${p}ff2`);
    x = layerNorm(node("Add", [x, ff], `${p}res2`), `${p}ln2_scale`, `${p}ln2_bias`, `${p}out`);
  });

  const inputs: OnnxGraphSpec["inputs"] = [
    { name: "input_ids", dims: ["batch_size", "sequence_length"], type: "int64" },
    { name: "attention_mask", dims: ["batch_size", "sequence_length"], type: "int64" },
  ];
  if (typeVocabSize > 0) {
    inputs.push({ name: "token_type_ids", dims: ["batch_size", "sequence_length"], type: "int64" });
  }
  if (output === "last_hidden_state") {
    node("Identity", [x], "last_hidden_state");
    return {
      name,
      inputs,
      outputs: [{ name: "last_hidden_state", dims: ["batch_size", "sequence_length", h] }],
      initializers: inits,
      nodes,
      opset: 17,
    };
  }
  inits.push(
    int64s("seq_axes", [1]),
    int64s("last_axis", [2]),
    scalar("tiny", 1e-9),
    scalar("norm_floor", 1e-12),
  );
  const mask3 = node("Unsqueeze", [maskF, "last_axis"], "mask_3d");
  const summed = node(
    "ReduceSum",
    [node("Mul", [x, mask3], "masked_hidden"), "seq_axes"],
    "sum_hidden",
    {
      keepdims: { i: 0 },
    },
  );
  const count = node(
    "Max",
    [node("ReduceSum", [mask3, "seq_axes"], "token_count", { keepdims: { i: 0 } }), "tiny"],
    "token_count_c",
  );
  const mean = node("Div", [summed, count], "mean_pooled");
  const norm = node(
    "Max",
    [node("ReduceL2", [mean], "l2", { axes: { ints: [1] }, keepdims: { i: 1 } }), "norm_floor"],
    "l2_c",
  );
  node("Div", [mean, norm], "sentence_embedding");
  return {
    name,
    inputs,
    outputs: [{ name: "sentence_embedding", dims: ["batch_size", h] }],
    initializers: inits,
    nodes,
    opset: 17,
  };
}
