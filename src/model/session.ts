/**
 * An onnxruntime session that runs named, typed feeds and returns named outputs,
 * inline or on its own inference thread, on the first execution provider of a
 * preference list that works here.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { InferenceError, ModelError } from "../core/errors.ts";
import type { Feeds, Outputs, Tensor, TensorType } from "./tensors.ts";

/** onnxruntime settings a user may tune. */
export interface SessionOptions {
  /** Intra-op threads (default 1: the worker's main thread parses meanwhile). */
  intraOpThreads?: number;
  /**
   * Execution providers in order of preference, e.g. ["cuda", "cpu"] on the GPU
   * image. A provider that can't load here (no CUDA libraries, no device) is skipped
   * with a reason in `fallbacks`; only when none works is the model refused.
   */
  executionProviders?: string[];
  /** Run on a worker thread (true), on the calling thread (false). */
  thread?: boolean;
}

/** Why a preferred execution provider was skipped. */
export interface ProviderFallback {
  provider: string;
  reason: string;
}

/** Input or output metadata as onnxruntime reports it. */
export interface ValueMeta {
  name: string;
  /** False for sequences and maps (e.g. a scikit-learn ZipMap output). */
  isTensor: boolean;
  /** Element type of a tensor ("float32", "float64", "int64", ...). */
  type?: string;
  /** Shape of a tensor; a string is a symbolic dim; empty when unknown. */
  shape?: (number | string)[];
}

/** A loaded session. */
export interface ModelSession {
  readonly inputs: ValueMeta[];
  readonly outputs: ValueMeta[];
  /** The execution provider the session runs on. */
  readonly provider: string;
  /** Providers skipped on the way there, with the reason. */
  readonly fallbacks: ProviderFallback[];
  /** True when inference runs on its own thread. */
  readonly threaded: boolean;
  /** Run one batch; typed arrays in `feeds` are handed over (transferred to the thread): don't reuse them. */
  run(feeds: Feeds): Promise<Outputs>;
  close(): Promise<void>;
}

interface InitMessage {
  ortPath: string;
  model: Uint8Array;
  intraOpThreads: number;
  providers: string[];
}

/**
 * Creates a session on the first provider of `providers` that loads; shared by the
 * inline path and the thread (as source text, so it needs no separate entry file
 * under tsx, in the esbuild bundle or in the worker image).
 */
const OPEN_SOURCE = `function metaOf(names, metadata) {
  return names.map((name, i) => {
    const m = (metadata && metadata[i]) || {};
    return m.isTensor === false
      ? { name, isTensor: false }
      : { name, isTensor: true, type: m.type, shape: m.shape ? Array.from(m.shape) : [] };
  });
}
async function openOnFirstProvider(ort, model, intraOpThreads, providers) {
  const fallbacks = [];
  let lastError;
  for (let i = 0; i < providers.length; i++) {
    const provider = providers[i];
    try {
      const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: intraOpThreads,
        interOpNumThreads: 1,
        // The rest of the list stays behind this provider: onnxruntime assigns the
        // nodes it can't run (e.g. on CUDA) to the next one, as it normally does.
        executionProviders: providers.slice(i),
        graphOptimizationLevel: "all",
        logSeverityLevel: i + 1 < providers.length ? 4 : 3,
      });
      return { session, provider, fallbacks };
    } catch (err) {
      lastError = err;
      if (i + 1 < providers.length) fallbacks.push({ provider, reason: String(err && err.message ? err.message : err).split("\\n")[0] });
    }
  }
  const e = new Error(String(lastError && lastError.message ? lastError.message : lastError));
  e.fallbacks = fallbacks;
  throw e;
}`;

const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ortPath);
${OPEN_SOURCE}
let session;
const ready = openOnFirstProvider(ort, workerData.model, workerData.intraOpThreads, workerData.providers).then(
  (opened) => {
    session = opened.session;
    parentPort.postMessage({ id: 0, inputs: metaOf(session.inputNames, session.inputMetadata), outputs: metaOf(session.outputNames, session.outputMetadata), provider: opened.provider, fallbacks: opened.fallbacks });
  },
  (err) => parentPort.postMessage({ id: 0, error: String(err.message), fallbacks: err.fallbacks || [] }),
);
parentPort.on("message", async (msg) => {
  try {
    await ready;
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const result = await session.run(feeds);
    const out = {};
    const transfer = [];
    for (const [name, t] of Object.entries(result)) {
      let data = t.data;
      if (data.byteOffset !== 0 || data.buffer.byteLength !== data.byteLength) data = data.slice();
      out[name] = { type: t.type, data, dims: Array.from(t.dims) };
      transfer.push(data.buffer);
    }
    parentPort.postMessage({ id: msg.id, out }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  }
});
`;

type OrtModule = typeof import("onnxruntime-node");
type OpenFn = (
  ort: OrtModule,
  model: Uint8Array,
  intraOpThreads: number,
  providers: string[],
) => Promise<{
  session: import("onnxruntime-node").InferenceSession;
  provider: string;
  fallbacks: ProviderFallback[];
}>;

// The same functions for the inline path (built once from the shared source).
const shared = new Function(`${OPEN_SOURCE}; return { openOnFirstProvider, metaOf };`)() as {
  openOnFirstProvider: OpenFn;
  metaOf: (names: readonly string[], metadata: unknown) => ValueMeta[];
};

function ortPath(): string {
  return createRequire(import.meta.url).resolve("onnxruntime-node");
}

function toTensor(t: { type: string; data: unknown; dims: readonly number[] }): Tensor {
  return { type: t.type as TensorType, data: t.data as Tensor["data"], dims: Array.from(t.dims) };
}

/** The error a session that could not be created on any provider raises. */
function openError(where: string, err: unknown, providers: string[]): ModelError {
  const fallbacks = ((err as { fallbacks?: ProviderFallback[] }).fallbacks ?? []).map(
    (f) => `${f.provider}: ${f.reason}`,
  );
  const message = (err as Error).message ?? String(err);
  const providerProblem = /execution ?provider|shared library|providers_|cuda|tensorrt/i.test(
    message,
  );
  if (providerProblem) {
    return new ModelError(
      `no execution provider of [${providers.join(", ")}] can run ${where} here: ${[...fallbacks, `${providers.at(-1)}: ${message.split("\n")[0]}`].join("; ")} (set ORT_EXECUTION_PROVIDERS to providers this machine has, e.g. cpu)`,
      { cause: err },
    );
  }
  return new ModelError(`cannot load ONNX model ${where}: ${message} (is it an ONNX file?)`, {
    cause: err,
  });
}

class ThreadSession implements ModelSession {
  inputs: ValueMeta[] = [];
  outputs: ValueMeta[] = [];
  provider = "";
  fallbacks: ProviderFallback[] = [];
  readonly threaded = true;
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private failed: Error | undefined;
  readonly opened: Promise<void>;

  constructor(init: InitMessage, where: string) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: init });
    let settleOpen: { resolve: () => void; reject: (e: Error) => void } | undefined;
    this.opened = new Promise((resolve, reject) => {
      settleOpen = { resolve, reject };
    });
    this.worker.on("message", (msg: Record<string, unknown>) => {
      if (msg.id === 0) {
        if (typeof msg.error === "string") {
          settleOpen?.reject(
            openError(
              where,
              Object.assign(new Error(msg.error), { fallbacks: msg.fallbacks }),
              init.providers,
            ),
          );
          return;
        }
        this.inputs = msg.inputs as ValueMeta[];
        this.outputs = msg.outputs as ValueMeta[];
        this.provider = msg.provider as string;
        this.fallbacks = msg.fallbacks as ProviderFallback[];
        settleOpen?.resolve();
        return;
      }
      const p = this.pending.get(msg.id as number);
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (typeof msg.error === "string")
        p.reject(new InferenceError(`inference failed: ${msg.error}`));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      this.failed = err;
      settleOpen?.reject(err);
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

  async run(feeds: Feeds): Promise<Outputs> {
    if (this.failed) throw this.failed;
    const id = this.nextId++;
    const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
    const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, feeds }, transfer);
    });
    return reply.out as Outputs;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

class InlineSession implements ModelSession {
  readonly threaded = false;
  constructor(
    private readonly session: import("onnxruntime-node").InferenceSession,
    private readonly ort: OrtModule,
    readonly provider: string,
    readonly fallbacks: ProviderFallback[],
  ) {}

  get inputs(): ValueMeta[] {
    return shared.metaOf(this.session.inputNames, this.session.inputMetadata);
  }

  get outputs(): ValueMeta[] {
    return shared.metaOf(this.session.outputNames, this.session.outputMetadata);
  }

  async run(feeds: Feeds): Promise<Outputs> {
    const input: Record<string, import("onnxruntime-node").Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      input[name] = new this.ort.Tensor(t.type, t.data as Float32Array, t.dims);
    }
    let result: import("onnxruntime-node").InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(input);
    } catch (err) {
      throw new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
    }
    const out: Outputs = {};
    for (const [name, t] of Object.entries(result)) out[name] = toTensor(t);
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Open `model` (ONNX bytes; `where` names it in errors) on the first execution
 * provider that works. Throws ModelError: "not an ONNX file", or "no execution
 * provider of [...] can run it here" with each provider's reason.
 */
export async function openModelSession(
  model: Uint8Array,
  where: string,
  options: SessionOptions = {},
): Promise<ModelSession> {
  const providers = options.executionProviders?.length ? options.executionProviders : ["cpu"];
  const intraOpThreads = options.intraOpThreads ?? 1;
  if (options.thread ?? true) {
    const s = new ThreadSession({ ortPath: ortPath(), model, intraOpThreads, providers }, where);
    try {
      await s.opened;
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }
  const ort = await import("onnxruntime-node");
  try {
    const opened = await shared.openOnFirstProvider(ort, model, intraOpThreads, providers);
    return new InlineSession(opened.session, ort, opened.provider, opened.fallbacks);
  } catch (err) {
    throw openError(where, err, providers);
  }
}
