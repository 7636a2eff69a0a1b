/**
 * The in-process paths of scripts/bench-text.ts, each run in a child process of its
 * own (so its peak RSS is its own): (a) bare onnxruntime on sorted token-budget
 * batches, (b) the transformers.js feature-extraction pipeline, (i) ours in process.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { readOwnedLines } from "../../src/records/line-reader.ts";
import type { LineBlock } from "../../src/sources/record-source.ts";
import type { RowSink } from "../../src/tasks/task.ts";
import { planBatches } from "../../src/tasks/text-embedding/batcher.ts";
import { embedInProcess } from "../../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer } from "../../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel, type TextModel } from "../../src/tasks/text-embedding/model-dir.ts";
import { toSequences } from "../../src/tasks/text-embedding/sequences.ts";
import { truncateChars } from "../../src/tasks/text-embedding/tokenizer.ts";

/** Batching and arena settings from the bench's flags (a, c and i batch the same way). */
export interface TextPathOptions {
  arena: boolean;
  tokenBudget?: number;
  attentionBudget?: number;
}

/** Documents per transformers.js call, in input order: what a JS user would write. */
export const TRANSFORMERS_BATCH = 32;

/** What one child measured. */
export interface PathResult {
  path: string;
  docs: number;
  tokens: number;
  seconds: number;
  /** CPU time of the whole process (all threads) over the timed part. */
  cpuSeconds: number;
  peakRssMB: number;
  note: string;
}

/** Starts a wall and CPU clock; the returned function reads both in seconds. */
export function clock(): () => { seconds: number; cpuSeconds: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 };
  };
}

/** Peak resident set of this process, MB. */
export function peakRssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** The corpus file as line blocks, as a job's source hands them to the encoder. */
export async function corpusBlocks(file: string): Promise<AsyncIterable<LineBlock>> {
  const size = (await stat(file)).size;
  const lines = readOwnedLines(createReadStream(file), {
    from: 0,
    fromIsRecordStart: true,
    end: size,
    maxLineBytes: 1 << 24,
  });
  return (async function* () {
    for await (const l of lines)
      yield { kind: "lines" as const, format: "jsonl" as const, lines: l };
  })();
}

/** A sink that formats each row as an output JSON line (the bytes are dropped). */
class JsonlCountingSink implements RowSink {
  rows = 0;
  bytes = 0;
  private parts: string[] = [];
  startRow(): void {
    this.parts = [];
  }
  keyBytes(buf: Buffer, start: number, end: number): void {
    this.parts.push(JSON.stringify(buf.toString("utf8", start, end)));
  }
  string(value: string | null): void {
    this.parts.push(JSON.stringify(value));
  }
  float32(value: number): void {
    this.parts.push(String(value));
  }
  float64(value: number): void {
    this.parts.push(String(value));
  }
  int(value: number): void {
    this.parts.push(String(value));
  }
  float32s(values: Float32Array): void {
    this.parts.push(`[${Array.from(values, (v) => v.toPrecision(9)).join(",")}]`);
  }
  strings(values: string[]): void {
    this.parts.push(JSON.stringify(values));
  }
  endRow(): void {
    this.rows++;
    this.bytes += this.parts.join(",").length + 3;
  }
}

export async function readTexts(file: string): Promise<string[]> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (JSON.parse(l) as { text: string }).text);
}

/** Real tokens of the corpus under the model's settings (the same numerator for every path). */
export function corpusSequences(model: TextModel, texts: string[]): Int32Array[] {
  const { settings, tokenizer } = model;
  return texts.map(
    (t) =>
      toSequences(
        tokenizer,
        tokenizer.encode(truncateChars(t, settings.maxChars)),
        settings.maxLength,
      ).sequences[0] as Int32Array,
  );
}

/** The bench model with the batching flags applied (a and c batch the same way). */
export async function benchModel(dir: string, o: TextPathOptions): Promise<TextModel> {
  const model = await loadTextModel({ descriptorPath: path.join(dir, "model", "descriptor.json") });
  if (o.tokenBudget) model.batching.tokenBudget = o.tokenBudget;
  if (o.attentionBudget) model.batching.attentionBudget = o.attentionBudget;
  return model;
}

async function childA(dir: string, threads: number, o: TextPathOptions): Promise<PathResult> {
  const ort = await import("onnxruntime-node");
  const model = await benchModel(dir, o);
  const texts = await readTexts(path.join(dir, "corpus.jsonl"));
  const sequences = corpusSequences(model, texts);
  const tokens = sequences.reduce((n, s) => n + s.length, 0);
  // One global sort: the least padding any batching of this corpus can have.
  const plan = planBatches(sequences, model.batching, {
    inputs: model.inputs,
    padId: model.tokenizer.padId,
    typeIdsOf: (n) => new Int32Array(n),
  });
  const session = await ort.InferenceSession.create(model.onnxBytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    enableCpuMemArena: o.arena,
    graphOptimizationLevel: "all",
  });
  const feeds = plan.batches.map((b) => {
    const f: Record<string, import("onnxruntime-node").Tensor> = {};
    for (const [name, t] of Object.entries(b.feeds))
      f[name] = new ort.Tensor(t.type, t.data, t.dims);
    return f;
  });
  await session.run(feeds[feeds.length - 1] ?? {}); // warm-up on the smallest batch
  const stop = clock();
  for (const f of feeds) await session.run(f);
  return {
    path: "a",
    docs: texts.length,
    tokens,
    ...stop(),
    peakRssMB: peakRssMB(),
    note: `${plan.batches.length} batches, padding ${pct(plan.paddedTokens, tokens)}`,
  };
}

async function childB(dir: string, threads: number, _o: TextPathOptions): Promise<PathResult> {
  const { env, pipeline } = await import("@huggingface/transformers");
  env.allowRemoteModels = false;
  env.localModelPath = dir;
  const extractor = await pipeline("feature-extraction", "model", {
    dtype: "fp32",
    device: "cpu",
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  const texts = await readTexts(path.join(dir, "corpus.jsonl"));
  const model = await loadTextModel({ descriptorPath: path.join(dir, "model", "descriptor.json") });
  const lengths = corpusSequences(model, texts).map((s) => s.length);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  let padded = 0;
  for (let i = 0; i < lengths.length; i += TRANSFORMERS_BATCH) {
    const batch = lengths.slice(i, i + TRANSFORMERS_BATCH);
    padded += batch.length * Math.max(...batch);
  }
  await extractor(texts.slice(0, 2), { pooling: "mean", normalize: true });
  const stop = clock();
  let rows = 0;
  for (let i = 0; i < texts.length; i += TRANSFORMERS_BATCH) {
    const out = await extractor(texts.slice(i, i + TRANSFORMERS_BATCH), {
      pooling: "mean",
      normalize: true,
    });
    rows += out.dims[0] as number;
  }
  const timed = stop();
  await extractor.dispose();
  return {
    path: "b",
    docs: rows,
    tokens,
    ...timed,
    peakRssMB: peakRssMB(),
    note: `batches of ${TRANSFORMERS_BATCH} in input order, padding ${pct(padded, tokens)}`,
  };
}

async function childI(dir: string, threads: number, o: TextPathOptions): Promise<PathResult> {
  const model = await benchModel(dir, o);
  const scorer = await createFeedsScorer(model.onnxBytes, {
    intraOpThreads: threads,
    memoryArena: o.arena,
  });
  // Warm-up, like (a): one short batch.
  await embedInProcess(
    model,
    scorer,
    [
      {
        kind: "rows",
        count: 1,
        firstRow: 0,
        columns: { id: ["w"], text: ["warm up"] },
      },
    ],
    new JsonlCountingSink(),
  );
  const sink = new JsonlCountingSink();
  const stop = clock();
  const stats = await embedInProcess(
    model,
    scorer,
    await corpusBlocks(path.join(dir, "corpus.jsonl")),
    sink,
  );
  const timed = stop();
  await scorer.close();
  return {
    path: "i",
    docs: sink.rows,
    tokens: stats.tokens,
    ...timed,
    peakRssMB: peakRssMB(),
    note: `padding ${pct(stats.paddedTokens, stats.tokens)}, ${(sink.bytes / 1e6).toFixed(1)} MB of output lines`,
  };
}

/** Padding as a share of the padded tokens. */
function pct(padded: number, tokens: number): string {
  return `${(((padded - tokens) / padded) * 100).toFixed(1)}%`;
}

/** The child paths by their letter. */
export const CHILD_PATHS: Record<
  "a" | "b" | "i",
  (dir: string, threads: number, o: TextPathOptions) => Promise<PathResult>
> = { a: childA, b: childB, i: childI };
