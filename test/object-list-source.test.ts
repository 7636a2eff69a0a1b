import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import type { ByteRange, ObjectStore } from "../src/ports/object-store.ts";
import {
  encodeManifestLine,
  parseManifestLine,
  writeManifest,
} from "../src/sources/objects/manifest.ts";
import { ObjectListSource } from "../src/sources/objects/object-list-source.ts";
import { readBytes } from "../src/sources/read-bytes.ts";
import type { ObjectBlock } from "../src/sources/record-source.ts";

/** Wraps a store: counts list calls and the most concurrent reads of objects under `docs/`. */
class CountingStore implements ObjectStore {
  lists = 0;
  active = 0;
  maxActive = 0;
  constructor(private readonly inner: ObjectStore) {}
  head(b: string, n: string) {
    return this.inner.head(b, n);
  }
  async read(b: string, n: string, r?: ByteRange): Promise<Readable> {
    if (!n.startsWith("docs/")) return this.inner.read(b, n, r);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      // Yield to the event loop a few times so concurrent GETs really overlap.
      for (let k = 0; k < 3; k++) await new Promise((resolve) => setImmediate(resolve));
      return await this.inner.read(b, n, r);
    } finally {
      this.active--;
    }
  }
  put(...args: Parameters<ObjectStore["put"]>) {
    return this.inner.put(...args);
  }
  list(...args: Parameters<ObjectStore["list"]>) {
    this.lists++;
    return this.inner.list(...args);
  }
  delete(b: string, n: string) {
    return this.inner.delete(b, n);
  }
}

async function collectAll(source: ObjectListSource, from: number): Promise<ObjectBlock[]> {
  const blocks: ObjectBlock[] = [];
  for await (const block of source.read(from)) blocks.push(block);
  return blocks;
}

function bodyOf(i: number): Buffer {
  return Buffer.from(`document ${i} `.repeat(1 + (i % 7)));
}

describe("object-list manifest and source", () => {
  let root: string;
  let store: CountingStore;
  const N = 1234;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "objlist-"));
    store = new CountingStore(new LocalObjectStore({ root }));
    for (let i = 0; i < N; i++) {
      await store.put("in", `docs/${String(i).padStart(5, "0")}.txt`, bodyOf(i));
    }
    await store.put("in", "other/x.txt", "not under the prefix");
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("encodes names that need escaping and refuses a damaged line", () => {
    const entry = { name: 'a "quoted"\nname,\t☃', size: 12, etag: "e1" };
    const line = encodeManifestLine(entry);
    assert.equal(line.indexOf("\n"), line.length - 1);
    assert.deepEqual(parseManifestLine(line.slice(0, -1)), entry);
    assert.throws(() => parseManifestLine('["a", -1, "e"]'), /damaged/);
    assert.throws(() => parseManifestLine("{"), /damaged/);
  });

  it("lists with paging into a manifest and cuts partitions by count and bytes", async () => {
    const listsBefore = store.lists;
    const manifest = await writeManifest(
      store,
      { bucket: "in", prefix: "docs/", pageSize: 100 },
      { bucket: "jobs", name: "job1/manifest.jsonl" },
      { maxObjects: 100, maxBytes: 5000 },
    );
    assert.ok(store.lists - listsBefore >= Math.ceil(N / 100), "listed page by page");
    assert.equal(manifest.objects, N);
    const text = (await readBytes(store, "jobs", "job1/manifest.jsonl")).toString("utf8");
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, N);
    assert.equal(Buffer.byteLength(text), manifest.bytes);
    const names = lines.map((l) => parseManifestLine(l).name);
    assert.deepEqual(names, [...names].sort(), "manifest is in name order");
    let expectStart = 0;
    let objects = 0;
    for (const p of manifest.partitions) {
      assert.equal(p.start, expectStart, "partitions are contiguous");
      assert.ok(p.objects <= 100);
      assert.ok(p.objectBytes <= 5000 || p.objects === 1);
      assert.equal(p.firstLine, objects);
      objects += p.objects;
      expectStart = p.end;
    }
    assert.equal(expectStart, manifest.bytes);
    assert.equal(objects, N);
    assert.ok(
      manifest.partitions.some((p) => p.objects < 100),
      "some cut by bytes",
    );
  });

  it("reads a partition's objects in order with bounded concurrency, and resumes mid-partition", async () => {
    const manifest = await writeManifest(
      store,
      { bucket: "in", prefix: "docs/" },
      { bucket: "jobs", name: "job2/manifest.jsonl" },
      { maxObjects: 500 },
    );
    const p = manifest.partitions[1];
    assert.ok(p);
    const source = new ObjectListSource({
      store,
      manifest: { bucket: "jobs", name: "job2/manifest.jsonl" },
      objectsBucket: "in",
      start: p.start,
      end: p.end,
      concurrency: 4,
      blockRecords: 16,
    });
    store.maxActive = 0;
    const blocks = await collectAll(source, p.start);
    assert.ok(store.maxActive <= 4, `at most 4 GETs at once, saw ${store.maxActive}`);
    assert.ok(store.maxActive > 1, "GETs overlap");
    const names = blocks.flatMap((b) => b.names);
    assert.equal(names.length, p.objects);
    let prevNext = p.start;
    names.forEach((name, k) => {
      const i = p.firstLine + k;
      assert.equal(name, `docs/${String(i).padStart(5, "0")}.txt`);
    });
    for (const b of blocks) {
      assert.ok(b.count <= 16);
      for (let k = 0; k < b.count; k++) {
        assert.equal(b.positions[k], prevNext, "each record starts where the previous ended");
        prevNext = b.nextPositions[k] as number;
        const i = Number(/(\d+)\.txt$/.exec(b.names[k] as string)?.[1]);
        assert.deepEqual(b.bodies[k], bodyOf(i));
        assert.equal(b.problems[k], undefined);
      }
    }
    assert.equal(prevNext, p.end);

    // Resume from the 101st record's position: exactly the remaining records.
    const resumeAt = blocks.flatMap((b) => [...b.positions])[100] as number;
    const rest = (await collectAll(source, resumeAt)).flatMap((b) => b.names);
    assert.deepEqual(rest, names.slice(100));
    assert.deepEqual(await collectAll(source, p.end), []);
  });

  it("turns empty, oversize, deleted and changed objects into per-record problems", async () => {
    await store.put("in", "mixed/a-empty", Buffer.alloc(0));
    await store.put("in", "mixed/b-big", Buffer.alloc(2000, 1));
    await store.put("in", "mixed/c-gone", "soon deleted");
    await store.put("in", "mixed/d-changed", "short");
    await store.put("in", "mixed/e-ok", "fine");
    const manifest = await writeManifest(
      store,
      { bucket: "in", prefix: "mixed/" },
      { bucket: "jobs", name: "job3/manifest.jsonl" },
    );
    await store.delete("in", "mixed/c-gone");
    await store.put("in", "mixed/d-changed", "much longer than before");
    const p = manifest.partitions[0];
    assert.ok(p);
    const source = new ObjectListSource({
      store,
      manifest: { bucket: "jobs", name: "job3/manifest.jsonl" },
      objectsBucket: "in",
      start: p.start,
      end: p.end,
      maxObjectBytes: 1000,
    });
    const blocks = await collectAll(source, p.start);
    const block = {
      bodies: blocks.flatMap((b) => b.bodies),
      problems: blocks.flatMap((b) => b.problems),
    };
    assert.deepEqual(block.bodies[0], Buffer.alloc(0));
    assert.equal(block.problems[0], undefined, "an empty body is the task's to judge");
    assert.match(block.problems[1] ?? "", /2000 bytes, over the limit of 1000/);
    assert.match(block.problems[2] ?? "", /deleted after it was listed/);
    assert.match(block.problems[3] ?? "", /changed after it was listed/);
    assert.equal(block.bodies[4]?.toString(), "fine");
  });

  it("keeps only what `include` accepts, and never lists the manifest itself", async () => {
    await store.put("in", "sel/a.jpg", "a");
    await store.put("in", "sel/b.txt", "b");
    await store.put("in", "sel/c.jpg", "c");
    const manifest = await writeManifest(
      store,
      { bucket: "in", prefix: "sel/", include: (o) => !o.name.endsWith(".txt") },
      { bucket: "in", name: "sel/manifest.jsonl" },
    );
    const text = (await readBytes(store, "in", "sel/manifest.jsonl")).toString("utf8");
    const names = text
      .trimEnd()
      .split("\n")
      .map((l) => parseManifestLine(l).name);
    assert.deepEqual(names, ["sel/a.jpg", "sel/c.jpg"]);
    assert.equal(manifest.objects, 2);
    const again = await writeManifest(
      store,
      { bucket: "in", prefix: "sel/", include: (o) => !o.name.endsWith(".txt") },
      { bucket: "in", name: "sel/manifest.jsonl" },
    );
    assert.equal(again.objects, 2, "the manifest under the prefix is not an input");
  });

  it("fails the attempt (not the record) when the store is unavailable", async () => {
    const manifest = await writeManifest(
      store,
      { bucket: "in", prefix: "docs/0000" },
      { bucket: "jobs", name: "job4/manifest.jsonl" },
    );
    const p = manifest.partitions[0];
    assert.ok(p);
    const failing: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
      read: async (b: string, n: string, r?: ByteRange) => {
        if (n.endsWith("00005.txt")) throw new Error("EIO: disk went away");
        return store.read(b, n, r);
      },
    });
    const source = new ObjectListSource({
      store: failing,
      manifest: { bucket: "jobs", name: "job4/manifest.jsonl" },
      objectsBucket: "in",
      start: p.start,
      end: p.end,
    });
    await assert.rejects(collectAll(source, p.start), /disk went away/);
  });
});
