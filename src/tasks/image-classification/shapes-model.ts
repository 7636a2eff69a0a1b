/**
 * The demo/test image classifier: the shapes CNN (cnn.ts) with its head trained on
 * generated shape images that went through the product's own decoding (decode.ts),
 * written as a model directory: both input forms, their descriptors and labels.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { PipelineError } from "../../core/errors.ts";
import { buildCnnModel, type CnnBody, type CnnHead, shapeCnnBody } from "./cnn.ts";
import { decodeImage } from "./decode.ts";
import { type ImageModelDescriptor, parseImageDescriptor } from "./descriptor.ts";
import { renderShape, SHAPE_LABELS, type ShapeOptions } from "./shapes.ts";
import { trainSoftmaxHead } from "./train-head.ts";

/** Normalisation the shapes model expects (in-graph for uint8, in JS for float32). */
const MEAN = [0.5, 0.5, 0.5];
const STD = [0.25, 0.25, 0.25];

/** How to train the shapes model. */
export interface ShapesModelOptions {
  seed?: number;
  /** Training images (default 1,500). */
  trainImages?: number;
  /** Held-out images for the reported accuracy (default 500). */
  testImages?: number;
  /** Input side in pixels (default 64). */
  size?: number;
  shapes?: ShapeOptions;
}

/** A trained shapes model. */
export interface ShapesModel {
  body: CnnBody;
  head: CnnHead;
  size: number;
  trainAccuracy: number;
  testAccuracy: number;
}

/** Descriptor of the shapes model for one input form. */
export function shapesDescriptor(form: "uint8" | "float32", size: number): ImageModelDescriptor {
  return parseImageDescriptor({
    name: form === "uint8" ? "shapes" : "shapes-f32",
    version: "1",
    onnx: form === "uint8" ? "model-uint8.onnx" : "model-f32.onnx",
    task: {
      kind: "image-classification",
      input: form === "uint8" ? "pixels" : "input",
      output: "logits",
      scores: "softmax",
      labels: "labels.txt",
      topK: 3,
      preprocess:
        form === "uint8"
          ? { width: size, height: size, resize: "crop", layout: "nhwc", dtype: "uint8" }
          : {
              width: size,
              height: size,
              resize: "crop",
              layout: "nchw",
              dtype: "float32",
              mean: MEAN,
              std: STD,
            },
    },
  });
}

async function featuresOf(
  session: ort.InferenceSession,
  body: CnnBody,
  size: number,
  seed: number,
  count: number,
  shapes: ShapeOptions | undefined,
): Promise<{ x: Float32Array; y: Int32Array }> {
  const pre = shapesDescriptor("uint8", size).task.preprocess;
  const x = new Float32Array(count * body.features);
  const y = new Int32Array(count);
  const per = size * size * 3;
  const batch = 64;
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const pixels = new Uint8Array(n * per);
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const img = await renderShape(seed, start + i, shapes);
        const decoded = await decodeImage(img.bytes, pre);
        if (!decoded.image)
          throw new PipelineError("INTERNAL", `generated image: ${decoded.reason}`);
        pixels.set(decoded.image.pixels, i * per);
        y[start + i] = SHAPE_LABELS.indexOf(img.label);
      }),
    );
    const out = await session.run({ pixels: new ort.Tensor("uint8", pixels, [n, size, size, 3]) });
    x.set(out.features?.data as Float32Array, start * body.features);
  }
  return { x, y };
}

function accuracy(head: CnnHead, width: number, data: { x: Float32Array; y: Int32Array }): number {
  let right = 0;
  for (let i = 0; i < data.y.length; i++) {
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < head.classes; c++) {
      let s = head.bias[c] as number;
      for (let j = 0; j < width; j++) {
        s += (data.x[i * width + j] as number) * (head.weight[j * head.classes + c] as number);
      }
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    if (best === data.y[i]) right++;
  }
  return data.y.length === 0 ? 0 : right / data.y.length;
}

/** Build the feature extractor, render and decode training images, fit the head. */
export async function trainShapesModel(options: ShapesModelOptions = {}): Promise<ShapesModel> {
  const seed = options.seed ?? 7;
  const size = options.size ?? 64;
  const body = shapeCnnBody(seed);
  const session = await ort.InferenceSession.create(
    buildCnnModel(body, undefined, { kind: "uint8-nhwc", size, mean: MEAN, std: STD }),
  );
  try {
    const train = await featuresOf(
      session,
      body,
      size,
      seed * 2 + 1,
      options.trainImages ?? 1500,
      options.shapes,
    );
    const test = await featuresOf(
      session,
      body,
      size,
      seed * 2 + 2,
      options.testImages ?? 500,
      options.shapes,
    );
    const head = trainSoftmaxHead(train.x, train.y, body.features, SHAPE_LABELS.length);
    return {
      body,
      head,
      size,
      trainAccuracy: accuracy(head, body.features, train),
      testAccuracy: accuracy(head, body.features, test),
    };
  } finally {
    await session.release();
  }
}

/** Files written by {@link writeShapesModel}. */
export interface ShapesModelFiles {
  /** uint8 NHWC model (normalisation in the graph): the default. */
  descriptor: string;
  /** float32 NCHW model with the same weights (normalisation in JS). */
  descriptorF32: string;
  labels: string;
}

/** Write both input forms, their descriptors and labels.txt into `dir`. */
export async function writeShapesModel(dir: string, model: ShapesModel): Promise<ShapesModelFiles> {
  await mkdir(dir, { recursive: true });
  const metadata = { testAccuracy: model.testAccuracy.toFixed(4) };
  const uint8 = buildCnnModel(
    model.body,
    model.head,
    { kind: "uint8-nhwc", size: model.size, mean: MEAN, std: STD },
    metadata,
  );
  const f32 = buildCnnModel(
    model.body,
    model.head,
    { kind: "float32-nchw", size: model.size },
    metadata,
  );
  const metrics = {
    trainAccuracy: model.trainAccuracy,
    testAccuracy: model.testAccuracy,
    classes: SHAPE_LABELS.length,
  };
  const files: ShapesModelFiles = {
    descriptor: path.join(dir, "shapes.json"),
    descriptorF32: path.join(dir, "shapes-f32.json"),
    labels: path.join(dir, "labels.txt"),
  };
  await writeFile(path.join(dir, "model-uint8.onnx"), uint8);
  await writeFile(path.join(dir, "model-f32.onnx"), f32);
  await writeFile(files.labels, `${SHAPE_LABELS.join("\n")}\n`);
  for (const [file, form] of [
    [files.descriptor, "uint8"],
    [files.descriptorF32, "float32"],
  ] as const) {
    const d = { ...shapesDescriptor(form, model.size), metrics };
    await writeFile(file, `${JSON.stringify(d, null, 2)}\n`);
  }
  return files;
}
