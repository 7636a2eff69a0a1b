/** KeyBatch: byte keys and string keys in input order, past its first capacity, and truncated. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyBatch } from "../src/model/key-batch.ts";

describe("KeyBatch", () => {
  it("keeps thousands of mixed keys in order as it grows, and drops a bad record's keys", () => {
    const keys = new KeyBatch();
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const mark = keys.length;
      // Every 7th key needs decoding (a comma), so it is held as a string.
      const text = i % 7 === 0 ? `"k,${i}"` : `id-${"x".repeat(i % 40)}${i}`;
      const buf = Buffer.from(`${text},rest`);
      // A quoted field's span is inside its quotes, as splitCsvLine gives it.
      if (i % 7 === 0) keys.addField(buf, 1, text.length - 1, 1);
      else keys.addField(buf, 0, text.length, 0);
      keys.addString(`s${i}`);
      if (i % 5 === 4) {
        keys.truncate(mark); // the record turned out bad: both of its keys go
        continue;
      }
      expected.push(i % 7 === 0 ? `k,${i}` : text, `s${i}`);
    }
    assert.equal(keys.length, expected.length);
    assert.deepEqual(
      Array.from({ length: keys.length }, (_, i) => keys.get(i)),
      expected,
    );
    for (let i = 0; i < keys.length; i++) {
      const asString = keys.stringAt(i) !== undefined;
      assert.equal(asString, (keys.starts[i] as number) < 0, `key ${i}`);
      if (!asString) {
        const bytes = keys.data.toString("latin1", keys.starts[i], keys.ends[i]);
        assert.equal(bytes, expected[i]);
      }
    }
  });

  it("reuses the bytes of truncated keys", () => {
    const keys = new KeyBatch();
    keys.addField(Buffer.from("first"), 0, 5, 0);
    keys.addField(Buffer.from("dropped"), 0, 7, 0);
    keys.truncate(1);
    keys.addField(Buffer.from("next"), 0, 4, 0);
    assert.deepEqual([keys.get(0), keys.get(1)], ["first", "next"]);
    assert.equal(keys.starts[1], 5);
    assert.equal(keys.stringAt(1), undefined);
  });
});
