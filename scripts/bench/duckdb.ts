/**
 * DuckDB reading the same CSV, every feature column parsed (summed, so none
 * can be skipped), in this process with 2 threads: a first-rate C++ CSV
 * reader's parse-only rate, the anchor for our wall clock.
 */
import { NUMERIC_WIDTH } from "../../src/model/datasets.ts";

/** One DuckDB read. */
export interface DuckdbResult {
  rows: number;
  seconds: number;
  rowsPerSec: number;
  threads: number;
  version: string;
}

/**
 * Time `read_csv` of `file` with explicit column types (id VARCHAR, f0..f31
 * FLOAT: float32, as our featurizer parses), summing all 32 features. The
 * first call of a file also warms the page cache, as the other readers get.
 */
export async function measureDuckdb(
  file: string,
  options: { threads: number; repeat: number },
): Promise<DuckdbResult[]> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const instance = await DuckDBInstance.create(":memory:", { threads: String(options.threads) });
  const connection = await instance.connect();
  try {
    const version = String(
      (await connection.runAndReadAll("SELECT version()")).getRows()[0]?.[0] ?? "?",
    );
    const features = Array.from({ length: NUMERIC_WIDTH }, (_, k) => `f${k}`);
    const columns = `{'id': 'VARCHAR', ${features.map((f) => `'${f}': 'FLOAT'`).join(", ")}}`;
    const sql = `SELECT count(*) AS n, ${features.map((f) => `sum(${f})`).join(" + ")} AS total
      FROM read_csv('${file.replaceAll("'", "''")}', header = true, columns = ${columns})`;
    const runs: DuckdbResult[] = [];
    for (let i = 0; i < options.repeat; i++) {
      const t0 = performance.now();
      const rows = Number((await connection.runAndReadAll(sql)).getRows()[0]?.[0] ?? 0);
      const seconds = (performance.now() - t0) / 1000;
      runs.push({ rows, seconds, rowsPerSec: rows / seconds, threads: options.threads, version });
    }
    return runs;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
