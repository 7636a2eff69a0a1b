/**
 * Runs named, typed feeds through one onnxruntime session and returns named outputs —
 * the scorer the task seam needs (int64 ids for text, uint8 pixels for images) — on
 * its own thread: a text batch takes seconds, and the event loop must stay free for
 * heartbeats and for tokenizing the next window meanwhile. Calls queue on the thread
 * and run one at a time, so a caller may submit the next batch before the last one
 * returns and the session never waits for the main thread.
 *
 * (Not text-specific; src/model/scorer.ts keeps the float32 row path for tabular.)
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { InferenceError, ModelError } from "../../core/errors.ts";
import type { Feeds, Outputs, TensorData, TensorType } from "../task.ts";

/** onnxruntime settings for a feeds scorer. */
export interface FeedsScorerOptions {
  /** Intra-op threads (default 1). */
  intraOpThreads?: number;
  executionProviders?: string[];
  /**
   * onnxruntime's CPU memory arena (default on). Off, each batch's intermediate
   * tensors are freed after the call instead of kept for the next one.
   */
  memoryArena?: boolean;
  /** Run on a worker thread (default true); false runs on the calling thread (tests, baselines). */
  thread?: boolean;
  /** Names the model in errors (e.g. its path). */
  where?: string;
}

/** A session that takes typed feeds. */
export interface FeedsScorer {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Run one batch. The feeds' buffers are handed over: don't reuse them. */
  run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
  close(): Promise<void>;
}

// Plain JS run with `eval: true`, like src/model/scorer.ts: works under tsx, in the
// bundle and in the worker image without a separate entry file.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ortPath);
let session;
const ready = ort.InferenceSession.create(workerData.model, {
  intraOpNumThreads: workerData.intraOpThreads,
  interOpNumThreads: 1,
  executionProviders: workerData.executionProviders,
  enableCpuMemArena: workerData.memoryArena,
  graphOptimizationLevel: "all",
}).then((s) => { session = s; });
let queue = Promise.resolve();
async function handle(msg) {
  try {
    await ready;
    if (msg.type === "meta") {
      parentPort.postMessage({ id: msg.id, inputNames: session.inputNames, outputNames: session.outputNames });
      return;
    }
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const result = await session.run(feeds, msg.outputNames);
    const outputs = {};
    const transfer = [];
    for (const [name, t] of Object.entries(result)) {
      // Copy into a buffer this thread owns, so it can be moved, not cloned, back.
      const data = t.data.slice();
      outputs[name] = { type: t.type, data, dims: [...t.dims] };
      transfer.push(data.buffer);
    }
    parentPort.postMessage({ id: msg.id, outputs }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  }
}
parentPort.on("message", (msg) => { queue = queue.then(() => handle(msg)); });
`;

function ortPath(): string {
  return createRequire(import.meta.url).resolve("onnxruntime-node");
}

class ThreadFeedsScorer implements FeedsScorer {
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private failed: Error | undefined;

  constructor(init: Record<string, unknown>) {
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

  async run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> {
    const buffers = new Set<ArrayBuffer>();
    for (const t of Object.values(feeds)) buffers.add(t.data.buffer as ArrayBuffer);
    const reply = await this.request(
      { type: "run", feeds, outputNames: outputNames ?? this.outputNames },
      [...buffers],
    );
    return reply.outputs as Outputs;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

class InlineFeedsScorer implements FeedsScorer {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  constructor(
    private readonly session: import("onnxruntime-node").InferenceSession,
    private readonly ort: typeof import("onnxruntime-node"),
  ) {
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  async run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> {
    const input: Record<string, import("onnxruntime-node").Tensor> = {};
    for (const [name, t] of Object.entries(feeds))
      input[name] = new this.ort.Tensor(t.type, t.data, t.dims);
    let result: import("onnxruntime-node").InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(input, outputNames ?? this.outputNames);
    } catch (err) {
      throw new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
    }
    const outputs: Outputs = {};
    for (const [name, t] of Object.entries(result)) {
      outputs[name] = { type: t.type as TensorType, data: t.data as TensorData, dims: [...t.dims] };
    }
    return outputs;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Create a feeds scorer for ONNX bytes. Throws ModelError when onnxruntime can't load them. */
export async function createFeedsScorer(
  onnxBytes: Uint8Array,
  options: FeedsScorerOptions = {},
): Promise<FeedsScorer> {
  const where = options.where ?? "the ONNX model";
  const init = {
    ortPath: ortPath(),
    model: onnxBytes,
    intraOpThreads: options.intraOpThreads ?? 1,
    executionProviders: options.executionProviders ?? ["cpu"],
    memoryArena: options.memoryArena ?? true,
  };
  try {
    if (options.thread ?? true) {
      const scorer = new ThreadFeedsScorer(init);
      try {
        const meta = await scorer.request({ type: "meta" });
        scorer.inputNames = meta.inputNames as string[];
        scorer.outputNames = meta.outputNames as string[];
      } catch (err) {
        await scorer.close();
        throw err;
      }
      return scorer;
    }
    const ort = await import("onnxruntime-node");
    const session = await ort.InferenceSession.create(onnxBytes, {
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: 1,
      executionProviders: init.executionProviders,
      enableCpuMemArena: init.memoryArena,
      graphOptimizationLevel: "all",
    });
    return new InlineFeedsScorer(session, ort);
  } catch (err) {
    throw new ModelError(`cannot load ${where} in onnxruntime: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
