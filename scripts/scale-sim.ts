/**
 * Requests per service per job at P = 100, 1,000 and 10,000 partitions: one
 * job each, run in this process on the embedded adapters with counting ports
 * (splitter, two workers, merge). Prints calls and billed items (NoSQL rows,
 * queue messages, objects, events) per service, per partition, and the growth
 * from one P to the next; a linear cost grows ~10× per step.
 *
 *   npx tsx scripts/scale-sim.ts                       # P = 100, 1000, 10000
 *   npx tsx scripts/scale-sim.ts --partitions 100,1000 # a quicker pair
 *   npx tsx scripts/scale-sim.ts --methods             # also each port method
 *
 * Results go to .bench/scale-sim.json.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Service } from "./scale/counting-ports.ts";
import { type SimResult, simulateJob } from "./scale/simulate.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVICES: Service[] = ["nosql", "queue", "objectStorage", "streaming"];

const { values } = parseArgs({
  options: {
    partitions: { type: "string", default: "100,1000,10000" },
    methods: { type: "boolean", default: false },
  },
  strict: true,
});
const sizes = values.partitions.split(",").map((s) => Number(s.trim()));
if (sizes.some((p) => !Number.isSafeInteger(p) || p < 1)) {
  throw new Error(`--partitions must be a comma-separated list of positive integers`);
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const work = path.join(os.tmpdir(), `bi-scale-sim-${process.pid}`);
const results: SimResult[] = [];
for (const partitions of sizes) {
  const r = await simulateJob({ partitions, workDir: path.join(work, `p${partitions}`) }).finally(
    () => rm(work, { recursive: true, force: true }),
  );
  results.push(r);
  console.log(
    `P = ${fmt(r.partitions)}: job ${r.state}, ${fmt(r.rows)} rows, ${(r.ms / 1000).toFixed(1)} s in process`,
  );
}

const cell = (s: string, w: number) => s.padStart(w);
console.log(
  "\nrequests (calls) and billed items (rows read / rows written) per job, per service" +
    "\n(nosql items read = rows read: a query is billed per row it returns)",
);
console.log(
  [
    "service".padEnd(14),
    cell("P", 7),
    cell("calls", 10),
    cell("read", 12),
    cell("written", 10),
    cell("calls/P", 9),
    cell("read/P", 9),
    cell("growth calls", 16),
    cell("growth read", 16),
  ].join(" "),
);
for (const service of SERVICES) {
  results.forEach((r, i) => {
    const t = r.totals[service];
    const prev = i > 0 ? results[i - 1]?.totals[service] : undefined;
    const prevP = i > 0 ? (results[i - 1]?.partitions ?? 1) : 1;
    const growth = (a: number, b: number | undefined) =>
      b === undefined
        ? ""
        : `${(a / Math.max(1, b)).toFixed(1)}× (P ${(r.partitions / prevP).toFixed(0)}×)`;
    console.log(
      [
        service.padEnd(14),
        cell(fmt(r.partitions), 7),
        cell(fmt(t.calls), 10),
        cell(fmt(t.itemsRead), 12),
        cell(fmt(t.itemsWritten), 10),
        cell((t.calls / r.partitions).toFixed(2), 9),
        cell((t.itemsRead / r.partitions).toFixed(2), 9),
        cell(growth(t.calls, prev?.calls), 16),
        cell(growth(t.itemsRead, prev?.itemsRead), 16),
      ].join(" "),
    );
  });
}
if (values.methods) {
  console.log("\nby method (calls / items read / items written)");
  for (const r of results) {
    console.log(`P = ${fmt(r.partitions)}`);
    for (const service of SERVICES) {
      const parts = Object.entries(r.counts[service]).map(
        ([m, c]) => `${m} ${fmt(c.calls)}/${fmt(c.itemsRead)}/${fmt(c.itemsWritten)}`,
      );
      console.log(`  ${service.padEnd(14)} ${parts.join(", ")}`);
    }
  }
}
const out = path.join(ROOT, ".bench", "scale-sim.json");
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`);
console.log(`\nresults → ${path.relative(ROOT, out)}`);
