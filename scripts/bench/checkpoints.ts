/**
 * The checkpoint figure: `batch-infer run` with a checkpoint every `small` records
 * against every `large`, in interleaved pairs, and the floor under the difference
 * (the extra checkpoints' barest durable part writes, measured here).
 */
import { cpus } from "node:os";
import type { CliRunResult } from "./cli-run.ts";
import { durableWriteCpuMs } from "./durable-write.ts";
import type { Measured } from "./figures.ts";
import { fmtInt, median, secs } from "./format.ts";

/**
 * `pairs` interleaved pairs of runs (`run(every)` runs the CLI), and the median of each
 * pair's ratio: a few percent is measured on a machine whose run-to-run noise is ±10%,
 * and a pair shares its noise.
 */
export async function measureCheckpoints(
  every: [small: number, large: number],
  pairs: number,
  run: (checkpointEvery: number) => Promise<CliRunResult>,
): Promise<Measured["checkpoints"]> {
  const [small, large] = every;
  const smalls: CliRunResult[] = [];
  const larges: CliRunResult[] = [];
  for (let i = 0; i < pairs; i++) {
    smalls.push(await run(small));
    larges.push(await run(large));
  }
  const pairRatio = (key: (r: CliRunResult) => number) => {
    const ratios = smalls
      .map((s, i) => key(s) / key(larges[i] as CliRunResult))
      .sort((a, b) => a - b);
    return ((ratios[ratios.length >> 1] ?? 1) - 1) * 100;
  };
  const smallRun = median(smalls, (r) => r.wallMs);
  const largeRun = median(larges, (r) => r.wallMs);
  const overheadPct = pairRatio((r) => r.wallMs);
  // The floor: each extra checkpoint's part made durable at least as cheaply as the
  // barest durable write can, its CPU spread over the machine's cores.
  const extraCommits = smallRun.commits - largeRun.commits;
  const partBytes = smallRun.partBytes / Math.max(1, smallRun.commits);
  // The machine's CPU per write, not only this process's: an fsync sets the kernel's
  // journal threads to work, and on 2 cores that competes with scoring as much.
  const write = await durableWriteCpuMs(partBytes);
  const writeCpuMs = write.machineMs;
  const cores = cpus().length;
  const floorPct = ((extraCommits * writeCpuMs) / cores / largeRun.wallMs) * 100;
  console.log(
    `  overhead ${overheadPct.toFixed(1)}% (median of ${pairs} pairs' ratios); floor: ${fmtInt(extraCommits)} more checkpoints × ${writeCpuMs.toFixed(2)} ms of machine CPU (${write.processMs.toFixed(2)} ms in the writing process) for the barest durable write of a ${fmtInt(partBytes)}-byte part ÷ ${cores} cores = +${floorPct.toFixed(1)}% of ${secs(largeRun.wallMs)}`,
  );
  return {
    every,
    small: smallRun,
    large: largeRun,
    all: [...smalls, ...larges],
    overheadPct,
    overheadJobPct: pairRatio((r) => r.durationMs),
    floor: { pct: floorPct, extraCommits, writeCpuMs, partBytes },
  };
}
