/**
 * The churn-like customer table: the demo model's training and scoring data, with
 * categories, booleans, missing values, and text that CSV writers must quote.
 */
import type { FeatureSpec } from "./dataset-features.ts";
import { checkRows, clamp, Rng, round, sigmoid, weighted } from "./rng.ts";

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
