/**
 * The issue's figures from one bench run: each ratio with its anchor, the
 * target it is held to and the issue's "today" figure.
 */
import { type FloorCosts, floorWallMs } from "./ceilings.ts";
import type { CliRunResult } from "./cli-run.ts";
import type { DuckdbResult } from "./duckdb.ts";
import { fmtInt, fmtMB, pct, secs } from "./format.ts";
import type { BareResult, HandResult } from "./onnx.ts";
import type { PandasResult } from "./pandas.ts";
import type { Figure } from "./report.ts";

/** A model's runs: the median bare window and CLI run, and all of them. */
export interface ModelRuns {
  bare: BareResult;
  run: CliRunResult;
  bares: BareResult[];
  runs: CliRunResult[];
}

/** A function's cold start (scripts/cold-start.ts --json). */
export interface ColdStart {
  fn: string;
  backend: string;
  readyMs: number;
  firstMs: number;
  totalMs: number;
}

/** Everything one bench run measured. */
export interface Measured {
  rows: number;
  /** Size of the base file. */
  dataBytes: number;
  scaleRows: number;
  /** What every run must do at least (ceilings.ts). */
  floors: FloorCosts;
  quick: boolean;
  duck: DuckdbResult;
  pandas: PandasResult | undefined;
  pandasMissing: string | undefined;
  hand: HandResult;
  logistic: ModelRuns;
  mlp: ModelRuns;
  heavy: ModelRuns;
  checkpoints: {
    /** checkpointEvery of the two settings compared. */
    every: [number, number];
    small: CliRunResult;
    large: CliRunResult;
    all: CliRunResult[];
    overheadPct: number;
    overheadJobPct: number;
    /** The least the extra checkpoints can cost: their parts' barest durable writes. */
    floor: { pct: number; extraCommits: number; writeCpuMs: number; partBytes: number };
  };
  coldStart: ColdStart[];
  scale: { rows: number; bytes: number; run: CliRunResult; duck: DuckdbResult } | undefined;
}

/** Largest worker peak RSS over every run, and the run it came from. */
export function peakRss(m: Measured): { bytes: number; label: string | undefined } {
  const runs = [
    ...m.logistic.runs,
    ...m.mlp.runs,
    ...m.heavy.runs,
    ...m.checkpoints.all,
    ...(m.scale ? [m.scale.run] : []),
  ];
  const bytes = Math.max(...runs.map((r) => r.peakRssPerWorker));
  return { bytes, label: runs.find((r) => r.peakRssPerWorker === bytes)?.label };
}

/**
 * The best rows/s a run of `rows` rows (`bytes` bytes) can reach here (ceilings.ts),
 * with the model's inference at `bareRowsPerSec` when it costs more than the parse.
 */
function bestRowsPerSec(m: Measured, rows: number, bytes: number, bareRowsPerSec?: number): number {
  const computeMs = bareRowsPerSec ? (rows / bareRowsPerSec) * 1000 : 0;
  return rows / (floorWallMs(m.floors, rows, bytes, computeMs) / 1000);
}

/** The figures the issue asks for, in its order. */
export function issueFigures(m: Measured): Figure[] {
  const peak = peakRss(m);
  const best = bestRowsPerSec(m, m.rows, m.dataBytes);
  const perRow = m.dataBytes / m.rows;
  const ceiling = (model: ModelRuns) =>
    bestRowsPerSec(m, model.run.rows, model.run.rows * perRow, model.bare.rowsPerSec) /
    model.bare.rowsPerSec;
  const coldMax =
    m.coldStart.length > 0 ? Math.max(...m.coldStart.map((c) => c.totalMs)) : undefined;
  const L = m.logistic.run;
  const rowsLabel = fmtInt(m.rows);
  return [
    {
      name: `logistic ${rowsLabel}: wall rows/s ÷ DuckDB parse-only`,
      ours: L.wallRowsPerSec,
      anchor: m.duck.rowsPerSec,
      ratio: L.wallRowsPerSec / m.duck.rowsPerSec,
      byJob: L.rowsPerSec / m.duck.rowsPerSec,
      ceiling: best / m.duck.rowsPerSec,
      target: { min: 0.7 },
      today: "0.24 (1M)",
    },
    {
      name: `logistic ${fmtInt(m.scaleRows)}: wall rows/s ÷ DuckDB parse-only`,
      ours: m.scale?.run.wallRowsPerSec,
      anchor: m.scale?.duck.rowsPerSec,
      ratio: m.scale ? m.scale.run.wallRowsPerSec / m.scale.duck.rowsPerSec : undefined,
      byJob: m.scale ? m.scale.run.rowsPerSec / m.scale.duck.rowsPerSec : undefined,
      ceiling: m.scale
        ? bestRowsPerSec(m, m.scale.rows, m.scale.bytes) / m.scale.duck.rowsPerSec
        : undefined,
      target: { min: 1.0 },
      today: "0.33",
      missing: m.quick ? "skipped (--quick)" : undefined,
    },
    {
      name: `logistic ${rowsLabel}: wall rows/s ÷ pandas script`,
      ours: L.wallRowsPerSec,
      anchor: m.pandas?.rowsPerSec,
      ratio: m.pandas ? L.wallRowsPerSec / m.pandas.rowsPerSec : undefined,
      byJob: m.pandas ? L.rowsPerSec / m.pandas.rowsPerSec : undefined,
      ceiling: m.pandas ? best / m.pandas.rowsPerSec : undefined,
      target: { min: 4 },
      today: "1.3",
      missing: m.pandasMissing ? `skipped: ${m.pandasMissing}` : undefined,
    },
    {
      name: `logistic ${rowsLabel}: wall rows/s ÷ csv-parse + onnxruntime script`,
      ours: L.wallRowsPerSec,
      anchor: m.hand.rowsPerSec,
      ratio: L.wallRowsPerSec / m.hand.rowsPerSec,
      byJob: L.rowsPerSec / m.hand.rowsPerSec,
    },
    {
      name: `logistic ${rowsLabel}: wall rows/s ÷ bare onnxruntime`,
      ours: L.wallRowsPerSec,
      anchor: m.logistic.bare.rowsPerSec,
      ratio: L.wallRowsPerSec / m.logistic.bare.rowsPerSec,
      byJob: L.rowsPerSec / m.logistic.bare.rowsPerSec,
    },
    {
      name: "MLP 32→256→256→1: wall rows/s ÷ bare onnxruntime",
      ours: m.mlp.run.wallRowsPerSec,
      anchor: m.mlp.bare.rowsPerSec,
      ratio: m.mlp.run.wallRowsPerSec / m.mlp.bare.rowsPerSec,
      byJob: m.mlp.run.rowsPerSec / m.mlp.bare.rowsPerSec,
      ceiling: ceiling(m.mlp),
      target: { min: 0.5 },
      today: "0.17 wall, 0.30 job",
    },
    {
      name: "MLP 32→1024→1024→1: wall rows/s ÷ bare onnxruntime",
      ours: m.heavy.run.wallRowsPerSec,
      anchor: m.heavy.bare.rowsPerSec,
      ratio: m.heavy.run.wallRowsPerSec / m.heavy.bare.rowsPerSec,
      byJob: m.heavy.run.rowsPerSec / m.heavy.bare.rowsPerSec,
      ceiling: ceiling(m.heavy),
      target: { min: 0.9 },
      today: "0.83 job",
    },
    {
      name: `checkpoint every ${fmtInt(m.checkpoints.every[0])} vs every ${fmtInt(m.checkpoints.every[1])}: wall overhead`,
      value: pct(m.checkpoints.overheadPct),
      detail: `${secs(m.checkpoints.small.wallMs)} vs ${secs(m.checkpoints.large.wallMs)} (medians; the figure is the median pair's); by job durationMs ${pct(m.checkpoints.overheadJobPct)}; floor ${pct(m.checkpoints.floor.pct)} (${fmtInt(m.checkpoints.floor.extraCommits)} more durable part writes at ${m.checkpoints.floor.writeCpuMs.toFixed(2)} ms CPU)`,
      ratio: m.checkpoints.overheadPct,
      target: { max: 5, unit: "%" },
      today: "+12 to +22%",
    },
    {
      name: "peak RSS per worker (all runs)",
      value: fmtMB(peak.bytes),
      detail: peak.label ? `in ${peak.label}` : "",
      ratio: peak.bytes / 1e6,
      target: { max: 300, unit: " MB" },
    },
    {
      name: "function cold start, bundle load → first answer (slowest)",
      value: coldMax === undefined ? "?" : `${coldMax.toFixed(0)} ms`,
      detail: m.coldStart.map((c) => `${c.fn}/${c.backend} ${c.totalMs.toFixed(0)} ms`).join(", "),
      ratio: coldMax,
      target: { max: 300, unit: " ms", strict: true },
      missing: coldMax === undefined ? "cold start failed" : undefined,
    },
  ];
}
