/**
 * Model output → one vector per sequence: the mean of the token vectors under the
 * attention mask (sentence-transformers' default) or the first token's ([CLS]), then
 * optionally L2-normalised. Sums run in float64 so the result doesn't depend on the
 * sequence's padding or its row in the batch.
 */

/**
 * Pool row `row` of a [rows, cols, dim] output whose sequence has `length` real tokens
 * into `out` (dim floats).
 */
export function poolTokens(
  data: Float32Array,
  row: number,
  cols: number,
  dim: number,
  length: number,
  pooling: "mean" | "cls",
  out: Float32Array,
): Float32Array {
  const base = row * cols * dim;
  if (pooling === "cls" || length <= 1) {
    out.set(data.subarray(base, base + dim));
    return out;
  }
  const sum = new Float64Array(dim);
  for (let t = 0; t < length; t++) {
    const at = base + t * dim;
    for (let j = 0; j < dim; j++) sum[j] = (sum[j] as number) + (data[at + j] as number);
  }
  for (let j = 0; j < dim; j++) out[j] = (sum[j] as number) / length;
  return out;
}

/** Scale `v` to unit length in place (a zero vector stays zero, as in sentence-transformers). */
export function l2Normalize(v: Float32Array): Float32Array {
  let sq = 0;
  for (const x of v) sq += x * x;
  const norm = Math.max(Math.sqrt(sq), 1e-12);
  for (let j = 0; j < v.length; j++) v[j] = (v[j] as number) / norm;
  return v;
}
