import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { InferenceError, ModelError } from "../core/errors.ts";
import type { LoadedModel } from "./descriptor.ts";

/** onnxruntime session settings a user may tune. */
export interface ScorerOptions {
  /** Intra-op threads for onnxruntime (default 1: the worker's main thread parses meanwhile). */
  intraOpThreads?: number;
  /** Execution providers in order of preference, e.g. ["cuda", "cpu"] on the GPU image. */
  executionProviders?: string[];
  /**
   * Run inference on a worker thread so parsing, heartbeats and I/O overlap it.
   * "auto" (default): on a GPU (any non-CPU provider) always, so the device works
   * while the CPU parses; on CPU, a batch is timed once and a model whose batch runs
   * in under INLINE_BATCH_MS stays on the calling thread. Measured on 2 cores with 2
   * workers, the hand-off then costs more than it overlaps, and blocking the event
   * loop that briefly never starves a heartbeat (they fire every visibility/3).
   */
  thread?: boolean | "auto";
  /** Batch size used to time the model for "auto" (default 4096). */
  batchSize?: number;
}

/** Batches faster than this stay on the calling thread under thread: "auto". */
export const INLINE_BATCH_MS = 50;

/** Model outputs for one batch, one Float32Array per descriptor output (length = rows). */
export type BatchScores = Float32Array[];

/** Runs batches through one onnxruntime session. */
export interface Scorer {
  /** Score `rows` rows of `features` (row-major, width floats each). The buffer is handed over: don't reuse it. */
  score(features: Float32Array, rows: number): Promise<BatchScores>;
  close(): Promise<void>;
}

interface ThreadInit {
  ortPath: string;
  model: Uint8Array;
  inputName: string;
  width: number;
  outputs: { name: string; index: number }[];
  intraOpThreads: number;
  executionProviders: string[];
}

// The thread body is plain JS run with `eval: true`, so the same code works under tsx,
// in the esbuild bundle and in the worker image without a separate entry file.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ortPath);
let session;
async function init() {
  session = await ort.InferenceSession.create(workerData.model, {
    intraOpNumThreads: workerData.intraOpThreads,
    interOpNumThreads: 1,
    executionProviders: workerData.executionProviders,
    graphOptimizationLevel: "all",
  });
}
const ready = init();
parentPort.on("message", async (msg) => {
  try {
    await ready;
    if (msg.type === "meta") {
      parentPort.postMessage({ id: msg.id, inputNames: session.inputNames, outputNames: session.outputNames });
      return;
    }
    const input = new ort.Tensor("float32", msg.features.subarray(0, msg.rows * workerData.width), [msg.rows, workerData.width]);
    const result = await session.run({ [workerData.inputName]: input });
    const out = [];
    for (const o of workerData.outputs) {
      const t = result[o.name];
      if (!t) throw new Error("model produced no output named " + o.name);
      const data = t.data;
      const per = msg.rows === 0 ? 0 : data.length / msg.rows;
      const col = new Float32Array(msg.rows);
      if (per === 1) col.set(data.subarray(0, msg.rows));
      else for (let r = 0; r < msg.rows; r++) col[r] = data[r * per + o.index];
      out.push(col);
    }
    parentPort.postMessage({ id: msg.id, out }, out.map((c) => c.buffer));
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  }
});
`;

function ortPath(): string {
  return createRequire(import.meta.url).resolve("onnxruntime-node");
}

/** Scorer whose session lives on a worker thread (inference never blocks the event loop). */
class ThreadScorer implements Scorer {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private failed: Error | undefined;

  constructor(init: ThreadInit) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: init });
    this.worker.on("message", (msg: Record<string, unknown>) => {
      const p = this.pending.get(msg.id as number);
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (typeof msg.error === "string") p.reject(new InferenceError(msg.error));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      this.failed = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on("error", (err) =>
      fail(new InferenceError(`inference thread failed: ${err.message}`, { cause: err })),
    );
    this.worker.on("exit", (code) => {
      if (code !== 0) fail(new InferenceError(`inference thread exited with code ${code}`));
    });
  }

  request(
    msg: Record<string, unknown>,
    transfer: ArrayBuffer[] = [],
  ): Promise<Record<string, unknown>> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  async score(features: Float32Array, rows: number): Promise<BatchScores> {
    const reply = await this.request({ type: "run", features, rows }, [
      features.buffer as ArrayBuffer,
    ]);
    return reply.out as BatchScores;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Scorer running the session on the calling thread (used by the benchmark's bare baseline too). */
class InlineScorer implements Scorer {
  constructor(
    private readonly session: import("onnxruntime-node").InferenceSession,
    private readonly ort: typeof import("onnxruntime-node"),
    private readonly init: ThreadInit,
  ) {}

  async score(features: Float32Array, rows: number): Promise<BatchScores> {
    const input = new this.ort.Tensor("float32", features.subarray(0, rows * this.init.width), [
      rows,
      this.init.width,
    ]);
    let result: import("onnxruntime-node").InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run({ [this.init.inputName]: input });
    } catch (err) {
      throw new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
    }
    return this.init.outputs.map((o) => {
      const t = result[o.name];
      if (!t) throw new InferenceError(`model produced no output named ${o.name}`);
      const data = t.data as Float32Array;
      const per = rows === 0 ? 0 : data.length / rows;
      const col = new Float32Array(rows);
      if (per === 1) col.set(data.subarray(0, rows));
      else for (let r = 0; r < rows; r++) col[r] = data[r * per + o.index] as number;
      return col;
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Create a scorer for a loaded model and check that the ONNX graph matches the
 * descriptor (input name, output names, feature width) with a one-row dry run,
 * so a mismatch fails the job up front with a ModelError saying what to fix.
 */
export async function createScorer(
  model: LoadedModel,
  options: ScorerOptions = {},
): Promise<Scorer> {
  if ((options.thread ?? "auto") !== "auto") return createScorerOn(model, options);
  const gpu = (options.executionProviders ?? ["cpu"]).some((p) => p !== "cpu");
  if (gpu) return createScorerOn(model, { ...options, thread: true });
  const inline = await createScorerOn(model, { ...options, thread: false });
  // Time a small batch and scale up: probing a full batch of a heavy model would
  // cost a noticeable part of a short job's start.
  const rows = options.batchSize ?? 4096;
  const probeRows = Math.min(rows, 256);
  const probe = () => inline.score(new Float32Array(probeRows * model.width), probeRows);
  await probe();
  const t0 = performance.now();
  await probe();
  await probe();
  const batchMs = ((performance.now() - t0) / 2) * (rows / probeRows);
  if (batchMs <= INLINE_BATCH_MS) return inline;
  await inline.close();
  return createScorerOn(model, { ...options, thread: true });
}

async function createScorerOn(model: LoadedModel, options: ScorerOptions): Promise<Scorer> {
  const init: ThreadInit = {
    ortPath: ortPath(),
    model: model.onnxBytes,
    inputName: model.descriptor.input.name,
    width: model.width,
    outputs: model.descriptor.outputs.map((o) => ({ name: o.name, index: o.index ?? 0 })),
    intraOpThreads: options.intraOpThreads ?? 1,
    executionProviders: options.executionProviders ?? ["cpu"],
  };
  let scorer: Scorer;
  let names: { inputNames: string[]; outputNames: string[] };
  try {
    if (options.thread ?? true) {
      const t = new ThreadScorer(init);
      scorer = t;
      names = (await t.request({ type: "meta" })) as unknown as typeof names;
    } else {
      const ort = await import("onnxruntime-node");
      const session = await ort.InferenceSession.create(init.model, {
        intraOpNumThreads: init.intraOpThreads,
        interOpNumThreads: 1,
        executionProviders: init.executionProviders,
        graphOptimizationLevel: "all",
      });
      scorer = new InlineScorer(session, ort, init);
      names = { inputNames: [...session.inputNames], outputNames: [...session.outputNames] };
    }
  } catch (err) {
    throw new ModelError(
      `cannot load ONNX model ${model.onnxPath}: ${(err as Error).message} (is it an ONNX file?)`,
      { cause: err },
    );
  }
  const fail = async (message: string): Promise<never> => {
    await scorer.close();
    throw new ModelError(message);
  };
  if (!names.inputNames.includes(init.inputName)) {
    await fail(
      `descriptor input "${init.inputName}" is not an input of ${model.onnxPath}; the model's inputs are ${JSON.stringify(names.inputNames)}`,
    );
  }
  for (const o of init.outputs) {
    if (!names.outputNames.includes(o.name)) {
      await fail(
        `descriptor output "${o.name}" is not an output of ${model.onnxPath}; the model's outputs are ${JSON.stringify(names.outputNames)}`,
      );
    }
  }
  try {
    await scorer.score(new Float32Array(init.width), 1);
  } catch (err) {
    await fail(
      `model ${model.onnxPath} does not accept a [batch, ${init.width}] float32 "${init.inputName}" tensor (the descriptor's ${model.descriptor.features.length} features make ${init.width} values): ${(err as Error).message}`,
    );
  }
  return scorer;
}
