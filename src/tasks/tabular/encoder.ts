import { isUtf8 } from "node:buffer";
import type { InputFormat } from "../../core/records.ts";
import type { RecordFeaturizer } from "../../model/featurizer.ts";
import {
  createFieldSpans,
  csvFieldCountProblem,
  describeInvalidUtf8,
} from "../../records/csv-fields.ts";
import type { OwnedLines } from "../../records/line-reader.ts";
import type { RecordBlock } from "../../sources/record-source.ts";
import type { TaskEncoder, Window } from "../task.ts";
import { FeatureBatches, type TabularMeta } from "./feature-batches.ts";

/** The bytes of a block from its first line's start to its last line's end (oversize lines aside). */
function ownedSpan(block: OwnedLines): Buffer {
  let from = -1;
  let to = -1;
  for (let i = 0; i < block.count; i++) {
    if (block.oversize[i]) continue;
    if (from < 0) from = block.starts[i] as number;
    to = block.ends[i] as number;
  }
  return from < 0 ? block.buf.subarray(0, 0) : block.buf.subarray(from, to);
}

/**
 * Records → float32 `[rows, width]` batches of `batchSize` rows, one batch per
 * window (tabular rows are independent: no reordering). CSV fields are parsed as
 * bytes in place, never decoded to strings.
 */
export class TabularEncoder implements TaskEncoder<TabularMeta> {
  private readonly batches: FeatureBatches;
  private readonly spans;
  /** The last line block checked for UTF-8 as a whole, and whether it passed. */
  private checkedBlock: OwnedLines | undefined;
  private blockIsUtf8 = true;

  constructor(
    private readonly featurizer: RecordFeaturizer,
    private readonly options: {
      inputName: string;
      inputType: "float32" | "float64";
      batchSize: number;
      format: InputFormat;
      columns: string[];
      /** CSV field delimiter, a byte (default ','). */
      delimiter?: number;
      /** Keys are byte offsets (the job has no key columns). */
      offsetKeys: boolean;
    },
  ) {
    this.batches = new FeatureBatches(featurizer.width, options);
    this.spans = createFieldSpans(Math.max(8, options.columns.length + 1));
  }

  add(block: RecordBlock, i: number): string | undefined {
    if (block.kind !== "lines") return `tabular models read CSV or JSON Lines, not ${block.kind}`;
    const lines = block.lines;
    const buf = lines.buf;
    const s = lines.starts[i] as number;
    const e = lines.ends[i] as number;
    const batches = this.batches;
    const keyMark = batches.keys.length;
    const csv = this.options.format === "csv";
    let reason: string | undefined;
    if (csv) {
      // CSV fields are mostly read as bytes, never decoded: check a block's lines are
      // UTF-8 in one native pass, and line by line only when not.
      if (this.checkedBlock !== lines) {
        this.checkedBlock = lines;
        this.blockIsUtf8 = isUtf8(ownedSpan(lines));
      }
      if (!this.blockIsUtf8)
        reason = describeInvalidUtf8(
          buf,
          s,
          e,
          this.options.columns,
          this.spans,
          this.options.delimiter,
        );
    }
    reason ??= this.featurizer.featurize(buf, s, e, batches.features, batches.offset, batches.keys);
    if (reason !== undefined && csv) {
      // The featurizer stops at the first value it can't use; a shifted row says why better.
      reason =
        csvFieldCountProblem(
          buf,
          s,
          e,
          this.options.columns.length,
          this.spans,
          this.options.delimiter,
        ) ?? reason;
    }
    if (reason !== undefined) {
      batches.keys.truncate(keyMark);
      return reason;
    }
    if (this.options.offsetKeys) batches.keys.addString(String(lines.offsets[i]));
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
