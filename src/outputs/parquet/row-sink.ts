/**
 * A RowSink that writes one Parquet part: rows are gathered column by column and
 * encoded into one row group (a part is one checkpoint chunk) when finished.
 * Snappy-compressed, statistics on, no page indexes (they hold absolute offsets
 * that a merge would have to rewrite; merge.ts copies column chunks as bytes).
 */
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { PipelineError } from "../../core/errors.ts";
import type { OutputColumn, RowSink } from "../../tasks/task.ts";
import { outputSchema } from "./schema.ts";

/** Key-value metadata written into every part (and kept by the merge). */
export type ParquetKeyValues = Record<string, string>;

/** Collects rows, then `finish()` gives the part's bytes. */
export class ParquetRowSink implements RowSink {
  private readonly data: unknown[][];
  private col = 0;
  rows = 0;

  constructor(
    private readonly columns: readonly OutputColumn[],
    private readonly keyValues: ParquetKeyValues = {},
  ) {
    this.data = columns.map(() => []);
  }

  startRow(): void {
    this.col = 0;
  }
  private push(value: unknown): void {
    const column = this.data[this.col];
    if (!column) {
      throw new PipelineError(
        "INTERNAL",
        `row has more values than the ${this.columns.length} output columns`,
      );
    }
    column.push(value);
    this.col++;
  }
  keyBytes(buf: Buffer, start: number, end: number): void {
    this.push(buf.toString("utf8", start, end));
  }
  string(value: string | null): void {
    this.push(value);
  }
  float32(value: number): void {
    this.push(value);
  }
  float64(value: number): void {
    this.push(value);
  }
  int(value: number): void {
    this.push(BigInt(value));
  }
  float32s(values: Float32Array): void {
    // hyparquet-writer takes plain arrays for LIST columns.
    this.push(Array.from(values));
  }
  strings(values: string[]): void {
    this.push([...values]);
  }
  endRow(): void {
    if (this.col !== this.columns.length) {
      throw new PipelineError(
        "INTERNAL",
        `row has ${this.col} values for ${this.columns.length} output columns`,
      );
    }
    this.rows++;
  }

  /** The Parquet file of the rows so far (a valid file with no row group when empty). */
  finish(): Uint8Array {
    const writer = new ByteWriter();
    const pq = new ParquetWriter({
      writer,
      schema: outputSchema(this.columns),
      codec: "SNAPPY",
      kvMetadata: Object.entries(this.keyValues).map(([key, value]) => ({ key, value })),
      createdBy: "oci-batch-inference (hyparquet-writer)",
    });
    if (this.rows > 0) {
      pq.write({
        columnData: this.columns.map((c, k) => ({
          name: c.name,
          data: this.data[k] as unknown[],
          offsetIndex: false,
        })),
        rowGroupSize: this.rows,
      });
    }
    pq.finish();
    return writer.getBytes();
  }
}
