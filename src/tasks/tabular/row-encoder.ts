/**
 * Tabular records from a columnar input (Parquet rows) → float32 (or float64)
 * `[rows, width]` batches: the same windows as {@link TabularEncoder} makes from
 * lines, with keys taken from typed column values.
 */
import type { RowFeaturizer } from "../../sources/parquet/row-featurizer.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { TaskEncoder, Window } from "../task.ts";
import { FeatureBatches, type TabularMeta } from "./feature-batches.ts";

/** Batches of featurized rows; a window is one batch. */
export class TabularRowEncoder implements TaskEncoder<TabularMeta> {
  private readonly batches: FeatureBatches;

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
    this.batches = new FeatureBatches(featurizer.width, options);
  }

  add(block: RecordBlock, i: number): string | undefined {
    if (block.kind !== "rows") return `a Parquet job reads rows, not ${block.kind}`;
    const batches = this.batches;
    const reason = this.featurizer.featurize(block, i, batches.features, batches.offset);
    if (reason !== undefined) return reason;
    if (this.options.offsetKeys) batches.keys.addString(String(block.firstRow + i));
    else this.featurizer.addKeys(block, i, batches.keys);
    batches.rowDone();
    return undefined;
  }

  take(flush: boolean): Window<TabularMeta>[] {
    return this.batches.take(flush);
  }

  recycle(window: Window<TabularMeta>): void {
    this.batches.recycle(window.meta);
  }
}
