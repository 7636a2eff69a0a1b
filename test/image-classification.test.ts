import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { ModelError, ValidationError } from "../src/core/errors.ts";
import { writeManifest } from "../src/sources/objects/manifest.ts";
import { ObjectListSource } from "../src/sources/objects/object-list-source.ts";
import type { ObjectBlock, RecordBlock } from "../src/sources/record-source.ts";
import { decodeImage } from "../src/tasks/image-classification/decode.ts";
import { ImageDecoder, topK, toScores } from "../src/tasks/image-classification/decoder.ts";
import {
  type ImagePreprocess,
  loadImageModel,
  parseImageDescriptor,
  parseLabels,
} from "../src/tasks/image-classification/descriptor.ts";
import { packImage, packPlan } from "../src/tasks/image-classification/pack.ts";
import {
  BAD_OBJECTS,
  labelFromName,
  writeShapeDataset,
} from "../src/tasks/image-classification/shape-dataset.ts";
import {
  trainShapesModel,
  writeShapesModel,
} from "../src/tasks/image-classification/shapes-model.ts";
import { sniffImageFormat } from "../src/tasks/image-classification/sniff.ts";
import { createImageTask } from "../src/tasks/image-classification/task.ts";
import { prepareAhead } from "../src/tasks/prepare-ahead.ts";
import type { Window } from "../src/tasks/task.ts";
import { CollectingSink, runSeam } from "./helpers/seam-harness.ts";

function descriptor(preprocess: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: "m",
    version: "1",
    onnx: "m.onnx",
    task: {
      kind: "image-classification",
      input: "x",
      output: "y",
      labels: "labels.txt",
      preprocess: { width: 8, height: 8, ...preprocess },
      ...extra,
    },
  };
}

function pre(p: Record<string, unknown>): ImagePreprocess {
  return parseImageDescriptor(descriptor(p)).task.preprocess;
}

/** A 90×30 PNG: red, green and blue thirds left to right. */
async function thirds(): Promise<Buffer> {
  const w = 90;
  const h = 30;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw[(y * w + x) * 3 + Math.floor(x / 30)] = 255;
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

function pixel(img: { pixels: Buffer; width: number }, x: number, y: number): number[] {
  const at = (y * img.width + x) * 3;
  return [...img.pixels.subarray(at, at + 3)];
}

describe("image descriptor", () => {
  it("fills defaults and keeps what is given", () => {
    const d = parseImageDescriptor(descriptor({}));
    assert.equal(d.task.scores, "softmax");
    assert.equal(d.task.topK, 5);
    assert.equal(d.task.preprocess.resize, "crop");
    assert.equal(d.task.preprocess.layout, "nchw");
    assert.equal(d.task.preprocess.dtype, "float32");
    assert.equal(d.task.preprocess.maxInputPixels, 25_000_000);
  });

  it("refuses what would silently score garbage, saying what to fix", () => {
    assert.throws(
      () => parseImageDescriptor(descriptor({ dtype: "uint8", mean: [0, 0, 0] })),
      (e: unknown) => e instanceof ModelError && /normalise inside the model/.test(e.message),
    );
    assert.throws(
      () => parseImageDescriptor(descriptor({ mean: [0.5, 0.5] })),
      /2 values for 3 channel/,
    );
    assert.throws(
      () => parseImageDescriptor(descriptor({ shorterSide: 4 })),
      /smaller than the 8x8 crop/,
    );
    assert.throws(
      () => parseImageDescriptor(descriptor({ resize: "stretch", padColor: [1, 2, 3] })),
      /only resize "letterbox" pads/,
    );
    assert.throws(
      () => parseImageDescriptor(descriptor({ layout: "chw" })),
      (e: unknown) => e instanceof ValidationError && e.instancePath === "/task/preprocess/layout",
    );
  });

  it("reads labels as lines or a JSON array", () => {
    assert.deepEqual(parseLabels("cat\ndog\r\nbird\n", "l.txt"), ["cat", "dog", "bird"]);
    assert.deepEqual(parseLabels('["a","b"]', "l.json"), ["a", "b"]);
    assert.throws(() => parseLabels("cat\n\ndog\n", "l.txt"), /label 1 \(line 2\) is empty/);
    assert.throws(() => parseLabels('{"0":"a"}', "l.json"), /JSON array of strings/);
  });
});

describe("image decoding", () => {
  it("recognises formats by their bytes", async () => {
    const base = sharp({ create: { width: 4, height: 4, channels: 3, background: "#808080" } });
    assert.equal(sniffImageFormat(await base.clone().jpeg().toBuffer()), "jpeg");
    assert.equal(sniffImageFormat(await base.clone().png().toBuffer()), "png");
    assert.equal(sniffImageFormat(await base.clone().webp().toBuffer()), "webp");
    assert.equal(sniffImageFormat(await base.clone().gif().toBuffer()), "gif");
    assert.equal(sniffImageFormat(Buffer.from("<svg></svg>")), undefined);
  });

  it("crops the centre, letterboxes with padding, or stretches", async () => {
    const img = await thirds();
    const crop = await decodeImage(img, pre({ width: 30, height: 30, resize: "crop" }));
    assert.ok(crop.image);
    assert.deepEqual(pixel(crop.image, 1, 15), [0, 255, 0], "crop keeps only the green middle");
    assert.deepEqual(pixel(crop.image, 28, 15), [0, 255, 0]);

    const box = await decodeImage(
      img,
      pre({ width: 30, height: 30, resize: "letterbox", padColor: [9, 9, 9] }),
    );
    assert.ok(box.image);
    assert.deepEqual(pixel(box.image, 15, 1), [9, 9, 9], "padding above");
    assert.deepEqual(pixel(box.image, 15, 28), [9, 9, 9], "padding below");
    assert.equal(pixel(box.image, 1, 15)[0], 255, "red at the left");
    assert.equal(pixel(box.image, 28, 15)[2], 255, "blue at the right");

    const stretch = await decodeImage(img, pre({ width: 30, height: 30, resize: "stretch" }));
    assert.ok(stretch.image);
    assert.equal(pixel(stretch.image, 1, 1)[0], 255, "red reaches the top-left corner");
    assert.equal(pixel(stretch.image, 28, 28)[2], 255, "blue the bottom-right");

    // Resize the shorter side to 60 (image 180×60), then take the middle 30×30.
    const two = await decodeImage(img, pre({ width: 30, height: 30, shorterSide: 60 }));
    assert.ok(two.image);
    assert.deepEqual(pixel(two.image, 1, 1), [0, 255, 0]);

    const gray = await decodeImage(img, pre({ width: 6, height: 6, channels: "gray" }));
    assert.equal(gray.image?.channels, 1);
    assert.equal(gray.image?.pixels.length, 36);
  });

  it("turns empty, non-image, corrupt, truncated, unaccepted and oversized inputs into reasons", async () => {
    const p = pre({ width: 16, height: 16 });
    const jpeg = await sharp({
      create: { width: 300, height: 200, channels: 3, background: "#3366aa" },
    })
      .jpeg()
      .toBuffer();
    const png = await sharp({
      create: { width: 300, height: 200, channels: 3, background: "#3366aa" },
    })
      .png()
      .toBuffer();
    const cases: [Buffer, ImagePreprocess, RegExp][] = [
      [Buffer.alloc(0), p, /empty object/],
      [Buffer.from("hello, world\n"), p, /not an image: the object is text/],
      [Buffer.from('<?xml version="1.0"?><svg/>'), p, /SVG/],
      [Buffer.from("%PDF-1.7\n..."), p, /PDF/],
      [jpeg.subarray(0, Math.floor(jpeg.length / 2)), p, /truncated jpeg|corrupt jpeg/],
      [Buffer.concat([png.subarray(0, 40), Buffer.alloc(200, 7)]), p, /corrupt png|truncated png/],
      [
        await sharp(png).gif().toBuffer(),
        pre({ width: 16, height: 16, formats: ["jpeg", "png"] }),
        /gif images are not accepted/,
      ],
      [png, pre({ width: 16, height: 16, maxInputPixels: 50_000 }), /more than 50000 pixels/],
    ];
    for (const [body, preprocess, reason] of cases) {
      const result = await decodeImage(body, preprocess);
      assert.equal(result.image, undefined, `${reason} should fail`);
      assert.match(result.reason ?? "", reason);
    }
    // And the good ones decode.
    assert.ok((await decodeImage(jpeg, p)).image);
    assert.ok((await decodeImage(png, p)).image);
  });
});

describe("tensor packing", () => {
  const pixels = Uint8Array.from([10, 20, 30, 40, 50, 60]); // 1×2 image, RGB
  it("copies uint8 NHWC as is", () => {
    const plan = packPlan(pre({ width: 2, height: 1, dtype: "uint8", layout: "nhwc" }));
    const out = new Uint8Array(12);
    packImage(plan, pixels, out, 1);
    assert.deepEqual([...out.subarray(6)], [...pixels]);
  });
  it("transposes to NCHW, swaps to BGR and normalises float32", () => {
    const plan = packPlan(
      pre({ width: 2, height: 1, channels: "bgr", mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] }),
    );
    const out = new Float32Array(6);
    packImage(plan, pixels, out, 0);
    // channel 0 of the tensor is blue (30, 60), normalised with mean[0]/std[0].
    const expect = [
      (30 / 255 - 0.1) / 0.5,
      (60 / 255 - 0.1) / 0.5,
      (20 / 255 - 0.2) / 0.25,
      (50 / 255 - 0.2) / 0.25,
      (10 / 255 - 0.3) / 2,
      (40 / 255 - 0.3) / 2,
    ];
    expect.forEach((v, i) => {
      assert.ok(Math.abs((out[i] as number) - v) < 1e-6, `value ${i}`);
    });
  });
});

describe("scores and top-k", () => {
  it("softmax sums to one and keeps order; top-k picks the largest first", () => {
    const out = new Float32Array(4);
    toScores(Float32Array.of(1000, 999, -5, 0), "softmax", out);
    assert.ok(Math.abs(out.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.deepEqual(topK(out, 2), [0, 1]);
    toScores(Float32Array.of(0, 2), "sigmoid", out);
    assert.ok(Math.abs((out[0] as number) - 0.5) < 1e-7);
    assert.deepEqual(topK(Float32Array.of(0.1, 0.7, 0.7, 0.2), 3), [1, 2, 3]);
  });

  it("refuses a model whose outputs don't match the labels", () => {
    const d = parseImageDescriptor(descriptor({}));
    const decoder = new ImageDecoder(d.task, ["a", "b", "c"]);
    const window: Window<{ names: string[] }> = {
      batches: [{ feeds: {}, rows: 1 }],
      records: 1,
      meta: { names: ["x.jpg"] },
    };
    assert.throws(
      () =>
        decoder.write(
          window,
          [{ y: { type: "float32", data: new Float32Array(4), dims: [1, 4] } }],
          new CollectingSink(),
        ),
      /4 values per image .* 3 labels/,
    );
  });
});

describe("prepareAhead", () => {
  async function* blocks(n: number): AsyncGenerator<RecordBlock> {
    for (let i = 0; i < n; i++) {
      const block: ObjectBlock = {
        kind: "objects",
        count: 1,
        names: [`b${i}`],
        bodies: [undefined],
        problems: [undefined],
        positions: Float64Array.of(i),
        nextPositions: Float64Array.of(i + 1),
      };
      yield block;
    }
  }

  it("prepares later blocks while the consumer works, and keeps order", async () => {
    const started: string[] = [];
    let open = false;
    const waiting: (() => void)[] = [];
    const encoder = {
      prepare(block: RecordBlock): Promise<void> {
        started.push((block as ObjectBlock).names[0] as string);
        return open ? Promise.resolve() : new Promise((resolve) => waiting.push(resolve));
      },
    };
    const it = prepareAhead(blocks(5), encoder, 3)[Symbol.asyncIterator]();
    const first = it.next();
    // The pump starts three preparations, then waits for room; nothing is consumed yet.
    while (started.length < 3) await new Promise((resolve) => setImmediate(resolve));
    for (let k = 0; k < 5; k++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, ["b0", "b1", "b2"]);
    open = true;
    for (const resolve of waiting.splice(0)) resolve();
    const got = [((await first).value as ObjectBlock).names[0]];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      got.push((r.value as ObjectBlock).names[0]);
    }
    assert.deepEqual(got, ["b0", "b1", "b2", "b3", "b4"]);
  });

  it("surfaces a failed prepare at its block", async () => {
    const encoder = {
      prepare: (block: RecordBlock) =>
        (block as ObjectBlock).names[0] === "b2"
          ? Promise.reject(new Error("decoder crashed"))
          : Promise.resolve(),
    };
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const b of prepareAhead(blocks(5), encoder))
        seen.push((b as ObjectBlock).names[0] as string);
    }, /decoder crashed/);
    assert.deepEqual(seen, ["b0", "b1"]);
  });
});

describe("image classification end to end (shapes model, object store, onnxruntime)", () => {
  let root: string;
  let store: LocalObjectStore;
  let modelDir: string;
  let testAccuracy = 0;
  let truth: Map<string, string>;
  const COUNT = 60;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "images-"));
    store = new LocalObjectStore({ root: join(root, "store") });
    const model = await trainShapesModel({ trainImages: 400, testImages: 150 });
    testAccuracy = model.testAccuracy;
    modelDir = join(root, "model");
    await writeShapesModel(modelDir, model);
    const written = await writeShapeDataset(
      async (name, bytes) => {
        await store.put("media", name, bytes);
      },
      { count: COUNT, seed: 99, prefix: "lib/", bad: true },
    );
    truth = new Map(written.map((w) => [w.name, w.label]));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function classify(descriptorFile: string, concurrency = 3) {
    const model = await loadImageModel(join(modelDir, descriptorFile));
    const task = createImageTask(model, { batchSize: 8, decodeConcurrency: 2 });
    const manifest = await writeManifest(
      store,
      { bucket: "media", prefix: "lib/" },
      { bucket: "jobs", name: `${descriptorFile}/manifest.jsonl` },
      { maxObjects: 1000 },
    );
    assert.equal(manifest.partitions.length, 1);
    const p = manifest.partitions[0];
    assert.ok(p);
    const session = await ort.InferenceSession.create(model.onnxBytes);
    const sink = new CollectingSink();
    const source = new ObjectListSource({
      store,
      manifest: { bucket: "jobs", name: `${descriptorFile}/manifest.jsonl` },
      objectsBucket: "media",
      start: p.start,
      end: p.end,
      concurrency,
      blockRecords: 8,
    });
    const result = await runSeam({
      ort,
      session,
      source,
      from: p.start,
      encoder: task.newEncoder(),
      decoder: task.decoder,
      sink,
    });
    await session.release();
    return { task, sink, result };
  }

  it("the generated model classifies held-out shapes (accuracy recorded in its descriptor)", async () => {
    assert.ok(testAccuracy >= 0.85, `held-out accuracy ${testAccuracy}`);
    const d = JSON.parse(await readFile(join(modelDir, "shapes.json"), "utf8"));
    assert.equal(d.metrics.testAccuracy, testAccuracy);
  });

  it("classifies every good image once, in order, and every bad object gets a reason", async () => {
    const { task, sink, result } = await classify("shapes.json");
    assert.deepEqual(
      task.outputColumns.map((c) => c.name),
      ["object", "label", "score", "top_labels", "top_scores"],
    );
    const names = sink.rows.map((r) => r[0] as string);
    assert.deepEqual(names, [...truth.keys()].sort(), "one row per good image, in name order");
    let right = 0;
    for (const [name, label, score, labels, scores] of sink.rows as [
      string,
      string,
      number,
      string[],
      number[],
    ][]) {
      if (label === labelFromName(name)) right++;
      assert.equal(labels.length, 3);
      assert.equal(labels[0], label);
      assert.equal(scores[0], score);
      assert.ok(score > 0 && score <= 1);
      assert.ok((scores[0] as number) >= (scores[1] as number));
    }
    assert.ok(right / COUNT >= 0.8, `accuracy on the library ${right}/${COUNT}`);
    const reasons = new Map(result.bad.map((b) => [b.key.slice("lib/".length), b.reason]));
    assert.match(reasons.get(BAD_OBJECTS.empty) ?? "", /empty object/);
    assert.match(reasons.get(BAD_OBJECTS.truncated) ?? "", /truncated jpeg|corrupt jpeg/);
    assert.match(reasons.get(BAD_OBJECTS.corrupt) ?? "", /corrupt png|truncated png/);
    assert.match(reasons.get(BAD_OBJECTS.text) ?? "", /not an image/);
    assert.match(reasons.get(BAD_OBJECTS.bomb) ?? "", /more than 25000000 pixels/);
    assert.equal(result.bad.length, 5);
    assert.equal(result.records, COUNT);
  });

  it("uint8 NHWC (normalised in the graph) and float32 NCHW (normalised in JS) agree", async () => {
    const a = await classify("shapes.json");
    const b = await classify("shapes-f32.json", 1);
    assert.equal(a.sink.rows.length, b.sink.rows.length);
    a.sink.rows.forEach((row, i) => {
      const other = b.sink.rows[i] as unknown[];
      assert.equal(row[0], other[0]);
      assert.equal(row[1], other[1], `${row[0]}: same label`);
      assert.ok(Math.abs((row[2] as number) - (other[2] as number)) < 1e-4, "same score");
    });
  });

  it("writes raw logits when asked", async () => {
    const file = join(modelDir, "shapes.json");
    const d = JSON.parse(await readFile(file, "utf8"));
    d.task.includeLogits = true;
    await writeFile(join(modelDir, "shapes-logits.json"), JSON.stringify(d));
    const { task, sink } = await classify("shapes-logits.json");
    assert.equal(task.outputColumns.at(-1)?.name, "logits");
    const row = sink.rows[0] as unknown[];
    const logits = row[5] as number[];
    assert.equal(logits.length, 5);
    const scores = new Float32Array(5);
    toScores(Float32Array.from(logits), "softmax", scores);
    assert.ok(
      Math.abs((scores[topK(scores, 1)[0] as number] as number) - (row[2] as number)) < 1e-6,
    );
  });
});
