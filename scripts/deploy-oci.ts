/**
 * Deploy the pipeline to a real OCI tenancy with the `oci`, `fn`, `docker` and
 * `kubectl` CLIs, in order: buckets (object events on the input), the partition
 * queue with its DLQ and the parking queue, the NoSQL tables of
 * scripts/oci/nosql-tables.ddl, the completion stream, the function and worker
 * images, the Fn application with its three functions (one image), IAM, the
 * Events rules, the scaler's triggers, and the worker Deployment on OKE.
 *
 *   npx tsx scripts/deploy-oci.ts --dry-run [--config deploy.json]   # print every command, run none
 *   npx tsx scripts/deploy-oci.ts --config deploy.json                # run them, stop at the first failure
 *   npx tsx scripts/deploy-oci.ts --config deploy.json --from events  # resume at a step
 *
 * This file is the runner. The plan itself (steps, commands, captures, rendered
 * files) is data built in scripts/oci/plan/, so each line can be checked in a
 * test (test/deploy-plan-cli.test.ts checks every `oci` line against the CLI's
 * own option definitions). Every step is written to be re-runnable: it looks a
 * resource up by name, creates it only when missing, then brings its settings up to date.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describeError, InvalidArgumentError } from "../src/core/errors.ts";
import { resolveJobSpec } from "../src/core/job-spec.ts";
import { refreshLayout } from "../src/refresh/refresh.ts";
import { parseRefreshSettings } from "../src/refresh/settings.ts";
import { loadConfig } from "./oci/plan/config.ts";
import { type PlanContext, planContext } from "./oci/plan/context.ts";
import { ROOT } from "./oci/plan/paths.ts";
import { fill, fillDeep, type Vars } from "./oci/plan/placeholders.ts";
import { commandLine, display, printPlan, shellQuote } from "./oci/plan/print.ts";
import { refreshSettingsOf } from "./oci/plan/render.ts";
import { buildPlan } from "./oci/plan/steps.ts";
import type { RunAction, Step } from "./oci/plan/types.ts";

const DEFAULT_CONFIG = "scripts/oci/deploy.example.json";
const DEFAULT_OUT = "dist/oci-deploy";

interface RunOptions {
  /** Block between polls (the runner is synchronous, like the CLIs it drives). */
  sleep: (ms: number) => void;
  steps: Step[];
  ctx: PlanContext;
  from: string | undefined;
  resumeArgs: string[];
  log: (line: string) => void;
}

const stateFile = (ctx: PlanContext) => path.join(ctx.out, "state.json");

function saveState(ctx: PlanContext, vars: Vars): void {
  const captured = Object.fromEntries([...vars].filter(([k]) => ctx.captured.has(k)));
  writeFileSync(path.resolve(ROOT, stateFile(ctx)), `${JSON.stringify({ captured }, null, 2)}\n`);
}

/** Run one command; returns why it failed, or undefined (its capture then stored). */
function runCommand(
  a: RunAction,
  argv: string[],
  vars: Vars,
  ctx: PlanContext,
): string | undefined {
  const res = spawnSync(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    stdio: ["inherit", a.capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (res.error) return `${argv[0]} could not be started: ${res.error.message}`;
  if (res.status !== 0) return `exit status ${res.status ?? `signal ${res.signal}`}`;
  if (!a.capture) return undefined;
  const raw = (res.stdout ?? "").trim();
  // --raw-output prints nothing (or "null") when a lookup finds no resource.
  const value = raw === "null" ? "" : raw;
  if (!value && a.mustFind) return `${a.capture} came back empty`;
  if (a.expect && value !== a.expect) return `${a.capture} is "${value}", expected "${a.expect}"`;
  vars.set(a.capture, value);
  saveState(ctx, vars);
  return undefined;
}

/** Run a `get` until its capture reaches `poll.until`; a `poll.fail` state or the time limit fails it. */
function pollCommand(
  a: RunAction,
  argv: string[],
  vars: Vars,
  ctx: PlanContext,
  opts: RunOptions,
): string | undefined {
  const poll = a.poll;
  if (!poll || !a.capture) return runCommand(a, argv, vars, ctx);
  const deadline = Date.now() + poll.maxSeconds * 1000;
  for (;;) {
    const failure = runCommand(a, argv, vars, ctx);
    if (failure) return failure;
    const state = vars.get(a.capture) ?? "";
    if (state === poll.until) return undefined;
    if (poll.fail.includes(state)) return `${a.capture} is ${state}, expected ${poll.until}`;
    if (Date.now() >= deadline) {
      return `${a.capture} is still "${state}" after ${poll.maxSeconds} s, expected ${poll.until}`;
    }
    opts.sleep(poll.intervalSeconds * 1000);
  }
}

/** Run the plan: stop at the first failing command and say how to resume. Returns the exit code. */
export function runPlan(opts: RunOptions): number {
  const { steps, ctx, log } = opts;
  const vars: Vars = new Map(ctx.vars);
  let start = 0;
  if (opts.from) {
    start = steps.findIndex((s) => s.id === opts.from);
    const statePath = path.resolve(ROOT, stateFile(ctx));
    if (existsSync(statePath)) {
      const saved = JSON.parse(readFileSync(statePath, "utf8")) as {
        captured?: Record<string, string>;
      };
      // Config values and --set win over what an earlier run captured.
      for (const [k, v] of Object.entries(saved.captured ?? {})) if (!vars.has(k)) vars.set(k, v);
    }
  }
  const f = (s: string) => fill(s, vars, "strict");

  for (let i = start; i < steps.length; i++) {
    const step = steps[i] as Step;
    log(`\n# ── step ${i + 1}/${steps.length}: ${step.id} — ${step.title}`);
    for (const a of step.actions) {
      let failure: string | undefined;
      let shown: string | undefined;
      try {
        if (a.kind === "write") {
          const file = path.resolve(ROOT, a.file);
          mkdirSync(path.dirname(file), { recursive: true });
          writeFileSync(file, a.render(f));
          log(`# wrote ${display(a.file)}`);
          continue;
        }
        if (a.ifEmpty && vars.get(a.ifEmpty)) {
          log(`# ${a.note}: skipped, ${a.ifEmpty} is already known`);
          continue;
        }
        const argv = a.argv.map(f);
        shown = commandLine({ ...a, ifEmpty: undefined } as RunAction, argv);
        log(`$ ${shown}`);
        failure = a.poll ? pollCommand(a, argv, vars, ctx, opts) : runCommand(a, argv, vars, ctx);
      } catch (err) {
        failure = describeError(err);
      }
      if (failure) {
        log(`\n✗ step ${step.id} failed: ${failure}`);
        log(`  action: ${a.note}`);
        if (shown) log(`  command: ${shown}`);
        log(
          `  Fix the cause, then resume at this step (captured ids are kept in ${display(stateFile(ctx))}):`,
        );
        log(
          `    npx tsx scripts/deploy-oci.ts ${[...opts.resumeArgs, "--from", step.id].map(shellQuote).join(" ")}`,
        );
        return 1;
      }
    }
  }
  log("\n✓ deployed. Manual rerun of a job's failed partitions:");
  log(
    `    echo '{"rerunFailed":"job-…"}' | fn invoke ${ctx.config.prefix} ${ctx.config.prefix}-splitter`,
  );
  return 0;
}

// ---------------------------------------------------------------------------
// CLI

interface Args {
  dryRun: boolean;
  config: string | undefined;
  out: string;
  from: string | undefined;
  set: [string, string][];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { dryRun: false, config: undefined, out: DEFAULT_OUT, from: undefined, set: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`${arg} needs a value`);
      return v;
    };
    if (arg === "--dry-run") a.dryRun = true;
    else if (arg === "--config") a.config = value();
    else if (arg === "--out") a.out = value();
    else if (arg === "--from") a.from = value();
    else if (arg === "--set") {
      const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(value());
      if (!m)
        throw new InvalidArgumentError(
          "--set takes NAME=VALUE (NAME in capitals, e.g. QUEUE_OCID)",
        );
      a.set.push([m[1] as string, m[2] as string]);
    } else if (arg === "--help" || arg === "-h") {
      console.log(
        "usage: npx tsx scripts/deploy-oci.ts [--dry-run] [--config FILE] [--out DIR] [--from STEP] [--set NAME=VALUE]...",
      );
      process.exit(0);
    } else throw new InvalidArgumentError(`unknown argument ${arg} (see --help)`);
  }
  return a;
}

/** Entry point; returns the exit code (0 done, 1 a command failed, 2 bad arguments or config). */
export function main(argv: string[]): number {
  let args: Args;
  let steps: Step[];
  let ctx: PlanContext;
  try {
    args = parseArgs(argv);
    if (!args.dryRun && !args.config)
      throw new InvalidArgumentError(
        `a real deployment needs --config FILE (copy ${DEFAULT_CONFIG} and fill in your OCIDs); try --dry-run first`,
      );
    const config = loadConfig(path.resolve(args.config ?? path.join(ROOT, DEFAULT_CONFIG)));
    ctx = planContext(config, display(path.resolve(args.out)));
    for (const [k, v] of args.set) ctx.vars.set(k, v);
    checkJobDefaults(ctx);
    steps = buildPlan(ctx);
    if (args.from && !steps.some((s) => s.id === args.from))
      throw new InvalidArgumentError(
        `--from ${args.from}: no such step (${steps.map((s) => s.id).join(", ")})`,
      );
  } catch (err) {
    console.error(`deploy-oci: ${describeError(err)}`);
    return 2;
  }

  if (args.dryRun) {
    // Rendered files are written (placeholders left in) so they can be reviewed; nothing is run.
    const keep = (s: string) => fill(s, ctx.vars, "keep");
    for (const step of steps) {
      for (const a of step.actions) {
        if (a.kind !== "write") continue;
        const file = path.resolve(ROOT, a.file);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, a.render(keep));
      }
    }
    const filled = steps.map((s) => ({
      ...s,
      actions: s.actions.map((a) => (a.kind === "run" ? { ...a, argv: a.argv.map(keep) } : a)),
    }));
    process.stdout.write(printPlan(filled, ctx));
    return 0;
  }
  mkdirSync(path.resolve(ROOT, ctx.out), { recursive: true });
  const resumeArgs = argv.filter((x, i) => x !== "--from" && argv[i - 1] !== "--from");
  return runPlan({
    steps,
    ctx,
    from: args.from,
    resumeArgs,
    log: (l) => console.log(l),
    sleep: (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms),
  });
}

/** Fail before deploying if a job-defaults block would make every upload's job spec invalid. */
function checkJobDefaults(ctx: PlanContext): void {
  const c = ctx.config;
  const check = (field: string, defaults: Record<string, unknown>, bucket: string) => {
    const filled = fillDeep(defaults, (s) => fill(s, ctx.vars, "keep"));
    try {
      resolveJobSpec({ ...(filled as object), input: { bucket, object: "deploy-check.csv" } });
    } catch (err) {
      throw new InvalidArgumentError(`config ${field}: ${describeError(err)}`);
    }
  };
  check("functions.jobDefaults", c.functions.jobDefaults, c.buckets.input);
  if (c.embeddingRefresh) {
    // The refresh function's settings, as it will parse them (outputs outside the corpus).
    const filled = fillDeep(refreshSettingsOf(c), (s) => fill(s, ctx.vars, "keep"));
    try {
      refreshLayout(parseRefreshSettings(filled));
    } catch (err) {
      throw new InvalidArgumentError(`config embeddingRefresh: ${describeError(err)}`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
