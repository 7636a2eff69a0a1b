/**
 * The seeded PRNG of every generator here (datasets, weights, synthetic images and
 * text) and the helpers the dataset generators share.
 */
import { InvalidArgumentError } from "../core/errors.ts";

/**
 * Deterministic PRNG (xoshiro128**, seeded through splitmix32): fast, good enough
 * statistically for synthetic data and weight init, and identical on every platform.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  /** Any safe integer seed; different seeds give unrelated streams. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new InvalidArgumentError(`seed must be a safe integer, got ${seed}`);
    }
    // Fold the high bits in so seeds that differ only above 2^32 still differ.
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x9e3779b1);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Next raw 32-bit unsigned integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box-Muller, second value cached). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = this.next();
    while (u === 0) u = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Poisson count (Knuth; the rates used here are small). */
  poisson(lambda: number): number {
    if (lambda <= 0) return 0;
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new InvalidArgumentError("pick from an empty list");
    return item;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A weighted choice, with the cumulative table built once. */
export function weighted<T extends string>(
  table: readonly (readonly [T, number])[],
): (rng: Rng) => T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  const cum: number[] = [];
  let acc = 0;
  for (const [, w] of table) {
    acc += w / total;
    cum.push(acc);
  }
  const values = table.map(([v]) => v);
  return (rng) => {
    const u = rng.next();
    for (let k = 0; k < cum.length - 1; k++) if (u < (cum[k] ?? 1)) return values[k] as T;
    return values[values.length - 1] as T;
  };
}

/** x limited to [lo, hi]. */
export const clamp = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi);
/** x rounded to `decimals` places. */
export const round = (x: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
};
/** The logistic function. */
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** A generator's row count must be a non-negative integer. */
export function checkRows(rows: number): void {
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new InvalidArgumentError(`rows must be a non-negative integer, got ${rows}`);
  }
}
