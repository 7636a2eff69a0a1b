/**
 * The fallback rule, checked end to end: with ORT_EXECUTION_PROVIDERS=cuda,cpu
 * where CUDA can't be used, `batch-infer run` still completes (on cpu) and a
 * worker logs, at warn or above, that it fell back and onnxruntime's reason.
 */
import { CliRunError, type CliRunResult, runCli } from "../bench/cli-run.ts";
import { ensureDataset, type ensureModels } from "../bench/data.ts";
import { fmtInt } from "../bench/format.ts";
import { probeCuda } from "./cuda.ts";

/** The check's verdict. */
export interface FallbackCheck {
  ok: boolean;
  detail: string;
  /** The worker log line that reported the fallback. */
  logLine?: string;
  /** What onnxruntime said when asked for CUDA under the same environment. */
  ortReason?: string;
}

/** JSON log lines at warn or above (the workers' stderr passes through the CLI's). */
function warnLines(stderr: string): { raw: string; text: string }[] {
  const out: { raw: string; text: string }[] = [];
  for (const raw of stderr.split("\n")) {
    if (!raw.startsWith("{")) continue;
    try {
      const entry = JSON.parse(raw) as { level?: string };
      if (entry.level === "warn" || entry.level === "error") {
        out.push({ raw, text: JSON.stringify(entry).toLowerCase() });
      }
    } catch {
      // Not a log line.
    }
  }
  return out;
}

export async function fallbackCheck(
  models: Awaited<ReturnType<typeof ensureModels>>,
  options: { cudaUsable: boolean; workers: number },
): Promise<FallbackCheck> {
  const { cudaUsable } = options;
  // On a GPU machine, hide the GPU: the CUDA provider then loads but finds no device.
  const env: NodeJS.ProcessEnv = {
    ORT_EXECUTION_PROVIDERS: "cuda,cpu",
    ...(cudaUsable ? { CUDA_VISIBLE_DEVICES: "" } : {}),
  };
  const probe = probeCuda(models.logistic.modelPath, env);
  if (probe.ok) {
    return {
      ok: false,
      detail: "CUDA still loads with the GPU hidden: can't exercise the fallback on this machine",
    } satisfies FallbackCheck;
  }
  const ortReason = probe.error ?? "";
  const rows = 20_000;
  const input = await ensureDataset(rows, 2026);
  let run: CliRunResult;
  try {
    run = await runCli({
      label: "gpu-fallback",
      model: models.logistic,
      inputFile: input,
      rows,
      workers: options.workers,
      partitionBytes: 1024 * 1024,
      env,
    });
  } catch (err) {
    const stderr = err instanceof CliRunError ? err.stderr : "";
    const last = warnLines(stderr).at(-1)?.raw ?? stderr.trim().split("\n").at(-1) ?? "";
    return {
      ok: false,
      detail: `the job did not complete with ORT_EXECUTION_PROVIDERS=cuda,cpu: ${String(err).split("\n")[0]}; last worker log: ${last.slice(0, 600)}`,
      ortReason,
    } satisfies FallbackCheck;
  }
  const lines = warnLines(run.stderr).filter(
    (l) => l.text.includes("cuda") && l.text.includes("cpu"),
  );
  const reasonKey = ortReason.toLowerCase().slice(0, 60);
  const withReason = lines.find((l) => reasonKey !== "" && l.text.includes(reasonKey));
  if (withReason) {
    return {
      ok: true,
      detail: `job completed on cpu (${fmtInt(run.rows)} rows) and a worker logged the fallback with onnxruntime's reason`,
      logLine: withReason.raw,
      ortReason,
    } satisfies FallbackCheck;
  }
  return {
    ok: false,
    detail:
      lines.length > 0
        ? `job completed on cpu, but the fallback log line doesn't carry onnxruntime's reason ("${ortReason}")`
        : `job completed, but no worker logged (at warn or above) that it fell back from cuda to cpu`,
    ...(lines[0] ? { logLine: lines[0].raw } : {}),
    ortReason,
  } satisfies FallbackCheck;
}
