/**
 * The text-embedding task's decoder: each batch's outputs are pooled into one vector
 * per row as soon as they arrive (`reduce`), and a scored window becomes output rows
 * in input order, one per record (or per chunk): id, chunk number when chunking, vector.
 */
import { InferenceError } from "../../core/errors.ts";
import type { OutputColumn, Outputs, RowSink, TaskDecoder, Tensor, Window } from "../task.ts";
import type { TextWindowMeta } from "./encoder.ts";
import type { TextModel } from "./model-dir.ts";
import { l2Normalize, poolTokens } from "./pooling.ts";

/**
 * Output columns of a text-embedding job: id, chunk (when chunking), embedding, and
 * with `contentHash` the sha256 of the document object the vector was made from.
 */
export function textOutputColumns(
  model: Pick<TextModel, "settings">,
  contentHash = false,
): OutputColumn[] {
  return [
    { name: "id", type: "string" },
    ...(model.settings.chunkOverlap !== undefined ? [{ name: "chunk", type: "int" } as const] : []),
    { name: "embedding", type: "float32[]" },
    ...(contentHash ? [{ name: "sha256", type: "string" } as const] : []),
  ];
}

/** Key of a reduced batch's [rows, dim] vectors (not an ONNX output name a model would use). */
export const POOLED = "text-embedding:pooled";

/** Decoder for a model's windows (stateless: one may serve every attempt). */
export class TextEmbeddingDecoder implements TaskDecoder<TextWindowMeta> {
  /** `contentHash`: write each record's object sha256 after the vector (see textOutputColumns). */
  constructor(
    private readonly model: Pick<TextModel, "output" | "dimension" | "settings">,
    private readonly contentHash = false,
  ) {}

  /** Pool (and normalise) batch `batch`'s rows into a [rows, dim] tensor. */
  reduce(window: Window<TextWindowMeta>, batch: number, outputs: Outputs): Outputs {
    const name = this.model.output.name;
    const tensor = outputs[name];
    if (!tensor || !(tensor.data instanceof Float32Array)) {
      throw new InferenceError(`batch ${batch} has no float32 output "${name}"`);
    }
    const seqs = window.meta.batchSeqs[batch];
    if (!seqs) throw new InferenceError(`the window has no batch ${batch}`);
    const dim = this.model.dimension;
    const rows = seqs.length;
    const { pooling, normalize } = this.model.settings;
    const pooled = new Float32Array(rows * dim);
    if (this.model.output.perToken) {
      const [r, cols, d] = tensor.dims;
      if (tensor.dims.length !== 3 || r !== rows || d !== dim) {
        throw new InferenceError(
          `output "${name}" has dims [${tensor.dims.join(",")}], expected [${rows}, seq, ${dim}]`,
        );
      }
      const mode = pooling === "cls" ? "cls" : "mean";
      for (let row = 0; row < rows; row++) {
        const length = window.meta.seqLen[seqs[row] as number] as number;
        const out = pooled.subarray(row * dim, (row + 1) * dim);
        poolTokens(tensor.data, row, cols as number, dim, length, mode, out);
      }
    } else {
      if (tensor.dims.length !== 2 || tensor.dims[0] !== rows || tensor.dims[1] !== dim) {
        throw new InferenceError(
          `output "${name}" has dims [${tensor.dims.join(",")}], expected [${rows}, ${dim}]`,
        );
      }
      pooled.set(tensor.data.subarray(0, rows * dim));
    }
    if (normalize) {
      for (let row = 0; row < rows; row++) l2Normalize(pooled.subarray(row * dim, (row + 1) * dim));
    }
    const out: Tensor = { type: "float32", data: pooled, dims: [rows, dim] };
    return { [POOLED]: out };
  }

  write(window: Window<TextWindowMeta>, outputs: Outputs[], sink: RowSink): void {
    const { meta } = window;
    const dim = this.model.dimension;
    // A caller that skipped `reduce` passes raw outputs: reduce them here.
    const pooled = outputs.map(
      (o, b) => (o[POOLED] ?? this.reduce(window, b, o)[POOLED]) as Tensor,
    );
    const chunked = this.model.settings.chunkOverlap !== undefined;
    for (let r = 0; r < meta.ids.length; r++) {
      const first = meta.firstSeq[r] as number;
      const end = meta.firstSeq[r + 1] as number;
      for (let s = first; s < end; s++) {
        const data = pooled[meta.seqBatch[s] as number]?.data as Float32Array | undefined;
        if (!data) throw new InferenceError(`no outputs for batch ${meta.seqBatch[s]}`);
        const row = meta.seqRow[s] as number;
        sink.startRow();
        sink.string(meta.ids[r] as string);
        if (chunked) sink.int(s - first);
        sink.float32s(data.slice(row * dim, (row + 1) * dim));
        if (this.contentHash) sink.string(meta.hashes?.[r] ?? null);
        sink.endRow();
      }
    }
  }
}
