/** thousands() writes integers as toLocaleString("en-US") does, without loading ICU. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { thousands } from "../src/core/numbers.ts";

describe("thousands", () => {
  it("matches toLocaleString('en-US') on integers of every length and sign, and rounds", () => {
    const values = [0, 7, -7, 999, 1000, -1000, 1234.5, 999_999.4, 1_000_000, 305_326_219];
    for (let digits = 1; digits <= 16; digits++) values.push(10 ** digits - 1, -(10 ** digits) + 3);
    for (const n of values) {
      assert.equal(thousands(n), Math.round(n).toLocaleString("en-US"), String(n));
    }
  });
});
