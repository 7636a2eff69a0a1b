/**
 * Scores as text: ByteWriter.float32 writes digits straight into the buffer and must give
 * exactly formatFloat32's text (toPrecision(9), trailing zeros trimmed), which round-trips.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ByteWriter, formatFloat32 } from "../src/pipeline/output-rows.ts";

const f32 = new Float32Array(1);
const bits = new Uint32Array(f32.buffer);

function written(w: ByteWriter, v: number): string {
  w.reset();
  w.float32(v, "null");
  return w.view().toString("latin1");
}

describe("ByteWriter.float32", () => {
  it("matches formatFloat32 on random float32 bit patterns, every magnitude, and round-trips", () => {
    const w = new ByteWriter();
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let i = 0; i < 200_000; i++) {
      bits[0] = next();
      const v = f32[0] as number;
      const text = written(w, v);
      assert.equal(text, Number.isFinite(v) ? formatFloat32(v) : "null", `bits ${bits[0]}`);
      if (Number.isFinite(v)) assert.equal(Math.fround(Number(text)), v, text);
    }
  });

  it("matches at the edges of its fixed-point range, at powers of ten and on rounding carries", () => {
    const w = new ByteWriter();
    for (let e = -8; e <= 10; e++) {
      f32[0] = 10 ** e;
      const centre = bits[0] as number;
      for (let d = -2000; d <= 2000; d++) {
        bits[0] = centre + d;
        const v = f32[0] as number;
        assert.equal(written(w, v), formatFloat32(v), `10^${e} ${d > 0 ? "+" : ""}${d} ulp`);
        assert.equal(written(w, -v), formatFloat32(-v));
      }
    }
    // 999999.999… rounds to 1000000 at 9 digits; sigmoid outputs near 0 and 1.
    for (const v of [999999.9999, 99999.99999, 0.9999999999, 1 - 2 ** -24, 2 ** -24, 1e-6, 0.5]) {
      const x = Math.fround(v);
      assert.equal(written(w, x), formatFloat32(x), String(x));
    }
    assert.equal(written(w, 0), "0");
    assert.equal(written(w, -0), "0");
    assert.equal(written(w, Number.NaN), "null");
    assert.equal(written(w, 0.25), "0.25");
    assert.equal(written(w, -123.5), "-123.5");
    assert.equal(written(w, 100000000), "100000000");
    assert.equal(written(w, Math.fround(3e-7)), "3.00000011e-7");
  });
});
