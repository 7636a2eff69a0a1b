/**
 * Model outputs → output rows: object name, top-1 label and score, the top-k labels
 * and scores, and optionally the raw output vector.
 */
import { InferenceError, ModelError } from "../../core/errors.ts";
import type { OutputColumn, Outputs, RowSink, TaskDecoder, Window } from "../task.ts";
import type { ImageTaskBlock } from "./descriptor.ts";
import type { ImageWindowMeta } from "./encoder.ts";

/** Output columns of an image job, in row order. */
export function imageOutputColumns(task: Pick<ImageTaskBlock, "includeLogits">): OutputColumn[] {
  const columns: OutputColumn[] = [
    { name: "object", type: "string" },
    { name: "label", type: "string" },
    { name: "score", type: "float32" },
    { name: "top_labels", type: "string[]" },
    { name: "top_scores", type: "float32[]" },
  ];
  if (task.includeLogits) columns.push({ name: "logits", type: "float32[]" });
  return columns;
}

/** Scores of one row from its raw outputs (softmax is shifted by the max, so it never overflows). */
export function toScores(
  raw: Float32Array,
  how: ImageTaskBlock["scores"],
  out: Float32Array,
): void {
  const n = raw.length;
  if (how === "none") {
    out.set(raw);
  } else if (how === "sigmoid") {
    for (let k = 0; k < n; k++) out[k] = 1 / (1 + Math.exp(-(raw[k] as number)));
  } else {
    let max = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < n; k++) max = Math.max(max, raw[k] as number);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const e = Math.exp((raw[k] as number) - max);
      out[k] = e;
      sum += e;
    }
    for (let k = 0; k < n; k++) out[k] = (out[k] as number) / sum;
  }
}

/** Indices of the `k` largest values, largest first (ties: lower index first). */
export function topK(values: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (best.length === k && v <= (values[best[k - 1] as number] as number)) continue;
    let at = best.length < k ? best.length : k - 1;
    while (at > 0 && v > (values[best[at - 1] as number] as number)) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Writes image rows; one per accepted record. */
export class ImageDecoder implements TaskDecoder<ImageWindowMeta> {
  constructor(
    private readonly task: ImageTaskBlock,
    private readonly labels: string[],
  ) {}

  write(window: Window<ImageWindowMeta>, outputs: Outputs[], sink: RowSink): void {
    const classes = this.labels.length;
    const scores = new Float32Array(classes);
    let row = 0;
    window.batches.forEach((batch, b) => {
      const out = outputs[b]?.[this.task.output];
      if (!out) {
        throw new InferenceError(`the model produced no output named "${this.task.output}"`);
      }
      if (out.type !== "float32") {
        throw new ModelError(
          `output "${this.task.output}" is ${out.type}; image classification needs float32 scores or logits`,
        );
      }
      const per = batch.rows === 0 ? 0 : out.data.length / batch.rows;
      if (per !== classes) {
        throw new ModelError(
          `output "${this.task.output}" has ${per} values per image (dims [${out.dims.join(", ")}]) but the labels file has ${classes} labels; they must match`,
        );
      }
      const data = out.data as Float32Array;
      for (let r = 0; r < batch.rows; r++, row++) {
        const raw = data.subarray(r * classes, (r + 1) * classes);
        toScores(raw, this.task.scores, scores);
        const top = topK(scores, this.task.topK);
        const first = top[0] as number;
        sink.startRow();
        sink.string(window.meta.names[row] as string);
        sink.string(this.labels[first] as string);
        sink.float32(scores[first] as number);
        sink.strings(top.map((k) => this.labels[k] as string));
        sink.float32s(Float32Array.from(top, (k) => scores[k] as number));
        if (this.task.includeLogits) sink.float32s(raw.slice());
        sink.endRow();
      }
    });
  }
}
