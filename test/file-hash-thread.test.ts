/** The input hash on a thread of its own: the same digest as on the main thread, its errors, and stopping it. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { sha256OfFile } from "../src/adapters/local/file-hash.ts";
import { hashThreadStats, sha256OfFileBeside } from "../src/adapters/local/file-hash-thread.ts";

describe("sha256OfFileBeside", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hash-thread-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("hashes on a thread and gives the digest sha256sum would (empty, small, several chunks)", async () => {
    const before = hashThreadStats.hashed;
    for (const size of [0, 1, 4 << 20, (9 << 20) + 7]) {
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
      const file = path.join(dir, `f-${size}`);
      writeFileSync(file, bytes);
      const want = createHash("sha256").update(bytes).digest("hex");
      assert.equal(await sha256OfFileBeside(file), want, `${size} bytes`);
      assert.equal(await sha256OfFile(file), want);
    }
    assert.equal(hashThreadStats.hashed - before, 4, "every hash ran on the thread");
  });

  it("rejects with the file's errno code, and refuses a symbolic link with noFollow", async () => {
    await assert.rejects(sha256OfFileBeside(path.join(dir, "missing")), { code: "ENOENT" });
    const target = path.join(dir, "target");
    writeFileSync(target, "x");
    const link = path.join(dir, "link");
    (await import("node:fs")).symlinkSync(target, link);
    await assert.rejects(sha256OfFileBeside(link, { noFollow: true }), { code: "ELOOP" });
  });

  it("stops when its signal aborts, with the signal's reason", async () => {
    const file = path.join(dir, "big");
    writeFileSync(file, Buffer.alloc(64 << 20, 7));
    const stop = new AbortController();
    const hashing = sha256OfFileBeside(file, { signal: stop.signal });
    stop.abort(new Error("preflight refused the run"));
    await assert.rejects(hashing, /preflight refused the run/);
  });
});
