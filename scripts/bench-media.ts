/**
 * Media and Parquet benchmark parts (issue 11), side by side in one run:
 *
 * Images — images/s of our path (object store → manifest → bounded fetch → sharp
 * decode/resize on libuv's pool → uint8 NHWC batch → onnxruntime → top-k rows) vs
 * bare onnxruntime on the same images pre-decoded into tensors (the ceiling), for a
 * light model (decode-bound) and a heavier one (compute-bound); plus decode alone,
 * and the share of wall time not spent in inference (fetch + decode not hidden).
 *
 * Parquet — rows/s scoring the same rows from Parquet (our ranged-read source + the
 * worker's row encoder) vs from CSV (the line reader + the worker's CSV encoder),
 * same model and batch, features and keys as a job reads them; and reading the same
 * Parquet columns into JS, ours vs DuckDB. 1M rows by default: DuckDB writes row
 * groups of 122,880 rows, and a file of a few groups would mostly time the first
 * group's decode, which nothing overlaps.
 *
 *   tsx scripts/bench-media.ts [--images 240] [--rows 1000000] [--json out.json] [--only images|parquet]
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { MediaBenchContext } from "./bench/media-context.ts";
import { benchImages } from "./bench/media-images.ts";
import { benchParquet } from "./bench/media-parquet.ts";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "240" },
    rows: { type: "string", default: "1000000" },
    json: { type: "string" },
    threads: { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    only: { type: "string" },
  },
});
const IMAGES = Number(values.images);
const ROWS = Number(values.rows);
const INTRA = Number(values.threads);
const ROUNDS_ARG = Number(values.rounds);
const BATCH = 32;
const results: Record<string, unknown> = {
  uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? "4 (default)",
  intraOpThreads: INTRA,
};
const root = await mkdtemp(join(tmpdir(), "bench-media-"));

const ctx: MediaBenchContext = {
  images: IMAGES,
  rows: ROWS,
  intraOpThreads: INTRA,
  rounds: ROUNDS_ARG,
  batch: BATCH,
  root,
  results,
};

try {
  if (values.only !== "parquet") await benchImages(ctx);
  if (values.only !== "images") await benchParquet(ctx);
  if (values.json) await writeFile(values.json, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results));
} finally {
  await rm(root, { recursive: true, force: true });
}
