/** The plan as text: a comment per action, one shell line per command. */
import path from "node:path";
import type { PlanContext } from "./context.ts";
import { ROOT } from "./paths.ts";
import { PLACEHOLDER, ph, placeholders } from "./placeholders.ts";
import type { RunAction, Step } from "./types.ts";

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quote one argument for a POSIX shell. An argument with placeholders is
 * double-quoted so the shell would expand `${NAME}` (the dry run reads as a
 * script whose captured values live in shell variables); all else is literal.
 */
export function shellQuote(arg: string): string {
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  if (placeholders(arg).length > 0) {
    let outText = "";
    let last = 0;
    for (const m of arg.matchAll(PLACEHOLDER)) {
      outText += arg.slice(last, m.index).replace(/[\\"$`]/g, "\\$&");
      outText += m[0];
      last = (m.index ?? 0) + m[0].length;
    }
    outText += arg.slice(last).replace(/[\\"$`]/g, "\\$&");
    return `"${outText}"`;
  }
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A run action as one shell line (with its capture and its only-if-missing guard). */
export function commandLine(a: RunAction, argv: string[] = a.argv): string {
  const cmd = argv.map(shellQuote).join(" ");
  if (a.poll && a.capture) {
    // The runner also stops on a state in `poll.fail` and after `poll.maxSeconds`.
    return `until ${a.capture}=$(${cmd}) && [ "$${a.capture}" = ${a.poll.until} ]; do sleep ${a.poll.intervalSeconds}; done`;
  }
  const body = a.capture ? `${a.capture}=$(${cmd})` : cmd;
  return a.ifEmpty ? `[ -n "\${${a.ifEmpty}:-}" ] || ${body}` : body;
}

/** A repository path relative to the root; anything outside it absolute. */
export function display(file: string): string {
  const rel = path.relative(ROOT, path.resolve(ROOT, file));
  return rel.startsWith("..") ? path.resolve(ROOT, file) : rel;
}

/** The whole plan as text: a comment per action, one shell line per command. */
export function printPlan(steps: Step[], ctx: PlanContext): string {
  const c = ctx.config;
  const lines = [
    "#!/usr/bin/env bash",
    `# OCI deployment plan for "${c.prefix}" in ${c.region}, compartment ${c.compartmentOcid}.`,
    `# Dry run: nothing was executed. ${ph("NAME")} is a value an earlier command captures at run time;`,
    `# files marked "writes" were rendered under ${display(ctx.out)} with those placeholders left in.`,
  ];
  steps.forEach((step, i) => {
    lines.push("", `# ── step ${i + 1}/${steps.length}: ${step.id} — ${step.title}`);
    if (step.actions.length === 0) lines.push("# (nothing to do with this config)");
    for (const a of step.actions) {
      if (a.kind === "write") lines.push(`# writes ${display(a.file)}: ${a.note}`);
      else lines.push(`# ${a.note}`, commandLine(a));
    }
  });
  return `${lines.join("\n")}\n`;
}
