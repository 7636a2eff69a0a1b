/**
 * A minimal stand-in for the worker loop, for tests and the media benchmark: reads a
 * record source, prepares blocks ahead, encodes, runs each batch through an
 * onnxruntime session and decodes into a sink. No checkpoints, leases or parts —
 * those belong to the worker loop; this checks the task and source halves alone.
 */
import type * as ort from "onnxruntime-node";
import { positionAt, type RecordSource } from "../../src/sources/record-source.ts";
import { prepareAhead } from "../../src/tasks/prepare-ahead.ts";
import type {
  Feeds,
  Outputs,
  RowSink,
  TaskDecoder,
  TaskEncoder,
  Tensor,
  TensorData,
} from "../../src/tasks/task.ts";

/** Collects rows as arrays of JS values. */
export class CollectingSink implements RowSink {
  rows: unknown[][] = [];
  private row: unknown[] = [];
  startRow(): void {
    this.row = [];
  }
  keyBytes(buf: Buffer, start: number, end: number): void {
    this.row.push(buf.toString("utf8", start, end));
  }
  string(value: string | null): void {
    this.row.push(value);
  }
  float32(value: number): void {
    this.row.push(value);
  }
  float64(value: number): void {
    this.row.push(value);
  }
  int(value: number): void {
    this.row.push(value);
  }
  float32s(values: Float32Array): void {
    this.row.push(Array.from(values));
  }
  strings(values: string[]): void {
    this.row.push([...values]);
  }
  endRow(): void {
    this.rows.push(this.row);
  }
}

/** Feeds as onnxruntime tensors. */
export function toOrtFeeds(ortModule: typeof ort, feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    out[name] = new ortModule.Tensor(t.type, t.data as never, t.dims);
  }
  return out;
}

/** onnxruntime results as seam tensors. */
export function fromOrt(result: ort.InferenceSession.OnnxValueMapType): Outputs {
  const out: Outputs = {};
  for (const [name, value] of Object.entries(result)) {
    const t = value as ort.Tensor;
    out[name] = { type: t.type as Tensor["type"], data: t.data as TensorData, dims: [...t.dims] };
  }
  return out;
}

/** Timings and results of one run. */
export interface HarnessResult {
  bad: { key: string; position: number; reason: string }[];
  records: number;
  /** Milliseconds spent awaiting session.run. */
  inferMs: number;
}

/** Drive one source → task → session → sink pass. */
export async function runSeam<M>(options: {
  ort: typeof ort;
  session: ort.InferenceSession;
  source: RecordSource;
  from: number;
  encoder: TaskEncoder<M>;
  decoder: TaskDecoder<M>;
  sink: RowSink;
  keyOf?: (block: import("../../src/sources/record-source.ts").RecordBlock, i: number) => string;
}): Promise<HarnessResult> {
  const result: HarnessResult = { bad: [], records: 0, inferMs: 0 };
  const score = async (flush: boolean): Promise<void> => {
    for (const window of options.encoder.take(flush)) {
      const outputs: Outputs[] = [];
      for (const batch of window.batches) {
        const t0 = performance.now();
        const out = await options.session.run(toOrtFeeds(options.ort, batch.feeds));
        result.inferMs += performance.now() - t0;
        outputs.push(fromOrt(out));
      }
      options.decoder.write(window, outputs, options.sink);
      result.records += window.records;
    }
  };
  for await (const block of prepareAhead(options.source.read(options.from), options.encoder)) {
    const count = block.kind === "lines" ? block.lines.count : block.count;
    for (let i = 0; i < count; i++) {
      const reason = options.encoder.add(block, i);
      if (reason !== undefined) {
        const key =
          options.keyOf?.(block, i) ?? (block.kind === "objects" ? (block.names[i] as string) : "");
        result.bad.push({ key, position: positionAt(block, i), reason });
      }
    }
    await score(false);
  }
  await score(true);
  return result;
}
