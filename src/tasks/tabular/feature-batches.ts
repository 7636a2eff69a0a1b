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
  /** The whole feature buffer the batch's feed is a view of (to fill again: {@link FeatureBatches.recycle}). */
  buffer: Float32Array;
}

/**
 * Buffers kept for reuse: a batch's 512 KB feature buffer (4,096 rows × 32 floats) is
 * free again once its rows are written, and allocating a fresh one per batch made
 * garbage the collector spent ~6% of a worker's time on.
 */
const MAX_SPARE = 4;

/** What `take` returns while no batch is complete (shared; callers only read it). */
const NO_WINDOWS: Window<TabularMeta>[] = [];

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
  keys: KeyBatch;
  private rows = 0;
  private readonly ready: Window<TabularMeta>[] = [];
  private readonly spareFeatures: Float32Array[] = [];
  private readonly spareKeys: KeyBatch[] = [];

  constructor(
    private readonly width: number,
    private readonly options: FeatureBatchOptions,
  ) {
    this.features = new Float32Array(options.batchSize * width);
    this.keys = new KeyBatch(options.batchSize);
  }

  /**
   * A window's rows are written: its buffers may take another batch. Every accepted row
   * writes all of its feature slots, so a reused buffer needs no clearing. A buffer a
   * session handed to its thread is detached (length 0) and is not kept.
   */
  recycle(meta: TabularMeta): void {
    const size = this.options.batchSize * this.width;
    if (meta.buffer.length === size && this.spareFeatures.length < MAX_SPARE) {
      this.spareFeatures.push(meta.buffer);
    }
    if (this.spareKeys.length < MAX_SPARE) {
      meta.keys.truncate(0);
      this.spareKeys.push(meta.keys);
    }
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
    // Asked after every record: no new (empty) array for the records that close no batch.
    if (this.ready.length === 0) return NO_WINDOWS;
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
      meta: { keys: this.keys, rows, buffer: this.features },
    });
    // The batch's buffer goes to onnxruntime: fill another (a spare, or a new one).
    this.features = this.spareFeatures.pop() ?? new Float32Array(this.options.batchSize * width);
    this.keys = this.spareKeys.pop() ?? new KeyBatch(this.options.batchSize);
    this.rows = 0;
  }
}
