/**
 * Images: images/s of our path vs bare onnxruntime (see scripts/bench-media.ts).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { LocalObjectStore } from "../../src/adapters/local/fs-object-store.ts";
import { writeManifest } from "../../src/sources/objects/manifest.ts";
import { ObjectListSource } from "../../src/sources/objects/object-list-source.ts";
import { buildCnnModel, shapeCnnBody } from "../../src/tasks/image-classification/cnn.ts";
import { configureSharp, decodeImage } from "../../src/tasks/image-classification/decode.ts";
import { writeShapeDataset } from "../../src/tasks/image-classification/shape-dataset.ts";
import { SHAPE_LABELS } from "../../src/tasks/image-classification/shapes.ts";
import { shapesDescriptor } from "../../src/tasks/image-classification/shapes-model.ts";
import { createImageTask } from "../../src/tasks/image-classification/task.ts";
import { CollectingSink, runSeam } from "../../test/helpers/seam-harness.ts";
import { type MediaBenchContext, round } from "./media-context.ts";

/** The image part: our path vs bare onnxruntime on pre-decoded tensors, per model. */
export async function benchImages(ctx: MediaBenchContext): Promise<void> {
  configureSharp();
  const store = new LocalObjectStore({ root: join(ctx.root, "store") });
  // Photo-like sizes: decode + resize to 64² or 128² is what a real library costs.
  const written = await writeShapeDataset(
    async (name, bytes) => {
      await store.put("media", name, bytes);
    },
    {
      count: ctx.images,
      seed: 5,
      prefix: "lib/",
      minSide: 480,
      maxSide: 800,
      encodings: ["jpeg", "jpeg", "png", "webp"],
    },
  );
  const totalBytes = written.reduce((a, w) => a + w.bytes, 0);
  ctx.results.imageSet = {
    images: ctx.images,
    avgKiB: round(totalBytes / ctx.images / 1024),
    side: "480-800 px",
  };
  const manifest = await writeManifest(
    store,
    { bucket: "media", prefix: "lib/" },
    { bucket: "jobs", name: "m.jsonl" },
  );
  const p = manifest.partitions[0];
  if (!p) throw new Error("no partition");
  for (const variant of [
    { name: "shapes-64 (light)", size: 64, widths: [32, 64] as [number, number] },
    { name: "wide-128 (heavier)", size: 128, widths: [96, 192] as [number, number] },
  ]) {
    const body = shapeCnnBody(7, variant.widths);
    const head = {
      weight: new Float32Array(body.features * 5).fill(0.01),
      bias: new Float32Array(5),
      classes: 5,
    };
    const onnx = buildCnnModel(body, head, {
      kind: "uint8-nhwc",
      size: variant.size,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    const session = await ort.InferenceSession.create(onnx, {
      intraOpNumThreads: ctx.intraOpThreads,
      interOpNumThreads: 1,
    });
    const d = shapesDescriptor("uint8", variant.size);
    const model = {
      kind: "image-classification" as const,
      descriptor: d,
      descriptorPath: "bench",
      onnxPath: "bench",
      onnxBytes: onnx,
      labels: [...SHAPE_LABELS],
      identity: { name: "bench", version: "1", descriptor: "bench", sha256: "" },
    };
    // Pre-decode every image (timed: decode alone, concurrency 4).
    const pre = d.task.preprocess;
    const per = variant.size * variant.size * 3;
    const pixels = new Uint8Array(ctx.images * per);
    const bodies = await Promise.all(
      written.map(async (w) => await readFile(join(ctx.root, "store", "media", w.name))),
    );
    let t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < ctx.images) {
          const i = next++;
          const r = await decodeImage(bodies[i] as Buffer, pre);
          if (!r.image) throw new Error(r.reason);
          pixels.set(r.image.pixels, i * per);
        }
      }),
    );
    const decodeOnly = ctx.images / ((performance.now() - t0) / 1000);
    // Ceiling: bare session.run on the pre-decoded batches.
    await session.run({
      pixels: new ort.Tensor("uint8", pixels.subarray(0, ctx.batch * per), [
        ctx.batch,
        variant.size,
        variant.size,
        3,
      ]),
    });
    t0 = performance.now();
    for (let s = 0; s < ctx.images; s += ctx.batch) {
      const n = Math.min(ctx.batch, ctx.images - s);
      await session.run({
        pixels: new ort.Tensor("uint8", pixels.subarray(s * per, (s + n) * per), [
          n,
          variant.size,
          variant.size,
          3,
        ]),
      });
    }
    const ceiling = ctx.images / ((performance.now() - t0) / 1000);
    // Ours end to end.
    const task = createImageTask(model, { batchSize: ctx.batch, decodeConcurrency: 4 });
    const sink = new CollectingSink();
    t0 = performance.now();
    const run = await runSeam({
      ort,
      session,
      source: new ObjectListSource({
        store,
        manifest: { bucket: "jobs", name: "m.jsonl" },
        objectsBucket: "media",
        start: p.start,
        end: p.end,
        concurrency: 8,
        blockRecords: ctx.batch,
      }),
      from: p.start,
      encoder: task.newEncoder(),
      decoder: task.decoder,
      sink,
    });
    const wallMs = performance.now() - t0;
    if (sink.rows.length !== ctx.images)
      throw new Error(`classified ${sink.rows.length} of ${ctx.images}`);
    const ours = ctx.images / (wallMs / 1000);
    ctx.results[`images ${variant.name}`] = {
      oursPerSec: round(ours),
      ceilingPerSec: round(ceiling),
      ratio: round(ours / ceiling, 2),
      decodeOnlyPerSec: round(decodeOnly),
      inferenceShareOfWall: round(run.inferMs / wallMs, 2),
      fetchDecodeNotHiddenShare: round(1 - run.inferMs / wallMs, 2),
    };
    console.log(variant.name, ctx.results[`images ${variant.name}`]);
    await session.release();
  }
}
