/** The 32-column numeric table: the benchmark's input, with a hidden rule to learn. */
import type { FeatureSpec } from "./dataset-features.ts";
import { checkRows, Rng, round, sigmoid } from "./rng.ts";

/** Number of float columns in the numeric dataset. */
export const NUMERIC_WIDTH = 32;

/** Numeric CSV/JSONL columns, in file order: `id, f0..f31`. */
export const NUMERIC_COLUMNS: readonly string[] = [
  "id",
  ...Array.from({ length: NUMERIC_WIDTH }, (_, k) => `f${k}`),
];

/** Features for models over the numeric dataset: f0..f31, empty → 0. */
export const NUMERIC_FEATURES: readonly FeatureSpec[] = Array.from(
  { length: NUMERIC_WIDTH },
  (_, k) => ({ column: `f${k}`, type: "number" as const, missing: 0 }),
);

/** One numeric row; `label` comes from a hidden rule and is never written to files. */
export interface NumericRecord {
  id: string;
  values: Float64Array;
  label: 0 | 1;
}

interface ColumnShape {
  kind: "normal" | "lognormal" | "uniform";
  p: number;
  q: number;
  /** Analytic mean and sd, so the hidden rule works on standardized values. */
  mean: number;
  sd: number;
}

// Column shapes and the hidden rule are fixed (not seed-dependent) so data from any
// seed has the same distribution, and a model trained on one seed scores another.
const NUMERIC_SHAPES: readonly ColumnShape[] = (() => {
  const rng = new Rng(0x5eed_0032);
  const shapes: ColumnShape[] = [];
  for (let k = 0; k < NUMERIC_WIDTH; k++) {
    const r = k % 4;
    if (r === 0 || r === 1) {
      const mu = round(rng.uniform(-2, 2), 2);
      const sigma = round(rng.uniform(0.1, 2.5), 2);
      shapes.push({ kind: "normal", p: mu, q: sigma, mean: mu, sd: sigma });
    } else if (r === 2) {
      const mu = round(rng.uniform(-1, 0.8), 2);
      const s = round(rng.uniform(0.3, 0.8), 2);
      const mean = Math.exp(mu + (s * s) / 2);
      shapes.push({
        kind: "lognormal",
        p: mu,
        q: s,
        mean,
        sd: mean * Math.sqrt(Math.exp(s * s) - 1),
      });
    } else {
      const lo = round(rng.uniform(-1, 0.5), 2);
      const hi = round(lo + rng.uniform(0.5, 2), 2);
      shapes.push({
        kind: "uniform",
        p: lo,
        q: hi,
        mean: (lo + hi) / 2,
        sd: (hi - lo) / Math.sqrt(12),
      });
    }
  }
  return shapes;
})();

const NUMERIC_RULE: readonly (readonly [number, number])[] = [
  [0, 1.2],
  [3, -0.9],
  [6, 0.8],
  [9, 0.6],
  [14, -0.7],
  [19, 0.5],
  [22, -0.5],
  [27, 0.4],
];

/** Yields `rows` numeric records for `seed`, one at a time. */
export function* numericRecords(seed: number, rows: number): Generator<NumericRecord> {
  checkRows(rows);
  const rng = new Rng(seed);
  for (let i = 0; i < rows; i++) {
    const values = new Float64Array(NUMERIC_WIDTH);
    for (let k = 0; k < NUMERIC_WIDTH; k++) {
      const s = NUMERIC_SHAPES[k] as ColumnShape;
      const x =
        s.kind === "normal"
          ? s.p + s.q * rng.normal()
          : s.kind === "lognormal"
            ? Math.exp(s.p + s.q * rng.normal())
            : rng.uniform(s.p, s.q);
      values[k] = round(x, 6);
    }
    let logit = -0.4;
    for (const [k, w] of NUMERIC_RULE) {
      const s = NUMERIC_SHAPES[k] as ColumnShape;
      logit += (w * ((values[k] ?? 0) - s.mean)) / s.sd;
    }
    // A small interaction a linear model can't capture, plus noise.
    logit += 0.3 * Math.sign(values[1] ?? 0) * Math.sign(values[2] ?? 0) + 0.5 * rng.normal();
    yield {
      id: `N${String(i + 1).padStart(9, "0")}`,
      values,
      label: rng.next() < sigmoid(logit) ? 1 : 0,
    };
  }
}
