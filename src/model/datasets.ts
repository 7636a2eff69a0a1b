/**
 * Seeded, streaming data generators: a churn-like customer table (the demo model's
 * training and scoring data) and a 32-column numeric table (the benchmark input).
 * Rows come from generators one at a time, so any row count fits in memory; the same
 * seed always gives the same bytes, and CSV and JSONL describe the same records.
 */

import { createWriteStream } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError, PipelineError } from "../core/errors.ts";

// ---------------------------------------------------------------------------------
// PRNG

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
function weighted<T extends string>(table: readonly (readonly [T, number])[]): (rng: Rng) => T {
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

const clamp = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi);
const round = (x: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
};
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

// ---------------------------------------------------------------------------------
// Features

/**
 * How one input column becomes model inputs (the model descriptor's `features`):
 * a number takes 1 slot (its value, `missing` when empty), a boolean 1 slot (1/0),
 * a category one slot per category (one-hot; an unknown value is all zeros).
 */
export type FeatureSpec =
  | { column: string; type: "number"; missing: number }
  | { column: string; type: "category"; categories: string[] }
  | { column: string; type: "boolean" };

/** Length of the feature vector the specs produce. */
export function featureWidth(features: readonly FeatureSpec[]): number {
  let width = 0;
  for (const f of features) width += f.type === "category" ? f.categories.length : 1;
  return width;
}

/**
 * Writes one record's feature vector into `out` at `offset`. Values may be typed
 * (generator records, JSON) or strings (CSV fields). Throws a BAD_RECORD
 * PipelineError for a value that can't be read as its feature's type.
 */
export function featurize(
  features: readonly FeatureSpec[],
  record: object,
  out: Float32Array | Float64Array,
  offset = 0,
): void {
  const fields = record as Readonly<Record<string, unknown>>;
  let k = offset;
  for (const f of features) {
    const v = fields[f.column];
    if (f.type === "number") {
      out[k++] = v === null || v === undefined || v === "" ? f.missing : toNumber(f.column, v);
    } else if (f.type === "boolean") {
      out[k++] = toBoolean(f.column, v) ? 1 : 0;
    } else {
      const hit = typeof v === "string" ? f.categories.indexOf(v) : -1;
      for (let c = 0; c < f.categories.length; c++) out[k++] = c === hit ? 1 : 0;
    }
  }
}

function toNumber(column: string, v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw new PipelineError("BAD_RECORD", `column ${column}: ${JSON.stringify(v)} is not a number`);
  }
  return n;
}

function toBoolean(column: string, v: unknown): boolean {
  if (v === true || v === 1 || v === "true" || v === "1") return true;
  if (
    v === false ||
    v === 0 ||
    v === "false" ||
    v === "0" ||
    v === null ||
    v === undefined ||
    v === ""
  ) {
    return false;
  }
  throw new PipelineError("BAD_RECORD", `column ${column}: ${JSON.stringify(v)} is not a boolean`);
}

// ---------------------------------------------------------------------------------
// Customer (churn) dataset

/** One generated customer. Numbers are null where the source "lost" the value. */
export interface CustomerRecord {
  customer_id: string;
  age: number | null;
  senior: boolean;
  has_partner: boolean;
  household_size: number | null;
  region: string;
  city: string;
  tenure_months: number | null;
  contract: string;
  plan: string;
  num_lines: number | null;
  monthly_charges: number | null;
  total_charges: number | null;
  discount_pct: number | null;
  payment_method: string;
  autopay: boolean;
  paperless_billing: boolean;
  has_streaming: boolean;
  has_device_protection: boolean;
  device_os: string;
  acquisition_channel: string;
  logins_30d: number | null;
  days_since_last_login: number | null;
  avg_session_minutes: number | null;
  data_usage_gb: number | null;
  support_calls_90d: number | null;
  complaints_12m: number | null;
  dropped_calls_30d: number | null;
  outage_minutes_30d: number | null;
  late_payments_12m: number | null;
  credit_score: number | null;
  nps_score: number | null;
  referrals: number | null;
  notes: string;
  churned: 0 | 1;
}

/** Customer CSV/JSONL columns, in file order. */
export const CUSTOMER_COLUMNS: readonly (keyof CustomerRecord)[] = [
  "customer_id",
  "age",
  "senior",
  "has_partner",
  "household_size",
  "region",
  "city",
  "tenure_months",
  "contract",
  "plan",
  "num_lines",
  "monthly_charges",
  "total_charges",
  "discount_pct",
  "payment_method",
  "autopay",
  "paperless_billing",
  "has_streaming",
  "has_device_protection",
  "device_os",
  "acquisition_channel",
  "logins_30d",
  "days_since_last_login",
  "avg_session_minutes",
  "data_usage_gb",
  "support_calls_90d",
  "complaints_12m",
  "dropped_calls_30d",
  "outage_minutes_30d",
  "late_payments_12m",
  "credit_score",
  "nps_score",
  "referrals",
  "notes",
  "churned",
];

const REGIONS = ["north", "south", "east", "west", "central"] as const;
const CONTRACTS = ["month-to-month", "one-year", "two-year"] as const;
const PLANS = ["basic", "standard", "premium", "family"] as const;
const PAYMENT_METHODS = ["card", "bank", "invoice", "wallet"] as const;
const DEVICE_OS = ["android", "ios", "other"] as const;
const CHANNELS = ["web", "store", "partner", "referral", "telesales"] as const;

/**
 * The churn model's features, in feature-vector order (width 49). `missing` holds
 * the population mean as a nominal imputation value; training replaces it with the
 * mean measured on its own training rows.
 */
export const CUSTOMER_FEATURES: readonly FeatureSpec[] = [
  { column: "age", type: "number", missing: 44 },
  { column: "senior", type: "boolean" },
  { column: "has_partner", type: "boolean" },
  { column: "household_size", type: "number", missing: 2.3 },
  { column: "region", type: "category", categories: [...REGIONS] },
  { column: "tenure_months", type: "number", missing: 26 },
  { column: "contract", type: "category", categories: [...CONTRACTS] },
  { column: "plan", type: "category", categories: [...PLANS] },
  { column: "num_lines", type: "number", missing: 1.4 },
  { column: "monthly_charges", type: "number", missing: 62 },
  { column: "total_charges", type: "number", missing: 1700 },
  { column: "discount_pct", type: "number", missing: 3.5 },
  { column: "payment_method", type: "category", categories: [...PAYMENT_METHODS] },
  { column: "autopay", type: "boolean" },
  { column: "paperless_billing", type: "boolean" },
  { column: "has_streaming", type: "boolean" },
  { column: "has_device_protection", type: "boolean" },
  { column: "device_os", type: "category", categories: [...DEVICE_OS] },
  { column: "acquisition_channel", type: "category", categories: [...CHANNELS] },
  { column: "logins_30d", type: "number", missing: 12 },
  { column: "days_since_last_login", type: "number", missing: 6 },
  { column: "avg_session_minutes", type: "number", missing: 11 },
  { column: "data_usage_gb", type: "number", missing: 9 },
  { column: "support_calls_90d", type: "number", missing: 1 },
  { column: "complaints_12m", type: "number", missing: 0.4 },
  { column: "dropped_calls_30d", type: "number", missing: 1.5 },
  { column: "outage_minutes_30d", type: "number", missing: 25 },
  { column: "late_payments_12m", type: "number", missing: 0.5 },
  { column: "credit_score", type: "number", missing: 690 },
  { column: "nps_score", type: "number", missing: 7 },
  { column: "referrals", type: "number", missing: 0.4 },
];

const pickRegion = weighted<(typeof REGIONS)[number]>([
  ["north", 22],
  ["south", 24],
  ["east", 20],
  ["west", 20],
  ["central", 14],
]);
const pickContract = weighted<(typeof CONTRACTS)[number]>([
  ["month-to-month", 52],
  ["one-year", 25],
  ["two-year", 23],
]);
const pickPayment = weighted<(typeof PAYMENT_METHODS)[number]>([
  ["card", 38],
  ["bank", 25],
  ["invoice", 22],
  ["wallet", 15],
]);
const pickOs = weighted<(typeof DEVICE_OS)[number]>([
  ["android", 48],
  ["ios", 44],
  ["other", 8],
]);
const pickChannel = weighted<(typeof CHANNELS)[number]>([
  ["web", 35],
  ["store", 25],
  ["partner", 12],
  ["referral", 13],
  ["telesales", 15],
]);

// Some names carry a state after a comma, so CSV writers must quote them.
const CITIES: Record<(typeof REGIONS)[number], readonly string[]> = {
  north: ["Minneapolis, MN", "Fargo", "Duluth, MN", "Madison, WI", "Bismarck"],
  south: ["Austin, TX", "Atlanta", "Nashville, TN", "Birmingham", "New Orleans, LA"],
  east: ["Boston, MA", "Philadelphia", "Hartford, CT", "Baltimore", "Newark, NJ"],
  west: ["Portland, OR", "Seattle", "Boise, ID", "Sacramento, CA", "Coeur d'Alene, ID"],
  central: ["Denver, CO", "Omaha", "Kansas City, MO", "Tulsa, OK", "Wichita"],
};

// Free text with commas and double quotes (never newlines: byte-range partitioning
// finds record starts by newline).
const NOTES = [
  'asked about "loyalty" discount',
  "prefers email, not phone",
  'said: "too expensive, will think about it"',
  "escalated to tier 2; resolved",
  "moved house, updated address",
  'complained about "dropped calls" again',
  "wants paper invoice",
  'referred by a friend, "very happy"',
  "billing dispute, credit issued",
  "asked to port number",
] as const;

const PLAN_PRICE: Record<(typeof PLANS)[number], number> = {
  basic: 25,
  standard: 55,
  premium: 85,
  family: 60,
};

// Columns that lose values at random (~1.5% each) to exercise imputation.
const NULLABLE: readonly (keyof CustomerRecord)[] = [
  "age",
  "total_charges",
  "avg_session_minutes",
  "data_usage_gb",
  "days_since_last_login",
  "outage_minutes_30d",
  "credit_score",
  "nps_score",
];
const MISSING_RATE = 0.015;

function customerId(index: number): string {
  return `C${String(index + 1).padStart(8, "0")}`;
}

function makeCustomer(rng: Rng, index: number): CustomerRecord {
  // Latent traits: never written, so even a perfect model can't see all the signal.
  const unhappy = rng.normal();
  const engaged = rng.normal();

  const region = pickRegion(rng);
  const city = rng.pick(CITIES[region]);
  const age = Math.round(clamp(44 + 14 * rng.normal(), 18, 90));
  const senior = age >= 65;
  const hasPartner = rng.bernoulli(age < 30 ? 0.3 : 0.58);
  const householdSize = (hasPartner ? 2 : 1) + Math.min(rng.poisson(hasPartner ? 0.9 : 0.25), 6);

  const contract = pickContract(rng);
  let tenure: number;
  if (contract === "month-to-month") tenure = -16 * Math.log(1 - rng.next());
  else if (contract === "one-year") tenure = 6 + -24 * Math.log(1 - rng.next());
  else tenure = rng.uniform(12, 72);
  tenure = Math.round(clamp(tenure, 0, 72));

  const plan: (typeof PLANS)[number] =
    householdSize >= 3 && rng.bernoulli(0.65)
      ? "family"
      : rng.bernoulli(0.35)
        ? "basic"
        : rng.bernoulli(0.6)
          ? "standard"
          : "premium";
  const numLines = plan === "family" ? 2 + rng.int(4) : 1 + (rng.bernoulli(0.12) ? 1 : 0);
  const hasStreaming = rng.bernoulli(plan === "premium" ? 0.72 : plan === "basic" ? 0.18 : 0.4);
  const hasProtection = rng.bernoulli(0.3);
  const discount =
    contract === "two-year"
      ? rng.pick([0, 5, 10, 10, 15, 20])
      : contract === "one-year"
        ? rng.pick([0, 0, 5, 10])
        : rng.bernoulli(0.1)
          ? 5
          : 0;
  const list =
    PLAN_PRICE[plan] +
    (plan === "family" ? 15 * numLines : 10 * (numLines - 1)) +
    (hasStreaming ? 12 : 0) +
    (hasProtection ? 8 : 0) +
    3 * rng.normal();
  const monthly = round(Math.max(10, list * (1 - discount / 100)), 2);
  const total = round(monthly * (tenure + rng.next()) * rng.uniform(0.96, 1.04), 2);

  const payment = pickPayment(rng);
  const autopay =
    payment === "card" || payment === "bank" ? rng.bernoulli(0.72) : rng.bernoulli(0.08);
  const paperless = rng.bernoulli(age < 40 ? 0.78 : 0.52);
  const os = pickOs(rng);
  const channel = pickChannel(rng);

  const logins = Math.max(
    0,
    Math.round(12 + 5 * engaged + 3 * rng.normal() - 2 * Math.max(0, unhappy)),
  );
  const daysSinceLogin = Math.round(-Math.log(1 - rng.next()) * (30 / (logins + 2)) * 2);
  const sessionMinutes = round(Math.exp(2.2 + 0.35 * engaged + 0.4 * rng.normal()), 1);
  const usage = round(
    Math.exp(
      1.7 +
        (plan === "premium" ? 0.6 : plan === "basic" ? -0.5 : 0.1) +
        0.3 * engaged +
        0.6 * rng.normal(),
    ) * (plan === "family" ? numLines * 0.7 : 1),
    2,
  );
  const droppedRate = region === "central" ? 2.4 : region === "north" ? 1.8 : 1.1;
  const dropped = rng.poisson(droppedRate);
  const outage = Math.round(-Math.log(1 - rng.next()) * (region === "central" ? 40 : 20));
  const supportCalls = rng.poisson(Math.exp(-0.3 + 0.55 * unhappy + 0.12 * dropped));
  const complaints = rng.poisson(Math.exp(-1.4 + 0.7 * unhappy));
  const latePayments = rng.poisson(
    (payment === "invoice" ? 0.9 : payment === "wallet" ? 0.5 : 0.3) * (autopay ? 0.3 : 1),
  );
  const creditScore = Math.round(clamp(700 - 25 * latePayments + 60 * rng.normal(), 300, 850));
  const nps = Math.round(
    clamp(7.6 - 1.3 * unhappy - 0.25 * supportCalls + 1.2 * rng.normal(), 0, 10),
  );
  const referrals = rng.poisson(nps >= 9 ? 0.8 : 0.15);
  const notes = rng.bernoulli(0.08) ? rng.pick(NOTES) : "";

  // The hidden churn rule: mostly linear in observed features, with a log-shaped
  // tenure effect and latent dissatisfaction so a linear model can't be perfect.
  const logit =
    -0.95 +
    (contract === "month-to-month" ? 1.0 : contract === "two-year" ? -1.0 : 0) -
    0.55 * Math.log1p(tenure) +
    0.025 * (monthly - 60) +
    0.22 * supportCalls +
    0.25 * complaints +
    0.3 * latePayments -
    0.45 * (autopay ? 1 : 0) -
    0.1 * (nps - 7) -
    0.04 * (logins - 12) +
    0.02 * Math.min(daysSinceLogin, 60) +
    (payment === "invoice" ? 0.35 : 0) +
    (senior ? 0.3 : 0) +
    (hasProtection ? -0.2 : 0) +
    0.06 * dropped +
    0.6 * unhappy +
    0.4 * rng.normal();
  const churned: 0 | 1 = rng.next() < sigmoid(logit) ? 1 : 0;

  const record: CustomerRecord = {
    customer_id: customerId(index),
    age,
    senior,
    has_partner: hasPartner,
    household_size: householdSize,
    region,
    city,
    tenure_months: tenure,
    contract,
    plan,
    num_lines: numLines,
    monthly_charges: monthly,
    total_charges: total,
    discount_pct: discount,
    payment_method: payment,
    autopay,
    paperless_billing: paperless,
    has_streaming: hasStreaming,
    has_device_protection: hasProtection,
    device_os: os,
    acquisition_channel: channel,
    logins_30d: logins,
    days_since_last_login: daysSinceLogin,
    avg_session_minutes: sessionMinutes,
    data_usage_gb: usage,
    support_calls_90d: supportCalls,
    complaints_12m: complaints,
    dropped_calls_30d: dropped,
    outage_minutes_30d: outage,
    late_payments_12m: latePayments,
    credit_score: creditScore,
    nps_score: nps,
    referrals,
    notes,
    churned,
  };
  // Values go missing after the label is drawn: the label saw the truth.
  for (const column of NULLABLE) {
    if (rng.next() < MISSING_RATE) (record as unknown as Record<string, unknown>)[column] = null;
  }
  return record;
}

/** Yields `rows` customers for `seed`, one at a time. */
export function* customerRecords(seed: number, rows: number): Generator<CustomerRecord> {
  checkRows(rows);
  const rng = new Rng(seed);
  for (let i = 0; i < rows; i++) yield makeCustomer(rng, i);
}

// ---------------------------------------------------------------------------------
// Numeric (benchmark) dataset

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

// ---------------------------------------------------------------------------------
// Serialization and writing

/** Which generator to run. */
export type DatasetKind = "customers" | "numeric";
/** File format to write. */
export type DatasetFormat = "csv" | "jsonl";

/** What to generate. */
export interface DatasetOptions {
  kind: DatasetKind;
  rows: number;
  seed: number;
  format: DatasetFormat;
}

function checkRows(rows: number): void {
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new InvalidArgumentError(`rows must be a non-negative integer, got ${rows}`);
  }
}

const NEEDS_QUOTES = /[",\r\n]/;

/** RFC 4180 field: quoted (inner quotes doubled) only when it must be. */
export function csvField(value: string | number | boolean | null): string {
  if (value === null) return "";
  if (typeof value !== "string") return String(value);
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One customer as a CSV line (with trailing newline); missing numbers are empty. */
export function customerCsvLine(record: CustomerRecord): string {
  let line = "";
  for (let k = 0; k < CUSTOMER_COLUMNS.length; k++) {
    if (k > 0) line += ",";
    line += csvField(record[CUSTOMER_COLUMNS[k] as keyof CustomerRecord]);
  }
  return `${line}\n`;
}

/** One customer as a JSONL line (with trailing newline); missing numbers are null. */
export function customerJsonLine(record: CustomerRecord): string {
  // Records are built in column order, so key order matches the CSV header.
  return `${JSON.stringify(record)}\n`;
}

/**
 * Same text as `String(v)` for a value already rounded to 6 decimals (|v| < 9e9),
 * but from integer arithmetic: shortest-round-trip float printing dominated the
 * numeric generator's time.
 */
function formatMicros(v: number): string {
  const micros = Math.round(v * 1e6);
  if (micros === 0) return "0";
  const abs = micros < 0 ? -micros : micros;
  const whole = Math.floor(abs / 1e6);
  let frac = abs - whole * 1e6;
  const text = micros < 0 ? `-${whole}` : `${whole}`;
  if (frac === 0) return text;
  let digits = 6;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  return `${text}.${`${frac}`.padStart(digits, "0")}`;
}

/** One numeric record as a CSV line (with trailing newline); the label is not written. */
export function numericCsvLine(record: NumericRecord): string {
  let line = record.id;
  for (let k = 0; k < NUMERIC_WIDTH; k++) line += `,${formatMicros(record.values[k] ?? 0)}`;
  return `${line}\n`;
}

/** One numeric record as a JSONL line (with trailing newline); the label is not written. */
export function numericJsonLine(record: NumericRecord): string {
  let line = `{"id":${JSON.stringify(record.id)}`;
  for (let k = 0; k < NUMERIC_WIDTH; k++) line += `,"f${k}":${formatMicros(record.values[k] ?? 0)}`;
  return `${line}}\n`;
}

/**
 * The dataset as text chunks of about `chunkRows` rows each (CSV starts with its
 * header line). Options are checked now; rows are generated lazily as chunks are
 * pulled.
 */
export function datasetChunks(options: DatasetOptions, chunkRows = 512): Generator<string> {
  const { kind, rows, seed, format } = options;
  if (kind !== "customers" && kind !== "numeric") {
    throw new InvalidArgumentError(`kind must be customers or numeric, got ${String(kind)}`);
  }
  if (format !== "csv" && format !== "jsonl") {
    throw new InvalidArgumentError(`format must be csv or jsonl, got ${String(format)}`);
  }
  checkRows(rows);
  if (!Number.isSafeInteger(seed))
    throw new InvalidArgumentError(`seed must be a safe integer, got ${seed}`);
  if (kind === "customers") {
    return chunked(
      format === "csv" ? `${CUSTOMER_COLUMNS.join(",")}\n` : "",
      customerRecords(seed, rows),
      format === "csv" ? customerCsvLine : customerJsonLine,
      chunkRows,
    );
  }
  return chunked(
    format === "csv" ? `${NUMERIC_COLUMNS.join(",")}\n` : "",
    numericRecords(seed, rows),
    format === "csv" ? numericCsvLine : numericJsonLine,
    chunkRows,
  );
}

function* chunked<T>(
  header: string,
  records: Iterable<T>,
  line: (record: T) => string,
  chunkRows: number,
): Generator<string> {
  let chunk = header;
  let n = 0;
  for (const record of records) {
    chunk += line(record);
    if (++n === chunkRows) {
      yield chunk;
      chunk = "";
      n = 0;
    }
  }
  if (chunk !== "") yield chunk;
}

/**
 * Streams a generated dataset to a file path or writable stream, respecting
 * backpressure (generation pauses while the destination drains).
 */
export async function writeDataset(
  options: DatasetOptions & { out: string | Writable },
): Promise<{ rows: number; bytes: number }> {
  let bytes = 0;
  const chunks = datasetChunks(options);
  const counted = (function* () {
    for (const chunk of chunks) {
      bytes += Buffer.byteLength(chunk);
      yield chunk;
    }
  })();
  const dest = typeof options.out === "string" ? createWriteStream(options.out) : options.out;
  await pipeline(Readable.from(counted), dest);
  return { rows: options.rows, bytes };
}
