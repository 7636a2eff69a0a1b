/**
 * Cold start of the bundled functions: bundle sizes, then for each function and
 * backend the time from process start to the FDK socket being up, and from
 * there to the first answer (which builds the SDK clients: nothing is built at
 * import). The OCI backend runs against the loopback stand-in, so its figures
 * include real request signing but not real network latency.
 *
 *   npx tsx scripts/cold-start.ts [--runs N] [--json]
 *
 * --json: also print the medians as one JSON line at the end (the bench reads it).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fnCall, startFullStandIn } from "../test/oci-standin/index.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "3" }, json: { type: "boolean", default: false } },
});
const runs = Math.max(1, Number(values.runs));

const built = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
  encoding: "utf8",
});
if (built.status !== 0) throw new Error(built.stderr);

function sizes(dir: string, prefix = ""): [string, number][] {
  const out: [string, number][] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sizes(full, `${prefix}${name}/`));
    else if (/\.c?js$/.test(name)) out.push([`${prefix}${name}`, statSync(full).size]);
  }
  return out;
}
console.log(
  "bundle sizes (dist/, without node_modules: native modules and the oci-sdk are external)",
);
for (const [name, size] of sizes("dist")) {
  console.log(`  ${name.padEnd(40)} ${(size / 1024).toFixed(0).padStart(6)} KiB`);
}

const work = path.join(os.tmpdir(), `cold-start-${process.pid}`);
mkdirSync(work, { recursive: true });
const stand = await startFullStandIn();

async function measure(
  fn: string,
  env: Record<string, string>,
  body: unknown,
): Promise<{ ready: number; first: number; status: number }> {
  const sock = path.join(work, `${fn}-${Math.random().toString(16).slice(2)}`, "lsnr.sock");
  mkdirSync(path.dirname(sock), { recursive: true });
  const t0 = performance.now();
  const child = spawn(process.execPath, ["dist/functions.cjs"], {
    env: {
      ...process.env,
      ...env,
      LOG_LEVEL: "error",
      FN_FORMAT: "http-stream",
      FN_LISTENER: `unix:${sock}`,
      BATCH_INFER_FUNCTION: fn,
    },
    stdio: "ignore",
  });
  try {
    while (!existsSync(sock)) {
      if (child.exitCode !== null) throw new Error(`${fn} exited ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const ready = performance.now() - t0;
    const r = await fnCall(sock, body);
    return { ready, first: performance.now() - t0 - ready, status: r.status };
  } finally {
    child.kill("SIGKILL");
  }
}

const defaults = JSON.stringify({
  model: { descriptor: "oci://models@ns/none/descriptor.json" },
  output: { bucket: "scores" },
});
const cases: { fn: string; backend: string; env: Record<string, string>; body: unknown }[] = [
  {
    fn: "splitter",
    backend: "local",
    env: { BATCH_INFER_DATA_DIR: path.join(work, "local"), BATCH_INFER_JOB_DEFAULTS: defaults },
    body: { rerunFailed: "job-000000000000000000000000" },
  },
  {
    fn: "splitter",
    backend: "oci",
    env: stand.env(work, { BATCH_INFER_JOB_DEFAULTS: defaults }),
    body: { rerunFailed: "job-000000000000000000000000" },
  },
  {
    fn: "merger",
    backend: "oci",
    env: stand.env(work),
    body: { jobId: "job-000000000000000000000000" },
  },
];
console.log(
  `\ncold start, median of ${runs} (first answer = a call that reads a job row: clients built, one signed request)`,
);
console.log("  function  backend  socket ready  first answer  total");
const medians: {
  fn: string;
  backend: string;
  readyMs: number;
  firstMs: number;
  totalMs: number;
}[] = [];
for (const c of cases) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await measure(c.fn, c.env, c.body));
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const ready = med(samples.map((s) => s.ready));
  const first = med(samples.map((s) => s.first));
  medians.push({
    fn: c.fn,
    backend: c.backend,
    readyMs: ready,
    firstMs: first,
    totalMs: ready + first,
  });
  console.log(
    `  ${c.fn.padEnd(9)} ${c.backend.padEnd(7)} ${ready.toFixed(0).padStart(9)} ms ${first.toFixed(0).padStart(10)} ms ${(ready + first).toFixed(0).padStart(6)} ms  (HTTP ${samples[0]?.status})`,
  );
}
await stand.close();
rmSync(work, { recursive: true, force: true });
if (values.json) console.log(JSON.stringify({ runs, coldStart: medians }));
