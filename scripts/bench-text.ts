/**
 * Text-embedding throughput on a realistic mix of document lengths (titles to
 * multi-paragraph articles), over the same generated model directory and corpus, each
 * in its own process (so peak RSS is its own):
 *   (a) bare onnxruntime on pre-tokenized, length-sorted token-budget batches — the ceiling;
 *   (b) the @huggingface/transformers feature-extraction pipeline, batches of 32 in input
 *       order — what a JS user would write;
 *   (c) ours end to end: `batch-infer run --input corpus.jsonl` with the built CLI, from
 *       process start to exit (split, worker processes, checkpoints, merge, manifest);
 *       `--e2e-workers` workers of `--threads` threads; peak RSS is the largest worker's;
 *   (i) ours in-process: JSONL file → records → tokenizer → windows of length-sorted
 *       token-budget batches → typed feeds on the inference thread → pooling → rows.
 * Prints documents/s, tokens/s, the ratios (c)/(a) and (c)/(b), and peak RSS. With
 * `--refresh-docs N` it also times `batch-infer refresh` over a directory of N documents:
 * the first (full) refresh, then one after 1% of the documents changed, and one with
 * nothing changed. It never fails on the figures.
 *
 *   tsx scripts/bench-text.ts [--docs 1000] [--hidden 256] [--layers 4] [--heads 4]
 *     [--intermediate 1024] [--threads 1] [--repeat 3] [--repeat-b 1] [--paths a,b,c,i]
 *     [--e2e-workers 1] [--refresh-docs 100000] [--refresh-workers 2]
 *     [--token-budget N] [--attention-budget N] [--arena on|off]   (batching of a and i)
 *
 * On a shared machine wall-clock figures swing with other load; the CPU-time figures
 * (process-wide, all threads) are the steadier comparison.
 *
 * Model and corpus are generated under .bench/text/ (gitignored) and reused.
 */
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readOwnedLines } from "../src/records/line-reader.ts";
import type { LineBlock } from "../src/sources/record-source.ts";
import type { RowSink } from "../src/tasks/task.ts";
import { planBatches } from "../src/tasks/text-embedding/batcher.ts";
import { embedInProcess } from "../src/tasks/text-embedding/embed-in-process.ts";
import { createFeedsScorer } from "../src/tasks/text-embedding/feeds-scorer.ts";
import { loadTextModel, type TextModel } from "../src/tasks/text-embedding/model-dir.ts";
import { writeTextModel } from "../src/tasks/text-embedding/model-gen/generate.ts";
import { toSequences } from "../src/tasks/text-embedding/sequences.ts";
import { truncateChars } from "../src/tasks/text-embedding/tokenizer.ts";
import { changeCorpus, ensureCorpusDir, refreshEndToEnd, runEndToEnd } from "./bench/text-e2e.ts";
import { writeCorpusJsonl } from "./gen-text-model.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TRANSFORMERS_BATCH = 32;

const { values: flags } = parseArgs({
  options: {
    docs: { type: "string", default: "1000" },
    hidden: { type: "string", default: "256" },
    layers: { type: "string", default: "4" },
    heads: { type: "string", default: "4" },
    intermediate: { type: "string", default: "1024" },
    threads: { type: "string", default: "1" },
    repeat: { type: "string", default: "3" },
    "repeat-b": { type: "string", default: "1" },
    paths: { type: "string", default: "a,b,c,i" },
    "e2e-workers": { type: "string", default: "1" },
    "refresh-docs": { type: "string", default: "0" },
    "refresh-workers": { type: "string", default: "2" },
    "token-budget": { type: "string" },
    "attention-budget": { type: "string" },
    arena: { type: "string", default: "on" },
    child: { type: "string" },
    dir: { type: "string" },
  },
  strict: true,
});
const num = (name: keyof typeof flags, min = 1) => {
  const n = Number(flags[name]);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
  return n;
};

/** What one child measured. */
interface PathResult {
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
function clock(): () => { seconds: number; cpuSeconds: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 };
  };
}

function peakRssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

async function corpusBlocks(file: string): Promise<AsyncIterable<LineBlock>> {
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

async function readTexts(file: string): Promise<string[]> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (JSON.parse(l) as { text: string }).text);
}

/** Real tokens of the corpus under the model's settings (the same numerator for every path). */
function corpusSequences(model: TextModel, texts: string[]): Int32Array[] {
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
async function benchModel(dir: string): Promise<TextModel> {
  const model = await loadTextModel({ descriptorPath: path.join(dir, "model", "descriptor.json") });
  if (flags["token-budget"]) model.batching.tokenBudget = num("token-budget");
  if (flags["attention-budget"]) model.batching.attentionBudget = num("attention-budget");
  return model;
}

const ARENA = flags.arena !== "off";

async function childA(dir: string, threads: number): Promise<PathResult> {
  const ort = await import("onnxruntime-node");
  const model = await benchModel(dir);
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
    enableCpuMemArena: ARENA,
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

async function childB(dir: string, threads: number): Promise<PathResult> {
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

async function childI(dir: string, threads: number): Promise<PathResult> {
  const model = await benchModel(dir);
  const scorer = await createFeedsScorer(model.onnxBytes, {
    intraOpThreads: threads,
    memoryArena: ARENA,
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

function pct(padded: number, tokens: number): string {
  return `${(((padded - tokens) / padded) * 100).toFixed(1)}%`;
}

function runChild(which: string, dir: string, threads: number): Promise<PathResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fileURLToPath(import.meta.url),
        "--child",
        which,
        "--dir",
        dir,
        "--threads",
        String(threads),
        "--arena",
        ARENA ? "on" : "off",
        ...(flags["token-budget"] ? ["--token-budget", flags["token-budget"]] : []),
        ...(flags["attention-budget"] ? ["--attention-budget", flags["attention-budget"]] : []),
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`path ${which} exited with ${code}: ${out.slice(-500)}`));
      else resolve(JSON.parse(line) as PathResult);
    });
  });
}

async function main(): Promise<void> {
  const threads = num("threads");
  if (flags.child) {
    const dir = flags.dir ?? "";
    const run = { a: childA, b: childB, i: childI }[flags.child as "a" | "b" | "i"];
    if (!run) throw new Error(`unknown --child ${flags.child}`);
    console.log(JSON.stringify(await run(dir, threads)));
    return;
  }
  const docs = num("docs");
  const shape = {
    hidden: num("hidden"),
    layers: num("layers"),
    heads: num("heads"),
    intermediate: num("intermediate"),
  };
  const dir = path.join(
    ROOT,
    ".bench",
    "text",
    `h${shape.hidden}-l${shape.layers}-a${shape.heads}-i${shape.intermediate}-d${docs}`,
  );
  if (!existsSync(path.join(dir, "model", "descriptor.json"))) {
    await writeTextModel(path.join(dir, "model"), shape);
  }
  if (!existsSync(path.join(dir, "corpus.jsonl"))) {
    await writeCorpusJsonl(path.join(dir, "corpus.jsonl"), docs, 2026);
  }
  const paths = (flags.paths ?? "a,b,c").split(",");
  console.log(
    `text-embedding bench: ${docs} docs, hidden ${shape.hidden}, ${shape.layers} layers × ${shape.heads} heads, FFN ${shape.intermediate}, ${threads} intra-op threads, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const runs = new Map<string, PathResult[]>();
  for (let r = 0; r < num("repeat"); r++) {
    // Rotate the order so drift in the machine's load doesn't favour one path.
    const order = paths.map((_, k) => paths[(k + r) % paths.length] as string);
    for (const p of order) {
      // transformers.js is the slow path: fewer runs keep the bench short.
      if (p === "b" && r >= num("repeat-b")) continue;
      const result = p === "c" ? await endToEnd(dir, threads) : await runChild(p, dir, threads);
      console.log(
        `  run ${r + 1} (${p}): ${(result.docs / result.seconds).toFixed(1)} docs/s, ${Math.round(result.tokens / result.seconds)} tokens/s, ${result.seconds.toFixed(2)} s wall, ${result.cpuSeconds.toFixed(2)} s CPU, peak RSS ${result.peakRssMB} MB`,
      );
      runs.set(p, [...(runs.get(p) ?? []), result]);
    }
  }
  const names: Record<string, string> = {
    a: "(a) bare onnxruntime, sorted batches",
    b: "(b) transformers.js feature-extraction",
    c: `(c) ours end to end (batch-infer run, ${num("e2e-workers")} worker)`,
    i: "(i) ours in-process (encoder + thread scorer)",
  };
  // Wall clock: the best run (least disturbed by other load). CPU: the median run.
  const best = (p: string) => [...(runs.get(p) ?? [])].sort((x, y) => x.seconds - y.seconds)[0];
  const cpu = (p: string) => {
    const sorted = [...(runs.get(p) ?? [])].sort((x, y) => x.cpuSeconds - y.cpuSeconds);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  };
  console.log("summary (wall: best run; CPU: median run):");
  for (const p of paths) {
    const r = best(p);
    const c = cpu(p);
    if (!r || !c) continue;
    console.log(
      `  ${names[p]?.padEnd(48)} ${(r.docs / r.seconds).toFixed(1).padStart(7)} docs/s ${String(Math.round(r.tokens / r.seconds)).padStart(6)} tokens/s | ${(c.docs / c.cpuSeconds).toFixed(1).padStart(7)} docs/CPU-s ${String(Math.round(c.tokens / c.cpuSeconds)).padStart(6)} tokens/CPU-s | peak RSS ${Math.max(...(runs.get(p) ?? []).map((x) => x.peakRssMB))} MB  (${r.note})`,
    );
  }
  const ratio = (x: string, y: string) => {
    const [bx, by, cx, cy] = [best(x), best(y), cpu(x), cpu(y)];
    if (!bx || !by || !cx || !cy) return;
    console.log(
      `  (${x})/(${y}) = ${(by.seconds / bx.seconds).toFixed(3)} wall, ${(cy.cpuSeconds / cx.cpuSeconds).toFixed(3)} CPU${x === "c" ? `  (target ${y === "a" ? "≥ 0.85" : "≥ 2"})` : ""}`,
    );
  };
  ratio("c", "a");
  ratio("c", "b");
  ratio("i", "a");
  if (num("refresh-docs", 0) > 0) await refreshBench(dir, threads);
}

let built = false;
/** The built CLI (dist/cli.js) is what a user runs; build it once per bench. */
function ensureBuilt(): void {
  if (built) return;
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  built = true;
}

/** (c): `batch-infer run` over the corpus, start to exit. */
async function endToEnd(dir: string, threads: number): Promise<PathResult> {
  ensureBuilt();
  const model = await benchModel(dir);
  const texts = await readTexts(path.join(dir, "corpus.jsonl"));
  const tokens = corpusSequences(model, texts).reduce((n, q) => n + q.length, 0);
  const workers = num("e2e-workers");
  const m = await runEndToEnd({
    root: ROOT,
    corpus: path.join(dir, "corpus.jsonl"),
    descriptor: path.join(dir, "model", "descriptor.json"),
    workers,
    threads,
    dataDir: path.join(ROOT, ".bench", "text-runs", `run-${process.pid}`),
  });
  return {
    path: "c",
    docs: m.records,
    tokens,
    seconds: m.seconds,
    cpuSeconds: m.cpuSeconds,
    peakRssMB: m.peakWorkerRssMB,
    note: `${workers} worker × ${threads} thread, worker peak RSS; includes start-up, split, merge`,
  };
}

/** Refresh of a directory corpus: full, after 1% changed, and unchanged. */
async function refreshBench(dir: string, threads: number): Promise<void> {
  ensureBuilt();
  const docs = num("refresh-docs", 0);
  const workers = num("refresh-workers");
  const corpus = path.join(ROOT, ".bench", "text", `refresh-corpus-${docs}`);
  const t0 = performance.now();
  await ensureCorpusDir(corpus, docs);
  console.log(
    `refresh bench: ${docs} documents (one file each; ready in ${((performance.now() - t0) / 1000).toFixed(1)} s), ${workers} workers × ${threads} thread, model of the throughput bench`,
  );
  const dataDir = path.join(ROOT, ".bench", "text-runs", `refresh-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const options = {
    root: ROOT,
    corpus,
    descriptor: path.join(dir, "model", "descriptor.json"),
    workers,
    threads,
    dataDir,
  };
  try {
    const full = await refreshEndToEnd(options);
    const line = (what: string, r: Awaited<ReturnType<typeof refreshEndToEnd>>) =>
      console.log(
        `  ${what.padEnd(26)} ${r.seconds.toFixed(1).padStart(7)} s wall ${r.cpuSeconds.toFixed(1).padStart(7)} s CPU | ${r.action}${r.action === "up-to-date" ? " (no job)" : ` ${JSON.stringify(r.counts)}`} | worker peak RSS ${r.peakWorkerRssMB} MB (${r.workers} workers)`,
      );
    line("full (first) refresh", full);
    // New text each bench (a corpus kept from an earlier bench has that one's edits).
    const changed = await changeCorpus(corpus, 100, Date.now());
    const one = await refreshEndToEnd(options);
    line(`after ${changed} changed (1%)`, one);
    const none = await refreshEndToEnd(options);
    line("nothing changed", none);
    console.log(
      `  1% refresh / full = ${(one.seconds / full.seconds).toFixed(3)} wall, ${(one.cpuSeconds / full.cpuSeconds).toFixed(3)} CPU  (target ≤ 0.05)`,
    );
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
