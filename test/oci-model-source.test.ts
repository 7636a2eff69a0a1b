/**
 * The model source: a churn model trained by the project's own code, placed in
 * an object store (`oci://`) and, zipped, in the Data Science stand-in (model
 * OCID); each is resolved into the node-local cache, loaded and run through
 * onnxruntime, then resolved again from the cache without a download. Plus the
 * hostile and broken artifacts a catalog can hold.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { DataScienceClient } from "oci-datascience";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { createClient } from "../src/adapters/oci/clients.ts";
import {
  createModelLoader,
  createModelResolver,
  parseModelLocation,
} from "../src/adapters/oci/model-source.ts";
import { ZipReader } from "../src/adapters/oci/zip-reader.ts";
import { type LoadedModel, loadModel } from "../src/model/descriptor.ts";
import type { ByteRange, ObjectStore } from "../src/ports/object-store.ts";
import { openTabularSession } from "../src/tasks/tabular/tabular-task.ts";
import { writeTextModel } from "../src/tasks/text-embedding/model-gen/generate.ts";
import { shapesModelDir } from "./helpers/media-fixture.ts";
import { churnModel, tempDir } from "./helpers/pipeline-fixture.ts";
import { buildZip, crc32Of } from "./helpers/zip-writer.ts";
import { registerDataScience } from "./oci-standin/datascience.ts";
import { type OciStandIn, standInAuth, startStandIn } from "./oci-standin/server.ts";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function scratch(): Promise<string> {
  const t = await tempDir("model-source-");
  cleanups.push(t.cleanup);
  return t.dir;
}

/** An ObjectStore that counts reads per object name (the "content GETs" of the port). */
class CountingStore implements ObjectStore {
  readonly reads = new Map<string, number>();
  constructor(private readonly inner: ObjectStore) {}
  head(bucket: string, name: string) {
    return this.inner.head(bucket, name);
  }
  read(bucket: string, name: string, range?: ByteRange): Promise<Readable> {
    this.reads.set(name, (this.reads.get(name) ?? 0) + 1);
    return this.inner.read(bucket, name, range);
  }
  put(...args: Parameters<ObjectStore["put"]>) {
    return this.inner.put(...args);
  }
  list(...args: Parameters<ObjectStore["list"]>) {
    return this.inner.list(...args);
  }
  delete(bucket: string, name: string) {
    return this.inner.delete(bucket, name);
  }
  total(): number {
    return [...this.reads.values()].reduce((a, b) => a + b, 0);
  }
}

/** Scores of a fixed batch, through the project's scorer on onnxruntime. */
async function scoresOf(loaded: LoadedModel): Promise<number[]> {
  assert.ok(loaded.kind === "tabular");
  const model = loaded;
  const rows = 16;
  const features = new Float32Array(rows * model.width);
  for (let i = 0; i < features.length; i++) features[i] = ((i * 7919) % 101) / 50 - 1;
  const { session } = await openTabularSession(model, { thread: false });
  try {
    const out = await session.run({
      [model.descriptor.input.name]: { type: "float32", data: features, dims: [rows, model.width] },
    });
    const first = out[model.descriptor.outputs[0]?.name ?? ""]?.data;
    assert.ok(first instanceof Float32Array);
    return [...first];
  } finally {
    await session.close();
  }
}

async function modeOf(p: string): Promise<number> {
  return (await stat(p)).mode & 0o777;
}

function dsModelId(): string {
  return `ocid1.datasciencemodel.oc1.iad.${randomBytes(10).toString("hex")}`;
}

describe("model source", () => {
  let descriptorPath = "";
  let descriptorText = "";
  let onnxBytes: Buffer = Buffer.alloc(0);
  let expected: number[] = [];
  let server: OciStandIn;
  let ds: ReturnType<typeof registerDataScience>;
  let dsClient: DataScienceClient;

  before(async () => {
    descriptorPath = await churnModel();
    descriptorText = await readFile(descriptorPath, "utf8");
    const original = await loadModel(descriptorPath);
    onnxBytes = Buffer.from(original.onnxBytes);
    expected = await scoresOf(original);
    server = await startStandIn();
    ds = registerDataScience(server);
    dsClient = createClient(DataScienceClient, standInAuth(), { endpoint: server.url });
  });
  after(async () => {
    await server?.close();
  });

  function artifactGets(modelId: string): number {
    return server.requests.filter(
      (r) => r.method === "GET" && r.path === `/20190101/models/${modelId}/artifact/content`,
    ).length;
  }

  it("parses the location forms and names them when one is not understood", () => {
    assert.deepEqual(parseModelLocation("models/churn/descriptor.json"), {
      kind: "local",
      path: "models/churn/descriptor.json",
    });
    assert.deepEqual(parseModelLocation("oci://models@ns/churn/v1/descriptor.json"), {
      kind: "object-storage",
      bucket: "models",
      namespace: "ns",
      object: "churn/v1/descriptor.json",
    });
    assert.equal(parseModelLocation("ocid1.datasciencemodel.oc1.iad.abc").kind, "datascience");
    for (const bad of ["s3://b/k", "oci://nobucket/x", "oci://b@ns/", "ocid1.bucket.oc1..x", ""]) {
      assert.throws(
        () => parseModelLocation(bad),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "INVALID_ARGUMENT", bad);
          assert.match(err.message, /oci:\/\/<bucket>@<namespace>/);
          assert.match(err.message, /ocid1\.datasciencemodel/);
          assert.match(err.message, /local path/);
          return true;
        },
      );
    }
  });

  it("returns a local path as is", async () => {
    const resolve = createModelResolver({ cacheDir: await scratch() });
    assert.equal(await resolve(descriptorPath), descriptorPath);
  });

  it("resolves oci:// through the object store, scores, and reuses the cache", async () => {
    const dir = await scratch();
    const store = new CountingStore(new LocalObjectStore({ root: path.join(dir, "buckets") }));
    await store.put("models", "churn/v1/descriptor.json", descriptorText);
    await store.put("models", "churn/v1/model.onnx", onnxBytes);
    const cacheDir = path.join(dir, "cache");
    const load = createModelLoader({ cacheDir, objectStore: store });
    const location = "oci://models@standin-ns/churn/v1/descriptor.json";

    const model = await load(location);
    assert.ok(model.descriptorPath.startsWith(cacheDir + path.sep));
    assert.equal(model.identity.descriptor, location);
    assert.deepEqual(await scoresOf(model), expected);
    assert.equal(store.total(), 2);

    // Content-addressed, private: <cacheDir>/<sha256>/..., 0o700 dirs and 0o600 files.
    const modelDir = path.dirname(model.descriptorPath);
    assert.match(path.basename(modelDir), /^[0-9a-f]{64}$/);
    assert.equal(path.dirname(modelDir), cacheDir);
    assert.equal(await modeOf(cacheDir), 0o700);
    assert.equal(await modeOf(modelDir), 0o700);
    assert.equal(await modeOf(model.descriptorPath), 0o600);
    assert.equal(await modeOf(model.onnxPath), 0o600);

    // Again, from a fresh resolver (another worker on the node): no download.
    const again = await createModelResolver({ cacheDir, objectStore: store })(location);
    assert.equal(again, model.descriptorPath);
    assert.equal(store.total(), 2);
    // No temporary files left behind.
    assert.deepEqual(
      (await readdir(cacheDir)).filter((n) => n.startsWith(".tmp")),
      [],
    );
  });

  it("reuses the cache for a model file of several hundred KB (the cache check reads it through)", async () => {
    const dir = await scratch();
    const { writeMlpModel } = await import("../scripts/train-model.ts");
    const { descriptorPath } = await writeMlpModel({ outDir: path.join(dir, "mlp"), seed: 5 });
    const big = await readFile(path.join(dir, "mlp", "model.onnx"));
    assert.ok(big.length > 200_000, `model is ${big.length} bytes`);
    const store = new CountingStore(new LocalObjectStore({ root: path.join(dir, "buckets") }));
    await store.put("models", "mlp/descriptor.json", await readFile(descriptorPath));
    await store.put("models", "mlp/model.onnx", big);
    const cacheDir = path.join(dir, "cache");
    const location = "oci://models@standin-ns/mlp/descriptor.json";
    const first = await createModelResolver({ cacheDir, objectStore: store })(location);
    // A second resolver (another job, another worker on the node) verifies the cached
    // files by hashing them: before the fix that hash never finished for a file this big.
    const again = await createModelResolver({ cacheDir, objectStore: store })(location);
    assert.equal(again, first);
    assert.equal(store.total(), 2, "no second download");
  });

  it("fetches every file a descriptor names: an image model's labels file, a text model's directory (onnx/ layout)", async () => {
    const dir = await scratch();
    const store = new CountingStore(new LocalObjectStore({ root: path.join(dir, "buckets") }));
    // The image model: descriptor, uint8 ONNX file and labels.txt beside it.
    const shapes = await shapesModelDir();
    for (const name of ["shapes.json", "model-uint8.onnx", "labels.txt"]) {
      await store.put("models", `shapes/${name}`, await readFile(path.join(shapes, name)));
    }
    const cacheDir = path.join(dir, "cache");
    const load = createModelLoader({ cacheDir, objectStore: store });
    const image = await load("oci://models@ns/shapes/shapes.json");
    const local = await loadModel(path.join(shapes, "shapes.json"));
    assert.ok(image.kind === "image-classification" && local.kind === "image-classification");
    assert.deepEqual(image.labels, local.labels);
    assert.equal(store.total(), 3);
    // The cache is checked against all three etags: a new labels file is fetched again.
    await store.put("models", "shapes/labels.txt", `${local.labels.join("\n")}\n`);
    await load("oci://models@ns/shapes/shapes.json");
    assert.equal(store.reads.get("shapes/labels.txt"), 2);

    // The text model: an optimum-style export (onnx/model.onnx) with its tokenizer files.
    const textDir = path.join(dir, "text");
    await writeTextModel(textDir, { hidden: 32, layers: 1, heads: 2, intermediate: 64 });
    const textFiles = [
      "descriptor.json",
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "onnx/model.onnx",
    ];
    for (const name of textFiles) {
      await store.put("models", `text/${name}`, await readFile(path.join(textDir, name)));
    }
    const text = await load("oci://models@ns/text/descriptor.json");
    assert.equal(text.kind, "text-embedding");
    const reference = await loadModel(path.join(textDir, "descriptor.json"));
    assert.deepEqual(
      [text.identity.sha256, text.identity.descriptorSha256, text.identity.dimension],
      [
        reference.identity.sha256,
        reference.identity.descriptorSha256,
        reference.identity.dimension,
      ],
      "the cached directory is the same model: weights, tokenizer and settings",
    );

    // The same directory as a Data Science artifact.
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip(
        await Promise.all(
          textFiles.map(async (name) => ({
            name: `m/${name}`,
            data: await readFile(path.join(textDir, name)),
          })),
        ),
      ),
    );
    const fromZip = await createModelLoader({ cacheDir: await scratch(), datascience: dsClient })(
      modelId,
    );
    assert.equal(fromZip.kind, "text-embedding");

    // A missing tokenizer is named, and nothing is cached.
    await store.delete("models", "text/tokenizer.json");
    await assert.rejects(
      createModelResolver({ cacheDir: await scratch(), objectStore: store })(
        "oci://models@ns/text/descriptor.json",
      ),
      (err: Error & { code?: string }) =>
        err.code === "INVALID_MODEL" &&
        /tokenizer oci:\/\/models@ns\/text\/tokenizer\.json, which does not exist/.test(
          err.message,
        ),
    );
  });

  it("downloads again when the descriptor's etag changes", async () => {
    const dir = await scratch();
    const store = new CountingStore(new LocalObjectStore({ root: path.join(dir, "buckets") }));
    await store.put("models", "m/descriptor.json", descriptorText);
    await store.put("models", "m/model.onnx", onnxBytes);
    const resolve = createModelResolver({ cacheDir: path.join(dir, "cache"), objectStore: store });
    const first = await resolve("oci://models@ns/m/descriptor.json");
    const changed = JSON.parse(descriptorText) as { version: string };
    changed.version = "2";
    await store.put("models", "m/descriptor.json", JSON.stringify(changed));
    const second = await resolve("oci://models@ns/m/descriptor.json");
    assert.notEqual(second, first);
    assert.equal((await loadModel(second)).descriptor.version, "2");
    assert.equal(store.reads.get("m/descriptor.json"), 2);
  });

  it("resolves an ONNX file named outside the descriptor's folder, and refuses one outside the bucket", async () => {
    const dir = await scratch();
    const store = new LocalObjectStore({ root: path.join(dir, "buckets") });
    const d = JSON.parse(descriptorText) as { onnx: string };
    await store.put("models", "shared/weights.onnx", onnxBytes);
    await store.put(
      "models",
      "churn/v2/descriptor.json",
      JSON.stringify({ ...d, onnx: "../../shared/weights.onnx" }),
    );
    await store.put("models", "top.json", JSON.stringify({ ...d, onnx: "../escape.onnx" }));
    const resolve = createModelResolver({ cacheDir: path.join(dir, "cache"), objectStore: store });
    const model = await loadModel(await resolve("oci://models@ns/churn/v2/descriptor.json"));
    assert.deepEqual(await scoresOf(model), expected);
    await assert.rejects(resolve("oci://models@ns/top.json"), { code: "UNSAFE_PATH" });
    await assert.rejects(resolve("oci://models@ns/missing/descriptor.json"), { code: "NOT_FOUND" });
  });

  it("resolves a Data Science model OCID from its zip artifact, and reuses the cache", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "runtime.yaml", data: "MODEL_ARTIFACT_VERSION: '3.0'\n" },
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: onnxBytes },
      ]),
    );
    const cacheDir = await scratch();
    const load = createModelLoader({ cacheDir, datascience: dsClient });
    const model = await load(modelId);
    assert.equal(model.identity.descriptor, modelId);
    assert.deepEqual(await scoresOf(model), expected);
    assert.equal(artifactGets(modelId), 1);
    // Only the descriptor and its ONNX file are extracted.
    assert.ok(!existsSync(path.join(path.dirname(model.descriptorPath), "runtime.yaml")));

    const again = await createModelResolver({ cacheDir, datascience: dsClient })(modelId);
    assert.equal(again, model.descriptorPath);
    assert.equal(artifactGets(modelId), 1, "the second resolution downloads nothing");
  });

  it("finds the single *.json with an onnx field in a nested, stored artifact", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "churn/", data: "", method: "store" },
        { name: "churn/metrics.json", data: '{"auc": 0.8}' },
        { name: "churn/churn.json", data: descriptorText, method: "store" },
        { name: "churn/model.onnx", data: onnxBytes, method: "store" },
      ]),
    );
    const resolve = createModelResolver({ cacheDir: await scratch(), datascience: dsClient });
    const descriptor = await resolve(modelId);
    assert.equal(path.basename(descriptor), "churn.json");
    assert.deepEqual(await scoresOf(await loadModel(descriptor)), expected);
  });

  it("shares one cache between resolvers racing for the same model", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: onnxBytes },
      ]),
    );
    const cacheDir = await scratch();
    const paths = await Promise.all(
      [1, 2, 3].map(() => createModelResolver({ cacheDir, datascience: dsClient })(modelId)),
    );
    assert.equal(new Set(paths).size, 1);
    assert.deepEqual(await scoresOf(await loadModel(paths[0] as string)), expected);
    assert.equal((await readdir(cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 1);
  });

  it("downloads again when a cached file was damaged", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: onnxBytes },
      ]),
    );
    const cacheDir = await scratch();
    const resolve = createModelResolver({ cacheDir, datascience: dsClient });
    const first = await resolve(modelId);
    await writeFile(path.join(path.dirname(first), "model.onnx"), "torn");
    const second = await resolve(modelId);
    assert.equal(second, first);
    assert.equal(artifactGets(modelId), 2);
    assert.deepEqual(await scoresOf(await loadModel(second)), expected);
  });

  it("refuses, retryably, an artifact that arrives damaged (content-md5), keeping nothing", async () => {
    const modelId = dsModelId();
    const bytes = buildZip([
      { name: "descriptor.json", data: descriptorText },
      { name: "model.onnx", data: onnxBytes },
    ]);
    ds.putModelArtifact(modelId, bytes);
    const damaged = Buffer.from(bytes);
    damaged[100] = (damaged[100] as number) ^ 0xff;
    const remove = server.inject((req) =>
      req.method === "GET" && req.rawPath.includes(modelId)
        ? {
            status: 200,
            headers: { "content-md5": createHash("md5").update(bytes).digest("base64") },
            body: damaged,
          }
        : undefined,
    );
    const cacheDir = await scratch();
    try {
      const resolve = createModelResolver({ cacheDir, datascience: dsClient });
      await assert.rejects(
        resolve(modelId),
        (err: Error & { code?: string; retryable?: boolean }) => {
          assert.equal(err.code, "STORE_UNAVAILABLE");
          assert.equal(err.retryable, true);
          assert.match(err.message, /content-md5/);
          return true;
        },
      );
    } finally {
      remove();
    }
    assert.deepEqual(
      (await readdir(cacheDir)).filter((n) => n !== ".index"),
      [],
    );
  });

  it("refuses a zip with a ../ entry (zip-slip) and writes nothing outside the cache", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: onnxBytes },
        { name: "../evil", data: "#!/bin/sh\n" },
      ]),
    );
    const dir = await scratch();
    const cacheDir = path.join(dir, "cache");
    const resolve = createModelResolver({ cacheDir, datascience: dsClient });
    await assert.rejects(resolve(modelId), (err: Error & { code?: string; name: string }) => {
      assert.equal(err.name, "UnsafePathError");
      assert.equal(err.code, "UNSAFE_PATH");
      assert.match(err.message, /\.\.\/evil/);
      return true;
    });
    assert.ok(!existsSync(path.join(dir, "evil")));
    assert.deepEqual(
      (await readdir(cacheDir)).filter((n) => n !== ".index"),
      [],
    );
    for (const name of ["/etc/passwd", "C:\\evil", "a/../../b", "a\\..\\b"]) {
      const zipFile = path.join(dir, `x-${randomBytes(4).toString("hex")}.zip`);
      await writeFile(zipFile, buildZip([{ name, data: "x" }]));
      await assert.rejects(ZipReader.open(zipFile), { code: "UNSAFE_PATH" }, name);
    }
  });

  it("refuses a descriptor whose ONNX path leaves the artifact", async () => {
    const modelId = dsModelId();
    const d = JSON.parse(descriptorText) as Record<string, unknown>;
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: JSON.stringify({ ...d, onnx: "../model.onnx" }) },
      ]),
    );
    const resolve = createModelResolver({ cacheDir: await scratch(), datascience: dsClient });
    await assert.rejects(resolve(modelId), { code: "UNSAFE_PATH" });
  });

  it("reports a corrupted zip (bad CRC-32) as a model error that says so", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: onnxBytes, crc32: (crc32Of(onnxBytes) ^ 1) >>> 0 },
      ]),
    );
    const cacheDir = await scratch();
    const resolve = createModelResolver({ cacheDir, datascience: dsClient });
    await assert.rejects(resolve(modelId), (err: Error & { code?: string }) => {
      assert.equal(err.code, "INVALID_MODEL");
      assert.match(err.message, /CRC-32/);
      assert.match(err.message, /corrupted/);
      return true;
    });
    assert.deepEqual(
      (await readdir(cacheDir)).filter((n) => n !== ".index"),
      [],
    );
  });

  it("reads a zip64 artifact", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip(
        [
          { name: "descriptor.json", data: descriptorText },
          { name: "model.onnx", data: onnxBytes },
        ],
        { zip64: true },
      ),
    );
    const resolve = createModelResolver({ cacheDir: await scratch(), datascience: dsClient });
    assert.deepEqual(await scoresOf(await loadModel(await resolve(modelId))), expected);
  });

  it("reports a truncated, non-zip or half-zip64 archive clearly", async () => {
    const dir = await scratch();
    const good = buildZip([{ name: "a.txt", data: "hello" }]);
    const notZip = path.join(dir, "not.zip");
    await writeFile(notZip, good.subarray(0, good.length - 10));
    await assert.rejects(ZipReader.open(notZip), /End of Central Directory/);
    const zip64 = Buffer.from(good);
    zip64.writeUInt32LE(0xffffffff, zip64.length - 6);
    const zip64File = path.join(dir, "z64.zip");
    await writeFile(zip64File, zip64);
    await assert.rejects(ZipReader.open(zip64File), /zip64 locator/);

    const modelId = dsModelId();
    ds.putModelArtifact(modelId, Buffer.from("this is not a zip archive at all, just text"));
    const resolve = createModelResolver({ cacheDir: await scratch(), datascience: dsClient });
    await assert.rejects(resolve(modelId), { code: "INVALID_MODEL" });
  });

  it("a non-ONNX file as the model fails with the project's ModelError when loaded", async () => {
    const modelId = dsModelId();
    ds.putModelArtifact(
      modelId,
      buildZip([
        { name: "descriptor.json", data: descriptorText },
        { name: "model.onnx", data: "definitely not protobuf\n".repeat(50) },
      ]),
    );
    const load = createModelLoader({ cacheDir: await scratch(), datascience: dsClient });
    const model = await load(modelId);
    await assert.rejects(openTabularSession(model, { thread: false }), (err: Error) => {
      assert.equal(err.name, "ModelError");
      assert.match(err.message, /is it an ONNX file/);
      return true;
    });
  });

  it("says which artifact is missing, and which client is not configured", async () => {
    const resolve = createModelResolver({ cacheDir: await scratch(), datascience: dsClient });
    // Data Science answers "missing" and "not authorized" alike: a retryable configuration error.
    await assert.rejects(
      resolve(dsModelId()),
      (err: { code?: string; retryable?: boolean; message?: string }) =>
        err.code === "STORE_UNAVAILABLE" &&
        err.retryable === true &&
        /Data Science model ocid1\./.test(err.message ?? ""),
    );
    const bare = createModelResolver({ cacheDir: await scratch() });
    await assert.rejects(bare(dsModelId()), /no Data Science client/);
    await assert.rejects(bare("oci://b@ns/d.json"), /no object store/);
  });

  it("reads the stand-in's artifact by range, as the SDK asks for one", async () => {
    const modelId = dsModelId();
    const bytes = buildZip([{ name: "descriptor.json", data: descriptorText }]);
    ds.putModelArtifact(modelId, bytes);
    const { Range } = await import("oci-common");
    const part = await dsClient.getModelArtifactContent({ modelId, range: new Range(4, 9, null) });
    const chunks: Buffer[] = [];
    for await (const c of part.value as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(chunks), bytes.subarray(4, 10));
    const head = await dsClient.headModelArtifact({ modelId });
    assert.equal(head.contentLength, bytes.length);
    assert.match(head.contentDisposition, /attachment; filename=/);
    assert.ok(head.etag);
  });
});
