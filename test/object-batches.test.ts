/**
 * Reading and deleting a job's parts as a batch (the merge): in order, opened ahead,
 * each checked against the size it was committed with; deletes several at a time,
 * every one attempted. On the real local store (files).
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import {
  AHEAD_BYTES,
  deleteAll,
  readInOrder,
  WHOLE_READ_MAX,
} from "../src/pipeline/object-batches.ts";
import type { ObjectStore } from "../src/ports/object-store.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let store: LocalObjectStore;
before(async () => {
  root = await tempDir("bi-batches-");
  store = new LocalObjectStore({ root: root.dir });
});
after(() => root.cleanup());

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of chunks) all.push(c);
  return Buffer.concat(all);
}

/** `count` objects under `prefix`, of varied sizes (one past WHOLE_READ_MAX: streamed). */
async function objects(prefix: string, count: number) {
  const made: { name: string; bytes: number; body: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const size = i === 3 ? WHOLE_READ_MAX + 17 : (i * 7919) % 50_000;
    const body = Buffer.alloc(size, 97 + (i % 26));
    const name = `${prefix}/part-${String(i).padStart(3, "0")}`;
    await store.put("b", name, body);
    made.push({ name, bytes: size, body });
  }
  return made;
}

describe("readInOrder", () => {
  it("yields every object's bytes in the order given, whole or streamed", async () => {
    const made = await objects("order", 30);
    const shuffled = [...made].reverse();
    const got = await collect(readInOrder(store, "b", shuffled, 4));
    assert.ok(got.equals(Buffer.concat(shuffled.map((o) => o.body))));
  });

  it("holds at most AHEAD_BYTES of whole objects ahead of the one it yields", async () => {
    const size = 3 * 1024 * 1024;
    const made: { name: string; bytes: number }[] = [];
    for (let i = 0; i < 6; i++) {
      await store.put("b", `big/o${i}`, Buffer.alloc(size, 65 + i));
      made.push({ name: `big/o${i}`, bytes: size });
    }
    let started = 0;
    const counting: Pick<ObjectStore, "read" | "readBuffer"> = {
      read: (bucket, name) => store.read(bucket, name),
      readBuffer: (bucket, name, range, max) => {
        started++;
        return store.readBuffer(bucket, name, range, max);
      },
    };
    let yielded = 0;
    for await (const chunk of readInOrder(counting, "b", made)) {
      assert.equal(chunk[0], 65 + yielded);
      yielded++;
      // The one yielded plus what fits in AHEAD_BYTES.
      assert.ok(
        started - yielded <= Math.floor(AHEAD_BYTES / size),
        `${started} read, ${yielded} yielded`,
      );
    }
    assert.equal(yielded, 6);
  });

  it("fails on an object whose size is not the one committed, naming it", async () => {
    const made = await objects("sized", 3);
    const [a, b, c] = made;
    assert.ok(a && b && c);
    for (const wrong of [b.bytes + 1, b.bytes - 1]) {
      const listed = [a, { ...b, bytes: wrong }, c];
      await assert.rejects(collect(readInOrder(store, "b", listed)), (err: Error) => {
        assert.match(err.message, new RegExp(`b/${b.name}.*committed with`));
        return true;
      });
    }
  });

  it("stops cleanly when the consumer stops early: the objects opened ahead are closed", async () => {
    const made = await objects("early", 12);
    const opened: { destroyed: () => boolean }[] = [];
    const counting: Pick<ObjectStore, "read"> = {
      read: async (bucket, name) => {
        const s = await store.read(bucket, name);
        opened.push({ destroyed: () => s.destroyed });
        return s;
      },
    };
    for await (const _ of readInOrder(counting, "b", made, 5)) break;
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(opened.length > 1, "later objects were opened ahead");
    assert.ok(
      opened.every((s) => s.destroyed()),
      "every stream opened is closed",
    );
  });
});

describe("deleteAll", () => {
  it("deletes every object, several at a time, and leaves the folder empty", async () => {
    const made = await objects("gone", 40);
    await deleteAll(
      store,
      "b",
      made.map((o) => o.name),
      8,
    );
    const left = await readdir(path.join(root.dir, "b", "gone")).catch(() => []);
    assert.deepEqual(left, []);
  });

  it("attempts every delete when some fail, then throws the first failure", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
    const attempted: string[] = [];
    const failing: Pick<ObjectStore, "delete"> = {
      delete: async (_bucket, name) => {
        attempted.push(name);
        await new Promise((r) => setTimeout(r, 1));
        if (name === "n3" || name === "n11") throw new Error(`cannot delete ${name}`);
      },
    };
    await assert.rejects(deleteAll(failing, "b", names, 4), /cannot delete n3/);
    assert.deepEqual([...attempted].sort(), [...names].sort());
  });
});
