/**
 * Repository files the plan reads and deploys: func.yaml and the worker Deployment,
 * the NoSQL DDL, the IAM policies, the Events rules.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError } from "../../../src/core/errors.ts";
import type { TableLimits } from "./config.ts";
import { IAM_FILE, K8S_DIR, ROOT, RULES_DIR } from "./paths.ts";

/** What the plan knows about the repository (manifests, func.yaml, IAM and rule files). */
export interface RepoFacts {
  fnName: string;
  fnVersion: string;
  k8sNamespace: string;
  k8sServiceAccount: string;
  k8sDeployment: string;
  deploymentTemplate: string;
}

/** Names the plan takes from func.yaml and the worker Deployment (refused when missing). */
export function readRepoFacts(): RepoFacts {
  const func = readFileSync(path.join(ROOT, "func.yaml"), "utf8");
  const deployment = readFileSync(path.join(ROOT, K8S_DIR, "worker-deployment.yaml"), "utf8");
  const need = (re: RegExp, text: string, what: string) => {
    const m = re.exec(text)?.[1];
    if (!m) throw new InvalidArgumentError(`cannot find ${what}`);
    return m;
  };
  return {
    fnName: need(/^name:\s*(\S+)$/m, func, "name in func.yaml"),
    fnVersion: need(/^version:\s*(\S+)$/m, func, "version in func.yaml"),
    k8sNamespace: need(
      /^\s+namespace:\s*(\S+)$/m,
      deployment,
      "namespace in worker-deployment.yaml",
    ),
    k8sServiceAccount: need(
      /serviceAccountName:\s*([a-z0-9.-]+)/,
      deployment,
      "serviceAccountName",
    ),
    k8sDeployment: need(/^metadata:\n\s+name:\s*(\S+)$/m, deployment, "the Deployment's name"),
    deploymentTemplate: deployment,
  };
}

/** A CREATE TABLE or CREATE INDEX statement of the DDL file, with its table limits. */
export interface DdlStatement {
  kind: "table" | "index";
  table: string;
  /** Index name (indexes only). */
  name?: string;
  /** Index key columns (indexes only). */
  columns?: string[];
  /** The statement on one line, without the trailing ";". */
  statement: string;
  /** From a `-- table-limits: {...}` comment above the statement. */
  limits?: TableLimits;
}

/**
 * Split the NoSQL DDL into statements. Only CREATE TABLE and CREATE INDEX on
 * plain columns are accepted: those are what `oci nosql table create` and
 * `oci nosql index create` can run.
 */
export function parseDdl(text: string): DdlStatement[] {
  const out: DdlStatement[] = [];
  let limits: TableLimits | undefined;
  let body: string[] = [];
  for (const line of text.split("\n")) {
    const comment = /^\s*--(.*)$/.exec(line);
    if (comment) {
      const l = /table-limits:\s*(\{.*\})/.exec(comment[1] as string);
      if (l) limits = JSON.parse(l[1] as string) as TableLimits;
      continue;
    }
    body.push(line);
    if (!line.trimEnd().endsWith(";")) continue;
    const statement = body.join(" ").replace(/\s+/g, " ").trim().replace(/;$/, "").trim();
    body = [];
    const table = /^CREATE TABLE (?:IF NOT EXISTS )?([A-Za-z][A-Za-z0-9_]*)\s*\(/i.exec(statement);
    const index =
      /^CREATE INDEX (?:IF NOT EXISTS )?([A-Za-z][A-Za-z0-9_]*) ON ([A-Za-z][A-Za-z0-9_]*)\s*\(([A-Za-z0-9_,\s]+)\)$/i.exec(
        statement,
      );
    if (table)
      out.push({
        kind: "table",
        table: table[1] as string,
        statement,
        ...(limits ? { limits } : {}),
      });
    else if (index)
      out.push({
        kind: "index",
        name: index[1] as string,
        table: index[2] as string,
        columns: (index[3] as string).split(",").map((s) => s.trim()),
        statement,
      });
    else
      throw new InvalidArgumentError(
        `unsupported NoSQL DDL statement (create it by hand): ${statement}`,
      );
    limits = undefined;
  }
  if (body.join("").trim()) throw new InvalidArgumentError("NoSQL DDL: last statement has no ';'");
  return out;
}

/** The IAM file: dynamic groups and policies, with placeholders. */
export interface IamFile {
  dynamicGroups: { name: string; description: string; matchingRule: string; captureAs: string }[];
  policies: {
    name: string;
    component: string;
    step: "iam" | "scaler-triggers";
    description: string;
    statements: string[];
  }[];
  tenancyGrants: string[];
  unconfirmed: string[];
}

/** Read scripts/oci/iam-policies.json. */
export function loadIam(): IamFile {
  return JSON.parse(readFileSync(path.join(ROOT, IAM_FILE), "utf8")) as IamFile;
}

/** An Events rule file as `oci events rule create --from-json` takes it. */
export interface RuleFile {
  compartmentId: string;
  displayName: string;
  description: string;
  isEnabled: boolean;
  condition: string;
  actions: { actions: { actionType: string; functionId?: string; isEnabled: boolean }[] };
}

/** The rule files in events/rules, by file name. */
export function loadRules(): [string, RuleFile][] {
  const dir = path.join(ROOT, RULES_DIR);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(path.join(dir, f), "utf8")) as RuleFile]);
}
