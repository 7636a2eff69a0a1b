/**
 * How far a ratio can go on this machine at best: the work every `batch-infer run`
 * of a CSV does whatever else it does, at its measured cost, spread over every core
 * with nothing else in the way:
 * - the CLI's own start (node and its bundle), before anything else can begin;
 * - the input's sha256 (its content identity, README "Using it on your data");
 * - reading every row and parsing every feature column of it, with the worker's own
 *   featurizer (key column kept, as a job keeps it);
 * - for a model that costs more than parsing, its inference at bare onnxruntime's
 *   all-core rate.
 * Scoring a cheap model, output rows, part writes, checkpoints, the merge and the
 * workers' own start count as free here, so a real run is always slower: a target
 * above the ceiling is out of reach on this machine as the pipeline is defined, and
 * the gap between a figure and its ceiling is what the pipeline's overheads cost.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { cpus } from "node:os";
import { sha256OfFile } from "../../src/adapters/local/file-hash.ts";
import { createCsvFeaturizer } from "../../src/model/csv-featurizer.ts";
import type { ModelDescriptor } from "../../src/model/descriptor.ts";
import { KeyBatch } from "../../src/model/key-batch.ts";

/** The measured costs a ceiling is made of. */
export interface FloorCosts {
  /** Wall ms of `node dist/cli.js --help` (median of 5): the CLI's start. */
  cliStartMs: number;
  /** CPU ns per input byte of the sha256 (reads included). */
  hashNsPerByte: number;
  /** CPU ns per row of reading, splitting and featurizing the input on one thread. */
  parseNsPerRow: number;
  cores: number;
}

function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** Read `file` in 4 MiB chunks, splitting lines and featurizing each row; returns rows. */
function featurizeFile(file: string, descriptor: ModelDescriptor, keyColumns: string[]): number {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    let have = readSync(fd, buf, 0, buf.length, 0);
    let position = have;
    const headerEnd = buf.indexOf(10);
    const columns = buf.toString("utf8", 0, headerEnd).replace(/\r$/, "").split(",");
    const fz = createCsvFeaturizer(descriptor, keyColumns, columns);
    const batch = 4096;
    const out = new Float32Array(batch * fz.width);
    let keys = new KeyBatch();
    let rows = 0;
    let start = headerEnd + 1;
    for (;;) {
      let nl = buf.indexOf(10, start);
      while (nl >= 0 && nl < have) {
        const k = rows % batch;
        if (k === 0) keys = new KeyBatch();
        fz.featurize(buf, start, nl, out, k * fz.width, keys);
        rows++;
        start = nl + 1;
        nl = buf.indexOf(10, start);
      }
      // Carry the partial line to the front and read on.
      buf.copy(buf, 0, start, have);
      have -= start;
      start = 0;
      const got = readSync(fd, buf, have, buf.length - have, position);
      if (got === 0) break;
      position += got;
      have += got;
    }
    return rows;
  } finally {
    closeSync(fd);
  }
}

/** Measure the costs on the bench's own file and model (best of two runs each). */
export async function measureFloorCosts(options: {
  dataFile: string;
  dataBytes: number;
  descriptorPath: string;
  cliPath: string;
}): Promise<FloorCosts> {
  const starts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, [options.cliPath, "--help"], { stdio: "ignore" });
    starts.push(performance.now() - t0);
  }
  starts.sort((a, b) => a - b);
  let hashNsPerByte = Number.POSITIVE_INFINITY;
  let parseNsPerRow = Number.POSITIVE_INFINITY;
  const descriptor = JSON.parse(readFileSync(options.descriptorPath, "utf8")) as ModelDescriptor;
  for (let i = 0; i < 2; i++) {
    const h0 = cpuMs();
    await sha256OfFile(options.dataFile);
    hashNsPerByte = Math.min(hashNsPerByte, ((cpuMs() - h0) * 1e6) / options.dataBytes);
    const p0 = cpuMs();
    const rows = featurizeFile(options.dataFile, descriptor, ["id"]);
    parseNsPerRow = Math.min(parseNsPerRow, ((cpuMs() - p0) * 1e6) / rows);
  }
  return {
    cliStartMs: starts[2] ?? 0,
    hashNsPerByte,
    parseNsPerRow,
    cores: cpus().length,
  };
}

/**
 * The least wall ms a run of `rows` rows in `bytes` bytes can take (see the module
 * comment); `computeMs`: the model's inference at bare onnxruntime's all-core rate,
 * for a model that costs more than the parse (0 for a cheap one).
 */
export function floorWallMs(c: FloorCosts, rows: number, bytes: number, computeMs = 0): number {
  return (
    c.cliStartMs + (bytes * c.hashNsPerByte + rows * c.parseNsPerRow) / 1e6 / c.cores + computeMs
  );
}

/** One line on what the ceilings are made of. */
export function describeFloorCosts(c: FloorCosts): string {
  return (
    `  ceilings from: CLI start ${c.cliStartMs.toFixed(0)} ms; sha256 ${(1 / c.hashNsPerByte).toFixed(2)} GB/s of CPU; ` +
    `read + featurize ${(1e3 / c.parseNsPerRow).toFixed(2)} M rows/s per core (${c.parseNsPerRow.toFixed(0)} ns/row); ${c.cores} cores`
  );
}
