/**
 * Every command line of the deploy plan against the CLIs' own definitions
 * (scripts/oci/cli-options.json, extracted from oracle/oci-cli at three versions,
 * fnproject/cli and kubectl's flags): the command exists, each option is one it
 * takes, flags get no value and other options one, enum options get a value the
 * CLI's click Choice allows, booleans and integers parse, required options are
 * there. A line the CLI would reject with a usage error (exit 2) fails here.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../scripts/oci/plan/config.ts";
import { planContext } from "../scripts/oci/plan/context.ts";
import { placeholders } from "../scripts/oci/plan/placeholders.ts";
import { buildPlan } from "../scripts/oci/plan/steps.ts";
import type { RunAction } from "../scripts/oci/plan/types.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const EXAMPLE = path.join(ROOT, "scripts", "oci", "deploy.example.json");

interface OptionSpec {
  names: string[];
  choices?: string[];
  flag?: boolean;
  multiple?: boolean;
  required?: boolean;
  type?: "boolean" | "integer" | "float";
}
interface CliTable {
  source: { versions: Record<string, { commit: string }> };
  global: Record<string, Record<string, OptionSpec>>;
  commands: Record<
    string,
    { source: Record<string, string>; options: Record<string, Record<string, OptionSpec>> }
  >;
  otherTools: Record<
    string,
    {
      global: Record<string, { flag?: boolean }>;
      commands: Record<string, Record<string, { flag?: boolean }>>;
    }
  >;
}

const table = JSON.parse(
  readFileSync(path.join(ROOT, "scripts", "oci", "cli-options.json"), "utf8"),
) as CliTable;
const VERSIONS = Object.keys(table.source.versions);

/** Why an `oci` argv would be a usage error on CLI `version`; empty when it would parse. */
export function ociUsageErrors(argv: string[], version: string): string[] {
  const errors: string[] = [];
  const words: string[] = [];
  let i = 1;
  const global = table.global[version] ?? {};
  const find = (specs: Record<string, OptionSpec>, name: string) =>
    Object.values(specs).find((s) => s.names.includes(name));
  // Global options may come before the command path.
  while (i < argv.length && (argv[i] as string).startsWith("--")) {
    const spec = find(global, argv[i] as string);
    if (!spec) return [`unknown global option ${argv[i]}`];
    i += spec.flag ? 1 : 2;
  }
  while (i < argv.length && !(argv[i] as string).startsWith("--")) words.push(argv[i++] as string);
  const command = words.join(" ");
  const entry = table.commands[command]?.options[version];
  if (!entry)
    return [`"oci ${command}" is not a command (or is not in scripts/oci/cli-options.json)`];
  const seen = new Map<OptionSpec, number>();
  while (i < argv.length) {
    const name = argv[i] as string;
    const spec = find(entry, name) ?? find(global, name);
    if (!spec) {
      errors.push(`${command}: no such option ${name}`);
      i++;
      continue;
    }
    seen.set(spec, (seen.get(spec) ?? 0) + 1);
    if (spec.flag) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        errors.push(`${command}: ${name} is a flag, but "${next}" follows it`);
      }
      i++;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || (value.startsWith("--") && !spec.choices)) {
      errors.push(`${command}: ${name} needs a value`);
      i++;
      continue;
    }
    i += 2;
    if (placeholders(value).length > 0) continue; // captured at run time
    if (spec.choices && !spec.choices.some((c) => c.toUpperCase() === value.toUpperCase())) {
      errors.push(`${command}: ${name} ${value} is not one of ${spec.choices.join(", ")}`);
    }
    if (spec.type === "boolean" && !/^(true|false)$/i.test(value)) {
      errors.push(`${command}: ${name} takes true or false, not ${value}`);
    }
    if (spec.type === "integer" && !/^-?\d+$/.test(value)) {
      errors.push(`${command}: ${name} takes an integer, not ${value}`);
    }
  }
  for (const [spec, count] of seen) {
    if (count > 1 && !spec.multiple)
      errors.push(`${command}: ${spec.names[0]} given ${count} times`);
  }
  const fromJson = argv.includes("--from-json");
  for (const spec of Object.values(entry)) {
    if (spec.required && !seen.has(spec) && !fromJson) {
      errors.push(`${command}: required option ${spec.names[0]} is missing`);
    }
  }
  return errors;
}

/** Same for `fn` and `kubectl`: known global options, command, and its options. */
function toolUsageErrors(argv: string[]): string[] {
  const tool = table.otherTools[argv[0] as string];
  if (!tool) return [];
  const errors: string[] = [];
  let i = 1;
  const takes = (spec: { flag?: boolean }) => (spec.flag ? 1 : 2);
  while (i < argv.length && (argv[i] as string).startsWith("-")) {
    const spec = tool.global[argv[i] as string];
    if (!spec) return [`${argv[0]}: unknown global option ${argv[i]}`];
    i += takes(spec);
  }
  const command = argv[i++] as string;
  const options = tool.commands[command];
  if (!options) return [`${argv[0]}: unknown command ${command}`];
  while (i < argv.length) {
    const a = argv[i] as string;
    if (!a.startsWith("-")) {
      i++;
      continue;
    }
    const spec = options[a] ?? tool.global[a];
    if (!spec) errors.push(`${argv[0]} ${command}: no such option ${a}`);
    i += spec ? takes(spec) : 1;
  }
  return errors;
}

function fullConfigFile(): string {
  const config = JSON.parse(readFileSync(EXAMPLE, "utf8")) as Record<
    string,
    Record<string, unknown>
  >;
  config.oke = { ...config.oke, apiServer: "https://10.0.10.5:6443", caFile: "/etc/ca.pem" };
  config.dataScience = { compartmentOcid: "ocid1.compartment.oc1..aaaaaaaamodels" };
  config.profile = "DEPLOY" as never;
  const file = path.join(os.tmpdir(), `deploy-plan-cli-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function planCommands(configFile: string): RunAction[] {
  const ctx = planContext(loadConfig(configFile), path.join(os.tmpdir(), "deploy-plan-cli-out"));
  return buildPlan(ctx).flatMap((s) => s.actions.filter((a): a is RunAction => a.kind === "run"));
}

describe("the deploy plan, line by line, against the CLIs' option definitions", () => {
  for (const [label, file] of [
    ["example config", EXAMPLE],
    ["every optional feature, a profile", fullConfigFile()],
  ] as const) {
    it(`every oci line parses on oci-cli ${VERSIONS.join(", ")} (${label})`, () => {
      const lines = planCommands(file).filter((a) => a.argv[0] === "oci");
      assert.ok(lines.length > 50, `${lines.length} oci lines`);
      const errors = lines.flatMap((a) =>
        VERSIONS.flatMap((v) => ociUsageErrors(a.argv, v).map((e) => `oci-cli ${v}: ${e}`)),
      );
      assert.deepEqual(errors, []);
    });

    it(`every fn and kubectl line uses a command and options the tool has (${label})`, () => {
      const lines = planCommands(file).filter((a) => ["fn", "kubectl"].includes(a.argv[0] ?? ""));
      assert.ok(lines.length >= 4);
      assert.deepEqual(
        lines.flatMap((a) => toolUsageErrors(a.argv)),
        [],
      );
    });
  }

  it("npm lines name scripts package.json has", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    for (const a of planCommands(EXAMPLE).filter((x) => x.argv[0] === "npm")) {
      assert.equal(a.argv[1], "run");
      assert.ok(pkg.scripts[a.argv[2] ?? ""], `npm run ${a.argv[2]}`);
    }
  });

  it("the checker catches what the CLI rejects: an unknown option, a bad enum value, a value after a flag", () => {
    const v = VERSIONS[0] as string;
    assert.match(
      ociUsageErrors(
        [
          "oci",
          "streaming",
          "admin",
          "stream-pool",
          "create",
          "--compartment-id",
          "c",
          "--name",
          "p",
          "--wait-for-state",
          "SUCCEEDED",
        ],
        v,
      ).join(),
      /--wait-for-state SUCCEEDED is not one of CREATING, ACTIVE/,
    );
    assert.match(
      ociUsageErrors(["oci", "os", "ns", "get", "--bogus", "1"], v).join(),
      /no such option --bogus/,
    );
    assert.match(
      ociUsageErrors(
        ["oci", "os", "bucket", "list", "--compartment-id", "c", "--all", "yes"],
        v,
      ).join(),
      /--all is a flag/,
    );
    assert.match(
      ociUsageErrors(["oci", "os", "bucket", "create"], v).join(),
      /required option --compartment-id/,
    );
    assert.match(ociUsageErrors(["oci", "nosql", "table", "drop"], v).join(), /not a command/);
  });

  it("the table cites the oracle/oci-cli commits and source files it came from", () => {
    for (const [version, { commit }] of Object.entries(table.source.versions)) {
      assert.match(commit, /^[0-9a-f]{40}$/, version);
    }
    for (const [command, entry] of Object.entries(table.commands)) {
      for (const v of VERSIONS)
        assert.match(entry.source[v] ?? "", /^services\/.+\.py$/, `${command} ${v}`);
    }
  });
});
