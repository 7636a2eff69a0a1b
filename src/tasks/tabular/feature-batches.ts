/**
 * The batches both tabular encoders fill (lines and Parquet rows): a float32
 * `[rows, width]` buffer and the rows' keys, closed into one window per batch.
 */
import { KeyBatch } from "../../model/key-batch.ts";
import type { Window } from "../task.ts";

/** What a tabular window carries to the decoder: its rows' key values. */
export interface TabularMeta {
  keys: KeyBatch;
  rows: number;
}

/** Options of {@link FeatureBatches}. */
export interface FeatureBatchOptions {
  inputName: string;
  inputType: "float32" | "float64";
  batchSize: number;
}

/** Rows of features being filled, and the windows closed so far (one batch each). */
export class FeatureBatches {
  /** The buffer the next row is featurized into, at {@link FeatureBatches.offset}. */
  features: Float32Array;
  /** Keys of the rows so far (a row that fails is truncated away by the caller). */
  keys = new KeyBatch();
  private rows = 0;
  private readonly ready: Window<TabularMeta>[] = [];

  constructor(
    private readonly width: number,
    private readonly options: FeatureBatchOptions,
  ) {
    this.features = new Float32Array(options.batchSize * width);
  }

  /** Where the next row's features go in {@link FeatureBatches.features}. */
  get offset(): number {
    return this.rows * this.width;
  }

  /** The row at {@link FeatureBatches.offset} is complete (features and keys). */
  rowDone(): void {
    this.rows++;
    if (this.rows === this.options.batchSize) this.close();
  }

  /** The closed windows (and, with `flush`, the partial batch too). */
  take(flush: boolean): Window<TabularMeta>[] {
    if (flush) this.close();
    if (this.ready.length === 0) return [];
    return this.ready.splice(0, this.ready.length);
  }

  private close(): void {
    if (this.rows === 0) return;
    const { width } = this;
    const rows = this.rows;
    const values = this.features.subarray(0, rows * width);
    this.ready.push({
      batches: [
        {
          feeds: {
            [this.options.inputName]:
              this.options.inputType === "float64"
                ? { type: "float64", data: Float64Array.from(values), dims: [rows, width] }
                : { type: "float32", data: values, dims: [rows, width] },
          },
          rows,
        },
      ],
      records: rows,
      meta: { keys: this.keys, rows },
    });
    // The batch's buffer goes to the inference thread: start a new one.
    this.features = new Float32Array(this.options.batchSize * width);
    this.keys = new KeyBatch();
    this.rows = 0;
  }
}
