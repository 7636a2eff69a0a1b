/**
 * CUDA in onnxruntime-node: whether its execution provider loads (and
 * onnxruntime's reason when not), and bare CUDA throughput on synthetic
 * inputs of the model's declared types.
 */
import { spawnSync } from "node:child_process";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import { ROOT } from "../bench/data.ts";

/** The onnxruntime-node module. */
export type Ort = typeof import("onnxruntime-node");

/** Symbolic non-batch dimensions (sequence length) of a synthetic input. */
const SEQ_LEN = 128;

/** Whether a CUDA session could be created, and why not. */
export interface CudaProbe {
  ok: boolean;
  /** onnxruntime's error, first line. */
  error?: string;
  /** The native log's own account (e.g. which library failed to load and why). */
  nativeReason?: string;
  supportedBackends: unknown;
}

/**
 * Create a CUDA-only session in a child process: onnxruntime writes the real
 * reason (the missing library, "no CUDA-capable device") to the native log on
 * stderr, not into the JS error.
 */
export function probeCuda(modelPath: string, env: NodeJS.ProcessEnv = {}): CudaProbe {
  const code = `
    const ort = require("onnxruntime-node");
    const out = { supportedBackends: ort.listSupportedBackends() };
    ort.InferenceSession.create(${JSON.stringify(modelPath)}, { executionProviders: [{ name: "cuda", deviceId: 0 }] })
      .then(() => { out.ok = true; })
      .catch((e) => { out.ok = false; out.error = String(e && e.message || e).split("\\n")[0]; })
      .finally(() => { process.stdout.write(JSON.stringify(out)); });`;
  const r = spawnSync(process.execPath, ["-e", code], {
    encoding: "utf8",
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  let out: CudaProbe;
  try {
    out = JSON.parse(r.stdout) as CudaProbe;
  } catch {
    return {
      ok: false,
      error: `the probe process exited ${r.status ?? r.signal}: ${r.stderr.trim().split("\n").at(-1)}`,
      supportedBackends: null,
    };
  }
  // Native log lines look like "[E:onnxruntime:…] … : FAIL : <reason>"; keep the last reason.
  const reasons = r.stderr
    // Colour codes: ESC [ … m (built from a string: a literal ESC in a regex is a lint error).
    .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "")
    .split("\n")
    .map((l) => /FAIL : (.*)$/.exec(l)?.[1] ?? /\[E:onnxruntime[^\]]*\]\s*(.*)$/.exec(l)?.[1])
    .filter((x): x is string => Boolean(x));
  const nativeReason = reasons.at(-1);
  return { ...out, ...(nativeReason ? { nativeReason } : {}) };
}

/** A synthetic batch of the model's declared inputs: floats, small token ids, all-ones masks. */
export function syntheticFeeds(
  ort: Ort,
  session: InferenceSession,
  batch: number,
): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    let symbolic = 0;
    const dims = meta.shape.map((d) =>
      typeof d === "number" && d > 0 ? d : symbolic++ === 0 ? batch : SEQ_LEN,
    );
    const size = dims.reduce((a, b) => a * b, 1);
    const mask = /mask/i.test(meta.name);
    switch (meta.type) {
      case "float32": {
        const data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = Math.sin(i) * 2;
        feeds[meta.name] = new ort.Tensor("float32", data, dims);
        break;
      }
      case "int64": {
        const data = new BigInt64Array(size);
        for (let i = 0; i < size; i++) data[i] = mask ? 1n : BigInt(1 + (i % 97));
        feeds[meta.name] = new ort.Tensor("int64", data, dims);
        break;
      }
      case "int32": {
        const data = new Int32Array(size);
        for (let i = 0; i < size; i++) data[i] = mask ? 1 : 1 + (i % 97);
        feeds[meta.name] = new ort.Tensor("int32", data, dims);
        break;
      }
      default:
        throw new Error(`input ${meta.name}: no synthetic data for type ${meta.type}`);
    }
  }
  return feeds;
}

export interface BareCuda {
  rowsPerSec: number;
  rows: number;
  seconds: number;
  batch: number;
}

/** Bare onnxruntime on CUDA: the same synthetic batch run back to back for `minMs`. */
export async function bareCuda(
  ort: Ort,
  modelPath: string,
  batch: number,
  minMs: number,
): Promise<BareCuda> {
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: [{ name: "cuda", deviceId: 0 }],
    graphOptimizationLevel: "all",
  });
  try {
    const feeds = syntheticFeeds(ort, session, batch);
    // Outputs come back to the host each run, as the pipeline needs them.
    for (let i = 0; i < 5; i++) await session.run(feeds);
    let rows = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < minMs) {
      await session.run(feeds);
      rows += batch;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rowsPerSec: rows / seconds, rows, seconds, batch };
  } finally {
    await session.release();
  }
}
