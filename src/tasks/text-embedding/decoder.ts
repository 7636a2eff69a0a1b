/**
 * The text-embedding task's decoder: a scored window → output rows in input order,
 * one per record (or per chunk): id, chunk number when chunking, vector.
 */
import { InferenceError } from "../../core/errors.ts";
import type { OutputColumn, Outputs, RowSink, TaskDecoder, Window } from "../task.ts";
import type { TextWindowMeta } from "./encoder.ts";
import type { TextModel } from "./model-dir.ts";
import { l2Normalize, poolTokens, takeRow } from "./pooling.ts";

/** Output columns of a text-embedding job: id, chunk (when chunking), embedding. */
export function textOutputColumns(model: Pick<TextModel, "settings">): OutputColumn[] {
  return [
    { name: "id", type: "string" },
    ...(model.settings.chunkOverlap !== undefined ? [{ name: "chunk", type: "int" } as const] : []),
    { name: "embedding", type: "float32[]" },
  ];
}

/** Decoder for a model's windows (stateless: one may serve every attempt). */
export class TextEmbeddingDecoder implements TaskDecoder<TextWindowMeta> {
  constructor(private readonly model: Pick<TextModel, "output" | "dimension" | "settings">) {}

  /** The vector of sequence `s` of the window. */
  vectorOf(window: Window<TextWindowMeta>, outputs: Outputs[], s: number): Float32Array {
    const { meta } = window;
    const b = meta.seqBatch[s] as number;
    const row = meta.seqRow[s] as number;
    const name = this.model.output.name;
    const tensor = outputs[b]?.[name];
    if (!tensor || !(tensor.data instanceof Float32Array)) {
      throw new InferenceError(`batch ${b} has no float32 output "${name}"`);
    }
    const dim = this.model.dimension;
    const { pooling, normalize } = this.model.settings;
    let v: Float32Array;
    if (this.model.output.perToken) {
      const cols = tensor.dims[1] as number;
      if (tensor.dims.length !== 3 || tensor.dims[2] !== dim) {
        throw new InferenceError(
          `output "${name}" has dims [${tensor.dims.join(",")}], expected [rows, seq, ${dim}]`,
        );
      }
      v = poolTokens(
        tensor.data,
        row,
        cols,
        dim,
        meta.seqLen[s] as number,
        pooling === "cls" ? "cls" : "mean",
      );
    } else {
      if (tensor.dims.length !== 2 || tensor.dims[1] !== dim) {
        throw new InferenceError(
          `output "${name}" has dims [${tensor.dims.join(",")}], expected [rows, ${dim}]`,
        );
      }
      v = takeRow(tensor.data, row, dim);
    }
    return normalize ? l2Normalize(v) : v;
  }

  write(window: Window<TextWindowMeta>, outputs: Outputs[], sink: RowSink): void {
    const { meta } = window;
    const chunked = this.model.settings.chunkOverlap !== undefined;
    for (let r = 0; r < meta.ids.length; r++) {
      const first = meta.firstSeq[r] as number;
      const end = meta.firstSeq[r + 1] as number;
      for (let s = first; s < end; s++) {
        sink.startRow();
        sink.string(meta.ids[r] as string);
        if (chunked) sink.int(s - first);
        sink.float32s(this.vectorOf(window, outputs, s));
        sink.endRow();
      }
    }
  }
}
