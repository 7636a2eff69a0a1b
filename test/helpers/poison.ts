/**
 * Helpers for the poison suite (test/poison.test.ts) and the security suite: line
 * tables of an input and which partition owns each line, a churn-shaped ONNX model
 * that onnxruntime refuses to run on some data, the crash-on-marker worker entry,
 * and the "nothing was written" check against every store.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ValidationError } from "../../src/core/errors.ts";
import { loadTabularModel } from "../../src/model/descriptor.ts";
import { encodeOnnxModel, type OnnxNode } from "../../src/model/onnx-writer.ts";
import type { LocalPipeline } from "../../src/runner/local-stores.ts";
import type { WorkerCommand } from "../../src/runner/process-pool.ts";

/** Text in a record's free-text column that makes the crash worker die (see crash-worker.ts). */
export const CRASH_MARKER = "poison-pill-4d1c";

/** The test-only worker entry that SIGKILLs itself when it reaches a record holding CRASH_MARKER. */
export function crashWorkerCommand(): WorkerCommand {
  return {
    modulePath: fileURLToPath(new URL("./crash-worker.ts", import.meta.url)),
    execArgv: ["--import", "tsx"],
  };
}

/** One line of an input: where it starts, where its content ends and where the next begins. */
export interface LineSpan {
  /** Offset of the line's first byte. */
  start: number;
  /** Offset just past its content (terminator excluded). */
  end: number;
  /** Offset of the next line (past the terminator, or EOF). */
  next: number;
}

/** Every line of `bytes` from `from` on ('\n' terminated; a final line may lack it). */
export function lineSpans(bytes: Buffer, from = 0): LineSpan[] {
  const out: LineSpan[] = [];
  let s = from;
  while (s < bytes.length) {
    const nl = bytes.indexOf(0x0a, s);
    const next = nl < 0 ? bytes.length : nl + 1;
    let end = nl < 0 ? bytes.length : nl;
    if (nl >= 0 && end > s && bytes[end - 1] === 0x0d) end--;
    out.push({ start: s, end, next });
    s = next;
  }
  return out;
}

/** Index of the partition owning a line that starts at `offset` (a record belongs where it starts). */
export function ownerOf(ranges: { start: number; end: number }[], offset: number): number {
  const i = ranges.findIndex((r) => offset >= r.start && offset < r.end);
  assert.ok(i >= 0, `offset ${offset} is in no partition`);
  return i;
}

/** Options for {@link writeChurnLikeModel}. */
export interface ChurnLikeModel {
  /** Directory to write descriptor.json and model.onnx into. */
  dir: string;
  /** The churn descriptor whose features (and so input width) the model takes. */
  churnDescriptor: string;
  /**
   * When set, the graph also gathers feature 0 (age) of every row and, if any
   * exceeds this value, indexes a one-element tensor at 1: onnxruntime fails the
   * whole batch with "indices element out of data bounds". Otherwise it adds 0.
   */
  failWhenAgeAbove?: number;
}

/**
 * Write a churn-shaped model: sigmoid(x · w + b) over the churn descriptor's
 * features (so every good row scores the same with or without the poison branch,
 * which only ever adds 0 or throws). Returns the descriptor path.
 */
export async function writeChurnLikeModel(options: ChurnLikeModel): Promise<string> {
  const churn = await loadTabularModel(options.churnDescriptor);
  const width = churn.width;
  const weights = new Float32Array(width);
  for (let i = 0; i < width; i++) weights[i] = 0.02 * Math.sin(i + 1);
  const poisoned = options.failWhenAgeAbove !== undefined;
  const nodes: OnnxNode[] = [
    { opType: "Gemm", inputs: ["features", "w", "b"], outputs: ["logit"] },
    { opType: "Sigmoid", inputs: ["logit"], outputs: [poisoned ? "p" : "probability"] },
  ];
  if (poisoned) {
    nodes.push(
      { opType: "Constant", inputs: [], outputs: ["col"], attributes: { value_int: { i: 0 } } },
      {
        opType: "Gather",
        inputs: ["features", "col"],
        outputs: ["age"],
        attributes: { axis: { i: 1 } },
      },
      {
        opType: "Constant",
        inputs: [],
        outputs: ["limit"],
        attributes: { value_float: { f: options.failWhenAgeAbove as number } },
      },
      { opType: "Greater", inputs: ["age", "limit"], outputs: ["over"] },
      { opType: "Cast", inputs: ["over"], outputs: ["overF"], attributes: { to: { i: 1 } } },
      {
        opType: "ReduceMax",
        inputs: ["overF"],
        outputs: ["anyOver"],
        attributes: { keepdims: { i: 0 } },
      },
      { opType: "Cast", inputs: ["anyOver"], outputs: ["index"], attributes: { to: { i: 7 } } },
      {
        opType: "Gather",
        inputs: ["zero", "index"],
        outputs: ["nothing"],
        attributes: { axis: { i: 0 } },
      },
      { opType: "Add", inputs: ["p", "nothing"], outputs: ["probability"] },
    );
  }
  const onnx = encodeOnnxModel({
    name: poisoned ? "churn-like-poisoned" : "churn-like",
    inputs: [{ name: "features", dims: ["batch", width] }],
    outputs: [{ name: "probability", dims: ["batch", 1] }],
    initializers: [
      { name: "w", dims: [width, 1], data: weights },
      { name: "b", dims: [1], data: Float32Array.of(-0.5) },
      { name: "zero", dims: [1], data: Float32Array.of(0) },
    ],
    nodes,
  });
  const descriptor = JSON.parse(await readFile(options.churnDescriptor, "utf8")) as Record<
    string,
    unknown
  >;
  await mkdir(options.dir, { recursive: true });
  await writeFile(path.join(options.dir, "model.onnx"), onnx);
  const file = path.join(options.dir, "descriptor.json");
  await writeFile(
    file,
    JSON.stringify({ ...descriptor, name: "churn-like", onnx: "model.onnx", metrics: undefined }),
  );
  return file;
}

/**
 * Assert the pipeline wrote nothing for a rejected request: no job row, no task
 * message (visible, in flight or dead), no object in the output bucket, no
 * pipeline event (the upload's own object event may be there).
 */
export async function assertNothingWritten(p: LocalPipeline, what: string): Promise<void> {
  assert.deepEqual(await p.checkpoints.listJobs(), [], `${what}: a job row was written`);
  assert.deepEqual(
    await p.queue.stats(),
    { visible: 0, inFlight: 0, deadLettered: 0 },
    `${what}: a task message was sent`,
  );
  assert.deepEqual((await p.store.list("output")).objects, [], `${what}: an output was written`);
  const events = await p.eventLog.read();
  assert.deepEqual(
    events.filter((e) => e.eventType.startsWith("com.batchinfer.")).map((e) => e.eventType),
    [],
    `${what}: a pipeline event was published`,
  );
}

/** Assert `err` is a schema rejection: ValidationError with `code` and a JSON-pointer-ish schema path. */
export function isSchemaError(code: string, schemaPath?: string | RegExp) {
  return (err: unknown): true => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.schemaPath, /^#/);
    if (typeof schemaPath === "string") assert.equal(err.schemaPath, schemaPath);
    else if (schemaPath) assert.match(err.schemaPath, schemaPath);
    return true;
  };
}
