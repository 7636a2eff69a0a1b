/**
 * Tabular records from a columnar input (Parquet rows) → float32 (or float64)
 * `[rows, width]` batches: the same windows as {@link TabularEncoder} makes from
 * lines, with keys taken from typed column values.
 */
import { KeyBatch } from "../../model/key-batch.ts";
import type { RowFeaturizer } from "../../sources/parquet/row-featurizer.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { TaskEncoder, Window } from "../task.ts";
import type { TabularMeta } from "./encoder.ts";

/** Batches of featurized rows; a window is one batch. */
export class TabularRowEncoder implements TaskEncoder<TabularMeta> {
  private features: Float32Array;
  private keys = new KeyBatch();
  private rows = 0;
  private readonly ready: Window<TabularMeta>[] = [];

  constructor(
    private readonly featurizer: RowFeaturizer,
    private readonly options: {
      inputName: string;
      inputType: "float32" | "float64";
      batchSize: number;
      /** Keys are row indexes (the job has no key columns). */
      offsetKeys: boolean;
    },
  ) {
    this.features = new Float32Array(options.batchSize * featurizer.width);
  }

  add(block: RecordBlock, i: number): string | undefined {
    if (block.kind !== "rows") return `a Parquet job reads rows, not ${block.kind}`;
    const reason = this.featurizer.featurize(
      block,
      i,
      this.features,
      this.rows * this.featurizer.width,
    );
    if (reason !== undefined) return reason;
    if (this.options.offsetKeys) this.keys.addString(String(block.firstRow + i));
    else for (const v of this.featurizer.keys(block, i)) this.keys.addString(v ?? "");
    this.rows++;
    if (this.rows === this.options.batchSize) this.close();
    return undefined;
  }

  take(flush: boolean): Window<TabularMeta>[] {
    if (flush) this.close();
    return this.ready.splice(0, this.ready.length);
  }

  private close(): void {
    if (this.rows === 0) return;
    const width = this.featurizer.width;
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
