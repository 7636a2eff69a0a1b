/**
 * Builds the shapes image classifier (a small CNN; its head is trained here on
 * generated images that went through the product's own decoding) into a model
 * directory: model-uint8.onnx + shapes.json (uint8 NHWC, normalised in the graph),
 * model-f32.onnx + shapes-f32.json (float32 NCHW, normalised in JS), labels.txt.
 *
 *   tsx scripts/gen-image-model.ts [--out models/shapes] [--train 1500] [--test 500] [--seed 7]
 *
 * Deterministic for a seed. Prints the held-out accuracy (also in the descriptors' metrics).
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  trainShapesModel,
  writeShapesModel,
} from "../src/tasks/image-classification/shapes-model.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: "models/shapes" },
    train: { type: "string", default: "1500" },
    test: { type: "string", default: "500" },
    seed: { type: "string", default: "7" },
    size: { type: "string", default: "64" },
  },
});
const started = performance.now();
const model = await trainShapesModel({
  seed: Number(values.seed),
  trainImages: Number(values.train),
  testImages: Number(values.test),
  size: Number(values.size),
});
const files = await writeShapesModel(resolve(values.out), model);
console.log(
  JSON.stringify({
    descriptor: files.descriptor,
    descriptorF32: files.descriptorF32,
    trainAccuracy: model.trainAccuracy,
    testAccuracy: model.testAccuracy,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  }),
);
