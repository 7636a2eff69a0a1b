/** Tabular batches reuse a written window's buffers, and never one a session's thread took. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FeatureBatches } from "../src/tasks/tabular/feature-batches.ts";

function fill(b: FeatureBatches, rows: number, width: number, base: number): void {
  for (let r = 0; r < rows; r++) {
    b.features.fill(base + r, b.offset, b.offset + width);
    b.keys.addString(`k${base + r}`);
    b.rowDone();
  }
}

describe("FeatureBatches", () => {
  it("fills a recycled window's buffer again, with its rows and keys only", () => {
    const width = 3;
    const b = new FeatureBatches(width, { inputName: "x", inputType: "float32", batchSize: 4 });
    fill(b, 4, width, 100);
    const [first] = b.take(false);
    assert.ok(first);
    const firstBuffer = first.meta.buffer;
    b.recycle(first.meta);
    // The batch being filled when `first` closed has its own buffer; the one after it
    // takes the spare.
    fill(b, 4, width, 150);
    fill(b, 2, width, 200);
    const [between, second] = b.take(true);
    assert.ok(between && second);
    assert.notEqual(between.meta.buffer, firstBuffer);
    assert.equal(second.meta.buffer, firstBuffer, "the spare buffer was reused");
    assert.equal(second.meta.keys, first.meta.keys, "the spare keys were reused");
    assert.deepEqual(
      Array.from({ length: second.meta.keys.length }, (_, i) => second.meta.keys.get(i)),
      ["k200", "k201"],
    );
    const feed = second.batches[0]?.feeds.x;
    assert.deepEqual(feed?.dims, [2, width]);
    assert.deepEqual(Array.from(feed?.data as Float32Array), [200, 200, 200, 201, 201, 201]);
  });

  it("does not keep a buffer that was transferred to another thread (detached)", () => {
    const width = 2;
    const b = new FeatureBatches(width, { inputName: "x", inputType: "float32", batchSize: 2 });
    fill(b, 2, width, 1);
    const [w] = b.take(false);
    assert.ok(w);
    // What a session on a worker thread does with the feed: transfer its buffer.
    structuredClone(w.meta.buffer.buffer, { transfer: [w.meta.buffer.buffer as ArrayBuffer] });
    assert.equal(w.meta.buffer.length, 0);
    b.recycle(w.meta);
    fill(b, 2, width, 7);
    const [next] = b.take(false);
    assert.ok(next);
    assert.notEqual(next.meta.buffer, w.meta.buffer);
    assert.equal(next.meta.buffer.length, 2 * width);
    assert.deepEqual(Array.from(next.batches[0]?.feeds.x?.data as Float32Array), [7, 7, 8, 8]);
  });
});
