/**
 * Writes a generated image library (shapes as JPEG, PNG and WebP; the true label in
 * each name) into a directory — e.g. a local bucket — for the demo and the benchmark:
 *
 *   tsx scripts/gen-images.ts --out .data/store/media --prefix photos/ --count 1000 [--seed 1]
 *       [--min 96 --max 320] [--bad]
 *
 * `--bad` adds an empty, a truncated, a corrupt, a non-image and a decompression-bomb object.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeShapeDataset } from "../src/tasks/image-classification/shape-dataset.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    prefix: { type: "string", default: "" },
    count: { type: "string", default: "1000" },
    seed: { type: "string", default: "1" },
    min: { type: "string", default: "96" },
    max: { type: "string", default: "320" },
    bad: { type: "boolean", default: false },
  },
});
if (!values.out) {
  console.error("usage: tsx scripts/gen-images.ts --out DIR [--prefix P/] [--count N] [--bad]");
  process.exit(2);
}
const root = resolve(values.out);
const started = performance.now();
let bytes = 0;
const written = await writeShapeDataset(
  async (name, body) => {
    const file = join(root, name);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, body);
    bytes += body.length;
  },
  {
    count: Number(values.count),
    seed: Number(values.seed),
    prefix: values.prefix,
    bad: values.bad,
    minSide: Number(values.min),
    maxSide: Number(values.max),
  },
);
console.log(
  JSON.stringify({
    out: root,
    images: written.length,
    bytes,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  }),
);
