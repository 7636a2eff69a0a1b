import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import type { ObjectStore } from "../../src/ports/object-store.ts";
import { readBytes } from "../../src/sources/read-bytes.ts";

/** What a conformance run needs: a store, a bucket it may write to, and a teardown. */
export interface ObjectStoreFixture {
  store: ObjectStore;
  /** An existing (or auto-created) bucket; tests only touch names under a random prefix. */
  bucket: string;
  cleanup(): Promise<void>;
}

/** Concatenate a stream's bytes. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/** `size` pseudo-random bytes in 64 KiB chunks, each a little different, from `seed`. */
function* pattern(seed: Buffer, size: number): Generator<Buffer> {
  let left = size;
  for (let n = 0; left > 0; n++) {
    const chunk = Buffer.from(seed.subarray(0, Math.min(seed.length, left)));
    chunk[0] = n & 0xff; // chunks differ, so reordering or repeating one shows in the hash
    left -= chunk.length;
    yield chunk;
  }
}

/** A lazily generated stream of `size` bytes (never held whole), and its sha256. */
function patternStream(size: number): { stream: Readable; sha256: string } {
  const seed = randomBytes(64 * 1024);
  const hash = createHash("sha256");
  for (const chunk of pattern(seed, size)) hash.update(chunk);
  return {
    stream: Readable.from(pattern(seed, size), { objectMode: false }),
    sha256: hash.digest("hex"),
  };
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Assert that `promise` rejects with a pipeline error of `code`. */
async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/**
 * Register the ObjectStore contract tests under `describe(label)`. Every test calls
 * `setup()` for a fresh fixture and writes only under its own random prefix, so a
 * shared bucket works.
 */
export function objectStoreConformance(
  label: string,
  setup: () => Promise<ObjectStoreFixture>,
): void {
  const withStore =
    (fn: (store: ObjectStore, bucket: string, prefix: string) => Promise<void>) =>
    async (): Promise<void> => {
      const fixture = await setup();
      try {
        await fn(fixture.store, fixture.bucket, `conformance-${randomBytes(6).toString("hex")}/`);
      } finally {
        await fixture.cleanup();
      }
    };

  describe(label, () => {
    it(
      "round-trips a Buffer through put, head and read",
      withStore(async (store, bucket, p) => {
        const body = randomBytes(1000);
        const { etag } = await store.put(bucket, `${p}a.bin`, body);
        assert.ok(typeof etag === "string" && etag.length > 0);
        const info = await store.head(bucket, `${p}a.bin`);
        assert.ok(info);
        assert.equal(info.name, `${p}a.bin`);
        assert.equal(info.size, 1000);
        assert.equal(info.etag, etag);
        assert.ok(info.lastModified instanceof Date && !Number.isNaN(info.lastModified.getTime()));
        assert.deepEqual(await readAll(await store.read(bucket, `${p}a.bin`)), body);
      }),
    );

    it(
      "round-trips a string as UTF-8, and an empty object",
      withStore(async (store, bucket, p) => {
        const text = "héllo, wörld ✓\nline 2\n";
        await store.put(bucket, `${p}t.txt`, text);
        assert.equal((await readAll(await store.read(bucket, `${p}t.txt`))).toString("utf8"), text);
        assert.equal((await store.head(bucket, `${p}t.txt`))?.size, Buffer.byteLength(text));
        await store.put(bucket, `${p}empty`, "");
        assert.equal((await store.head(bucket, `${p}empty`))?.size, 0);
        assert.equal((await readAll(await store.read(bucket, `${p}empty`))).length, 0);
      }),
    );

    it(
      "streams a several-MB Readable in and out",
      withStore(async (store, bucket, p) => {
        const size = 5 * 1024 * 1024 + 123;
        const { stream, sha256: expected } = patternStream(size);
        const { etag } = await store.put(bucket, `${p}big/blob.bin`, stream);
        const info = await store.head(bucket, `${p}big/blob.bin`);
        assert.equal(info?.size, size);
        assert.equal(info?.etag, etag);
        const back = await readAll(await store.read(bucket, `${p}big/blob.bin`));
        assert.equal(back.length, size);
        assert.equal(sha256(back), expected);
      }),
    );

    it(
      "reads byte ranges: start, middle, end, past the end, empty",
      withStore(async (store, bucket, p) => {
        const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
        await store.put(bucket, `${p}r.bin`, body);
        const range = async (start: number, end: number): Promise<Buffer> =>
          readAll(await store.read(bucket, `${p}r.bin`, { start, end }));
        assert.deepEqual(await range(0, 10), body.subarray(0, 10));
        assert.deepEqual(await range(500, 600), body.subarray(500, 600));
        assert.deepEqual(await range(990, 1000), body.subarray(990, 1000));
        assert.deepEqual(await range(995, 5000), body.subarray(995, 1000));
        assert.equal((await range(1000, 1010)).length, 0);
        assert.equal((await range(10, 10)).length, 0);
      }),
    );

    it(
      "reads into one buffer (readBytes: readBuffer where the store has it) as read streams",
      withStore(async (store, bucket, p) => {
        const body = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 253));
        await store.put(bucket, `${p}b.bin`, body);
        assert.deepEqual(await readBytes(store, bucket, `${p}b.bin`), body);
        for (const [start, end] of [
          [0, 10],
          [1500, 2100],
          [2990, 9000],
          [3000, 3010],
          [10, 10],
        ] as const) {
          assert.deepEqual(
            await readBytes(store, bucket, `${p}b.bin`, { start, end }),
            body.subarray(start, Math.min(end, body.length)),
            `range [${start}, ${end})`,
          );
        }
        await rejectsWithCode(readBytes(store, bucket, `${p}b.bin`, undefined, 2999), "BAD_RECORD");
        assert.equal(
          (await readBytes(store, bucket, `${p}b.bin`, { start: 0, end: 100 }, 100)).length,
          100,
        );
        await rejectsWithCode(readBytes(store, bucket, `${p}missing.bin`), "NOT_FOUND");
      }),
    );

    it(
      "changes the etag when an object is overwritten",
      withStore(async (store, bucket, p) => {
        const first = await store.put(bucket, `${p}o`, "version one");
        const second = await store.put(bucket, `${p}o`, "version two");
        assert.notEqual(first.etag, second.etag);
        assert.equal((await store.head(bucket, `${p}o`))?.etag, second.etag);
        assert.equal((await readAll(await store.read(bucket, `${p}o`))).toString(), "version two");
      }),
    );

    it(
      'ifNoneMatch "*" creates only: an existing object is PRECONDITION_FAILED and kept',
      withStore(async (store, bucket, p) => {
        const { etag } = await store.put(bucket, `${p}once`, "first", { ifNoneMatch: "*" });
        await rejectsWithCode(
          store.put(bucket, `${p}once`, "second", { ifNoneMatch: "*" }),
          "PRECONDITION_FAILED",
        );
        assert.equal((await store.head(bucket, `${p}once`))?.etag, etag);
        assert.equal((await readAll(await store.read(bucket, `${p}once`))).toString(), "first");
      }),
    );

    it(
      'ifNoneMatch "*" from concurrent writers: exactly one wins',
      withStore(async (store, bucket, p) => {
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            store.put(bucket, `${p}race`, `writer ${i}`, { ifNoneMatch: "*" }),
          ),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1);
        for (const r of results) {
          if (r.status === "rejected") {
            assert.equal((r.reason as { code?: unknown }).code, "PRECONDITION_FAILED");
          }
        }
        const winner = won[0] as PromiseFulfilledResult<{ etag: string }>;
        assert.equal((await store.head(bucket, `${p}race`))?.etag, winner.value.etag);
      }),
    );

    it(
      "ifMatch: stale etag or missing object is PRECONDITION_FAILED; current etag succeeds",
      withStore(async (store, bucket, p) => {
        await rejectsWithCode(
          store.put(bucket, `${p}m`, "x", { ifMatch: "no-such-etag" }),
          "PRECONDITION_FAILED",
        );
        assert.equal(await store.head(bucket, `${p}m`), undefined);
        const v1 = await store.put(bucket, `${p}m`, "one");
        const v2 = await store.put(bucket, `${p}m`, "two", { ifMatch: v1.etag });
        assert.notEqual(v2.etag, v1.etag);
        await rejectsWithCode(
          store.put(bucket, `${p}m`, "three", { ifMatch: v1.etag }),
          "PRECONDITION_FAILED",
        );
        assert.equal((await readAll(await store.read(bucket, `${p}m`))).toString(), "two");
        assert.equal((await store.head(bucket, `${p}m`))?.etag, v2.etag);
      }),
    );

    it(
      "ifMatch from concurrent writers with the same etag: exactly one wins",
      withStore(async (store, bucket, p) => {
        const { etag } = await store.put(bucket, `${p}cas`, "base");
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, (_, i) =>
            store.put(bucket, `${p}cas`, `writer ${i}`, { ifMatch: etag }),
          ),
        );
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
        for (const r of results) {
          if (r.status === "rejected") {
            assert.equal((r.reason as { code?: unknown }).code, "PRECONDITION_FAILED");
          }
        }
      }),
    );

    it(
      "lists by prefix in name order, paging with limit and nextStart",
      withStore(async (store, bucket, p) => {
        const names = [`${p}list/e`, `${p}list/a`, `${p}list/sub/c`, `${p}list/b`, `${p}list/d`];
        for (const name of names) await store.put(bucket, name, name);
        await store.put(bucket, `${p}other/x`, "x");
        await store.put(bucket, `${p}listing`, "not under list/");
        const expected = [...names].sort();

        const all = await store.list(bucket, { prefix: `${p}list/` });
        assert.deepEqual(
          all.objects.map((o) => o.name),
          expected,
        );
        assert.equal(all.nextStart, undefined);
        for (const o of all.objects) {
          assert.equal(o.size, Buffer.byteLength(o.name));
          assert.equal(o.etag, (await store.head(bucket, o.name))?.etag);
        }

        const seen: string[] = [];
        let start: string | undefined;
        let pages = 0;
        do {
          const page = await store.list(bucket, {
            prefix: `${p}list/`,
            limit: 2,
            ...(start === undefined ? {} : { start }),
          });
          assert.ok(page.objects.length <= 2);
          seen.push(...page.objects.map((o) => o.name));
          start = page.nextStart;
          pages++;
          assert.ok(pages <= 10, "paging does not terminate");
        } while (start !== undefined);
        assert.deepEqual(seen, expected);
        assert.equal(pages, 3);

        const wider = await store.list(bucket, { prefix: `${p}list` });
        assert.deepEqual(
          wider.objects.map((o) => o.name),
          [...expected, `${p}listing`].sort(),
        );
        assert.deepEqual((await store.list(bucket, { prefix: `${p}nothing/` })).objects, []);
      }),
    );

    it(
      "deletes idempotently",
      withStore(async (store, bucket, p) => {
        await store.put(bucket, `${p}d/x`, "x");
        await store.put(bucket, `${p}d/y`, "y");
        await store.delete(bucket, `${p}d/x`);
        assert.equal(await store.head(bucket, `${p}d/x`), undefined);
        await store.delete(bucket, `${p}d/x`);
        await store.delete(bucket, `${p}never-existed/z`);
        assert.deepEqual(
          (await store.list(bucket, { prefix: `${p}d/` })).objects.map((o) => o.name),
          [`${p}d/y`],
        );
      }),
    );

    it(
      "reports a missing object: read NOT_FOUND, head undefined",
      withStore(async (store, bucket, p) => {
        assert.equal(await store.head(bucket, `${p}missing`), undefined);
        await rejectsWithCode(store.read(bucket, `${p}missing`), "NOT_FOUND");
        await rejectsWithCode(store.read(bucket, `${p}missing`, { start: 0, end: 1 }), "NOT_FOUND");
      }),
    );

    it(
      "rejects names that would escape the bucket with UNSAFE_PATH",
      withStore(async (store, bucket) => {
        for (const name of ["../x", "/abs", "a/../../b"]) {
          await rejectsWithCode(store.put(bucket, name, "x"), "UNSAFE_PATH");
          await rejectsWithCode(store.read(bucket, name), "UNSAFE_PATH");
          await rejectsWithCode(store.head(bucket, name), "UNSAFE_PATH");
          await rejectsWithCode(store.delete(bucket, name), "UNSAFE_PATH");
        }
      }),
    );
  });
}
