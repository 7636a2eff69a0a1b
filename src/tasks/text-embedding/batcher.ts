/**
 * Sequences → model calls. Within a window, sequences are sorted by length (longest
 * first) and packed greedily while the batch stays within the padded-token budget
 * (rows × longest), the attention budget (rows × longest²) and the padding cap; a
 * sequence over a budget runs alone. Sorting keeps padding small: similar lengths
 * share a batch.
 */
import { endianness } from "node:os";
import type { EncodedBatch, Tensor } from "../task.ts";
import type { TextModelInputs } from "./model-dir.ts";

/** How the window's sequences were batched. */
export interface BatchPlan {
  batches: EncodedBatch[];
  /** Per sequence (window order): its batch and its row in that batch. */
  seqBatch: Int32Array;
  seqRow: Int32Array;
  /** Per batch: the sequence in each row. */
  batchSeqs: Int32Array[];
  /** rows × longest, summed over batches. */
  paddedTokens: number;
}

/** Ids and types needed to build the tensors. */
export interface FeedSpec {
  inputs: TextModelInputs;
  padId: number;
  /** token_type_ids of each position of a sequence, by the tokenizer's template. */
  typeIdsOf?: (length: number) => Int32Array;
}

/** Limits of one model call. */
export interface BatchLimits {
  tokenBudget: number;
  attentionBudget: number;
  /**
   * Largest share of padding in a batch of at least MIN_BATCH_TOKENS padded tokens:
   * a long budget-filling batch would otherwise span lengths from L down to a few
   * tokens, and the model would spend most of it on padding.
   */
  maxPadding: number;
}

/** Below this many padded tokens a batch may take any padding (a call has a fixed cost). */
export const MIN_BATCH_TOKENS = 256;

const LITTLE_ENDIAN = endianness() === "LE";

/** A [rows, cols] id tensor of `type`, filled with `fill`, plus a writer for cell k. */
function idTensor(type: "int64" | "int32", rows: number, cols: number, fill: number) {
  const n = rows * cols;
  if (type === "int32") {
    const data = new Int32Array(n).fill(fill);
    return {
      tensor: { type, data, dims: [rows, cols] } as Tensor,
      set: (k: number, v: number) => (data[k] = v),
    };
  }
  const data = new BigInt64Array(n);
  if (LITTLE_ENDIAN) {
    // Ids are small non-negative ints: write the low 32-bit word through a view instead
    // of converting every id to a BigInt.
    const words = new Int32Array(data.buffer);
    if (fill !== 0) for (let k = 0; k < n; k++) words[2 * k] = fill;
    return {
      tensor: { type, data, dims: [rows, cols] } as Tensor,
      set: (k: number, v: number) => (words[2 * k] = v),
    };
  }
  data.fill(BigInt(fill));
  return {
    tensor: { type, data, dims: [rows, cols] } as Tensor,
    set: (k: number, v: number) => (data[k] = BigInt(v)),
  };
}

/** Pack `sequences` into batches (see the module comment) and build their feeds. */
export function planBatches(
  sequences: readonly Int32Array[],
  limits: BatchLimits,
  spec: FeedSpec,
): BatchPlan {
  const order = sequences.map((_, i) => i);
  order.sort(
    (a, b) => (sequences[b] as Int32Array).length - (sequences[a] as Int32Array).length || a - b,
  );
  const seqBatch = new Int32Array(sequences.length);
  const seqRow = new Int32Array(sequences.length);
  const batches: EncodedBatch[] = [];
  const batchSeqs: Int32Array[] = [];
  let paddedTokens = 0;
  let i = 0;
  while (i < order.length) {
    const longest = Math.max(1, (sequences[order[i] as number] as Int32Array).length);
    let rows = 1;
    let real = (sequences[order[i] as number] as Int32Array).length;
    while (i + rows < order.length) {
      const next = (sequences[order[i + rows] as number] as Int32Array).length;
      const padded = (rows + 1) * longest;
      if (padded > limits.tokenBudget || padded * longest > limits.attentionBudget) break;
      if (padded > MIN_BATCH_TOKENS && padded - real - next > limits.maxPadding * padded) break;
      real += next;
      rows++;
    }
    const members = order.slice(i, i + rows);
    batches.push(buildFeeds(members, sequences, longest, spec));
    batchSeqs.push(Int32Array.from(members));
    members.forEach((s, r) => {
      seqBatch[s] = batches.length - 1;
      seqRow[s] = r;
    });
    paddedTokens += rows * longest;
    i += rows;
  }
  return { batches, seqBatch, seqRow, batchSeqs, paddedTokens };
}

function buildFeeds(
  members: number[],
  sequences: readonly Int32Array[],
  cols: number,
  spec: FeedSpec,
): EncodedBatch {
  const rows = members.length;
  const { type } = spec.inputs;
  const ids = idTensor(type, rows, cols, spec.padId);
  const mask = idTensor(type, rows, cols, 0);
  const types = spec.inputs.tokenTypeIds ? idTensor(type, rows, cols, 0) : undefined;
  members.forEach((s, r) => {
    const seq = sequences[s] as Int32Array;
    const base = r * cols;
    for (let t = 0; t < seq.length; t++) {
      ids.set(base + t, seq[t] as number);
      mask.set(base + t, 1);
    }
    if (types && spec.typeIdsOf) {
      const tt = spec.typeIdsOf(seq.length);
      for (let t = 0; t < seq.length; t++) if (tt[t] !== 0) types.set(base + t, tt[t] as number);
    }
  });
  const feeds: EncodedBatch["feeds"] = {
    [spec.inputs.inputIds]: ids.tensor,
    [spec.inputs.attentionMask]: mask.tensor,
  };
  if (types && spec.inputs.tokenTypeIds) feeds[spec.inputs.tokenTypeIds] = types.tensor;
  return { feeds, rows };
}
