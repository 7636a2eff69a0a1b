/**
 * Image records → batches of the model's input tensor. `prepare` decodes a block's
 * images (bounded concurrency, on libuv's pool); `add` packs one decoded image into
 * the open batch or returns why the record is bad. A window is one batch.
 */
import { PipelineError } from "../../core/errors.ts";
import type { ObjectBlock, RecordBlock } from "../../sources/record-source.ts";
import type { EncodedBatch, TaskEncoder, Tensor, Window } from "../task.ts";
import { type DecodeResult, decodeImage } from "./decode.ts";
import { DEFAULT_DECODE_CONCURRENCY, DEFAULT_IMAGE_BATCH } from "./defaults.ts";
import type { ImagePreprocess } from "./descriptor.ts";
import { type PackPlan, packImage, packPlan } from "./pack.ts";

/** What a window carries to the decoder: the object names of its rows, in order. */
export interface ImageWindowMeta {
  names: string[];
}

/** Batching and decoding limits. */
export interface ImageEncoderOptions {
  /** Images per onnxruntime call (default 32). */
  batchSize?: number;
  /** Images decoded at once per block (default 4; size UV_THREADPOOL_SIZE to match). */
  decodeConcurrency?: number;
}

export { DEFAULT_DECODE_CONCURRENCY, DEFAULT_IMAGE_BATCH } from "./defaults.ts";

/** Run `fn` over `items` with at most `limit` at once; results in input order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function asObjects(block: RecordBlock): ObjectBlock {
  if (block.kind !== "objects") {
    throw new PipelineError(
      "INTERNAL",
      `image classification reads one object per record, got a "${block.kind}" block; the job's input must be a prefix of image objects`,
    );
  }
  return block;
}

/** Per-attempt encoder for one image model. */
export class ImageEncoder implements TaskEncoder<ImageWindowMeta> {
  private readonly plan: PackPlan;
  private readonly batchSize: number;
  private readonly decodeConcurrency: number;
  private readonly decoded = new WeakMap<ObjectBlock, (DecodeResult | undefined)[]>();
  private data: Float32Array | Uint8Array | undefined;
  private names: string[] = [];
  private readonly done: Window<ImageWindowMeta>[] = [];

  constructor(
    private readonly input: string,
    private readonly preprocess: ImagePreprocess,
    options: ImageEncoderOptions = {},
  ) {
    this.plan = packPlan(preprocess);
    this.batchSize = options.batchSize ?? DEFAULT_IMAGE_BATCH;
    this.decodeConcurrency = options.decodeConcurrency ?? DEFAULT_DECODE_CONCURRENCY;
  }

  async prepare(block: RecordBlock): Promise<void> {
    const objects = asObjects(block);
    const results = await mapLimit(objects.bodies, this.decodeConcurrency, (body, i) =>
      body === undefined || objects.problems[i] !== undefined
        ? Promise.resolve(undefined)
        : decodeImage(body, this.preprocess),
    );
    this.decoded.set(objects, results);
  }

  add(block: RecordBlock, i: number): string | undefined {
    const objects = asObjects(block);
    const problem = objects.problems[i];
    if (problem !== undefined) return problem;
    const results = this.decoded.get(objects);
    if (!results) {
      throw new PipelineError("INTERNAL", "ImageEncoder.add before prepare(block) resolved");
    }
    const result = results[i];
    results[i] = undefined; // the pixels are copied below; let them go
    if (result === undefined) return "object has no body";
    if (result.reason !== undefined) return result.reason;
    this.data ??= this.plan.float
      ? new Float32Array(this.batchSize * this.plan.size)
      : new Uint8Array(this.batchSize * this.plan.size);
    packImage(this.plan, result.image.pixels, this.data, this.names.length);
    this.names.push(objects.names[i] as string);
    if (this.names.length === this.batchSize) this.close();
    return undefined;
  }

  take(flush: boolean): Window<ImageWindowMeta>[] {
    if (flush) this.close();
    return this.done.splice(0);
  }

  private close(): void {
    const rows = this.names.length;
    if (rows === 0 || !this.data) return;
    const p = this.preprocess;
    const C = this.plan.channels;
    const dims = this.plan.nchw ? [rows, C, p.height, p.width] : [rows, p.height, p.width, C];
    const tensor: Tensor = {
      type: this.plan.float ? "float32" : "uint8",
      data: this.data.subarray(0, rows * this.plan.size),
      dims,
    };
    const batch: EncodedBatch = { feeds: { [this.input]: tensor }, rows };
    this.done.push({ batches: [batch], records: rows, meta: { names: this.names } });
    this.data = undefined;
    this.names = [];
  }
}
