/**
 * A RowSink that keeps embedding rows in memory, and record blocks made from
 * in-memory documents: for tests, the benchmark, the demo's nearest neighbours.
 */
import type { RowBlock } from "../../sources/record-source.ts";
import type { RowSink } from "../task.ts";

/** One embedding row. */
export interface EmbeddingRow {
  id: string;
  /** Chunk number when the model chunks long texts. */
  chunk?: number;
  vector: Float32Array;
}

/** Collects rows written as id, [chunk], vector. */
export class EmbeddingRowCollector implements RowSink {
  readonly rows: EmbeddingRow[] = [];
  private id = "";
  private chunk: number | undefined;

  startRow(): void {
    this.id = "";
    this.chunk = undefined;
  }
  keyBytes(buf: Buffer, start: number, end: number): void {
    this.id = buf.toString("utf8", start, end);
  }
  string(value: string | null): void {
    this.id = value ?? "";
  }
  float32(): void {
    throw new RangeError("an embedding row has no float32 scalar column");
  }
  float64(): void {
    throw new RangeError("an embedding row has no float64 scalar column");
  }
  int(value: number): void {
    this.chunk = value;
  }
  float32s(values: Float32Array): void {
    this.rows.push({
      id: this.id,
      ...(this.chunk !== undefined ? { chunk: this.chunk } : {}),
      vector: values,
    });
  }
  strings(): void {
    throw new RangeError("an embedding row has no string list column");
  }
  endRow(): void {}
}

/** Documents as a block of rows with `id` and `text` columns (more columns as given). */
export function documentsBlock(docs: readonly object[], firstRow = 0): RowBlock {
  const columns: Record<string, unknown[]> = {};
  docs.forEach((d, i) => {
    for (const [k, v] of Object.entries(d)) {
      let col = columns[k];
      if (!col) {
        col = new Array(docs.length).fill(undefined);
        columns[k] = col;
      }
      col[i] = v;
    }
  });
  return { kind: "rows", count: docs.length, firstRow, columns };
}

/** Cosine similarity of two vectors of equal length. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb || 1);
}

/** Indices of the `k` rows nearest to row `query` by cosine (the query itself excluded), nearest first. */
export function nearestNeighbours(
  rows: readonly EmbeddingRow[],
  query: number,
  k: number,
): { index: number; cosine: number }[] {
  const q = rows[query]?.vector;
  if (!q) throw new RangeError(`no row ${query}`);
  return rows
    .map((r, index) => ({ index, cosine: cosine(q, r.vector) }))
    .filter((r) => r.index !== query)
    .sort((a, b) => b.cosine - a.cosine)
    .slice(0, k);
}
