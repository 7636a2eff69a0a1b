/**
 * IAM for the OCI stand-in: who signed a request (a principal per key), the
 * policy statements in force, and whether they allow an operation. The policy
 * language is the subset scripts/oci/iam-policies.json uses (Oracle's syntax:
 * https://docs.oracle.com/en-us/iaas/Content/Identity/Concepts/policysyntax.htm):
 *
 *   Allow <subject> to <verb> <resource-type> in (tenancy | compartment id <ocid>)
 *     [where <var> = '<value>' | where all {<var> = '<value>', ...} | where any {...}]
 *
 * with subjects `group`, `dynamic-group` (optionally `<domain>/<name>`), `any-user`
 * and `service`. Anything outside that subset is a parse error, so a statement the
 * stand-in can't judge fails the tests instead of being ignored.
 *
 * Stricter than OCI where it can only be: a compartment grants nothing in its
 * sub-compartments; a variable a request does not carry makes its condition false
 * (as OCI documents: "Variables Not Applicable to a Request Result in a Declined
 * Request"); values compare case-sensitively except `target.bucket.name`, which
 * Object Storage matches case-insensitively.
 */
import { permissionsOf, type Requirement, VERBS, type Verb } from "./iam-permissions.ts";

/** Who a request comes from. */
export type Principal =
  | { kind: "user"; id: string; groups: string[] }
  /** A resource principal (a function: type `fnfunc`). */
  | { kind: "resource"; type: string; id: string; compartmentId: string }
  /** OKE workload identity: a pod's service account. */
  | {
      kind: "workload";
      namespace: string;
      serviceAccount: string;
      clusterId: string;
      compartmentId: string;
    }
  /** A resource schedule (Resource Scheduler) acting as itself. */
  | { kind: "resourceschedule"; id: string; compartmentId: string }
  /** An OCI service acting for the tenancy (Events delivering to a function). */
  | { kind: "service"; name: string };

/** A short name for a principal, for error messages. */
export function describePrincipal(p: Principal): string {
  switch (p.kind) {
    case "user":
      return `user ${p.id}`;
    case "resource":
      return `${p.type} ${p.id}`;
    case "workload":
      return `workload ${p.namespace}/${p.serviceAccount} in cluster ${p.clusterId}`;
    case "resourceschedule":
      return `resource schedule ${p.id}`;
    case "service":
      return `service ${p.name}`;
  }
}

type Condition = { variable: string; value: string };
interface Where {
  mode: "all" | "any";
  conditions: Condition[];
}

/** One parsed statement. */
export interface Statement {
  text: string;
  subject:
    | { kind: "group" | "dynamic-group"; name: string }
    | { kind: "any-user" }
    | { kind: "service"; name: string };
  verb: Verb;
  resourceType: string;
  location: { kind: "tenancy" } | { kind: "compartment"; id: string };
  where: Where | undefined;
}

const STATEMENT =
  /^Allow\s+(group|dynamic-group|any-user|service)\s*(\S+)?\s+to\s+(inspect|read|use|manage)\s+([a-z-]+)\s+in\s+(tenancy|compartment\s+id\s+\S+)(?:\s+where\s+(.+))?$/i;
const CONDITION = /^([a-z][a-z0-9_.-]*)\s*=\s*'([^']*)'$/i;

function parseWhere(text: string, statement: string): Where {
  const block = /^(all|any)\s*\{(.*)\}$/is.exec(text.trim());
  const parts = block ? (block[2] ?? "").split(",") : [text];
  const conditions = parts.map((part) => {
    const m = CONDITION.exec(part.trim());
    if (!m)
      throw new Error(`stand-in IAM cannot judge condition "${part.trim()}" in: ${statement}`);
    return { variable: (m[1] ?? "").toLowerCase(), value: m[2] ?? "" };
  });
  return { mode: block ? ((block[1] ?? "all").toLowerCase() as "all" | "any") : "all", conditions };
}

/** Parse one statement of the supported subset; throws naming what it can't judge. */
export function parseStatement(text: string): Statement {
  const m = STATEMENT.exec(text.trim());
  if (!m) throw new Error(`stand-in IAM cannot parse statement: ${text}`);
  const [, subjectKind = "", subjectName, verb = "", resourceType = "", location = "", where] = m;
  const kind = subjectKind.toLowerCase();
  if (kind !== "any-user" && !subjectName) throw new Error(`statement names no ${kind}: ${text}`);
  if (permissionsOf(verb.toLowerCase() as Verb, resourceType.toLowerCase()) === undefined) {
    throw new Error(`stand-in IAM does not know resource type "${resourceType}" in: ${text}`);
  }
  const compartment = /^compartment\s+id\s+(\S+)$/i.exec(location);
  return {
    text,
    subject:
      kind === "any-user"
        ? { kind: "any-user" }
        : kind === "service"
          ? { kind: "service", name: subjectName ?? "" }
          : { kind: kind as "group" | "dynamic-group", name: subjectName ?? "" },
    verb: verb.toLowerCase() as Verb,
    resourceType: resourceType.toLowerCase(),
    location: compartment ? { kind: "compartment", id: compartment[1] ?? "" } : { kind: "tenancy" },
    where: where === undefined ? undefined : parseWhere(where, text),
  };
}

/** A dynamic group: its matching rule over a resource principal's `resource.*` attributes. */
export interface DynamicGroup {
  name: string;
  matchingRule: string;
}

/** Does a resource principal match `ALL {…}` / `ANY {…}` of `resource.type/id/compartment.id`? */
function matchesRule(rule: string, p: Principal): boolean {
  if (p.kind !== "resource") return false;
  const where = parseWhere(rule, rule);
  const attrs: Record<string, string> = {
    "resource.type": p.type,
    "resource.id": p.id,
    "resource.compartment.id": p.compartmentId,
  };
  const test = (c: Condition) => attrs[c.variable] !== undefined && attrs[c.variable] === c.value;
  return where.mode === "all" ? where.conditions.every(test) : where.conditions.some(test);
}

/** The outcome of one authorization. */
export type Decision = { allowed: true } | { allowed: false; missing: string[] };

/** Policy statements and dynamic groups in force, and the decisions they make. */
export class IamPolicies {
  private statements: Statement[] = [];
  private dynamicGroups: DynamicGroup[] = [];

  /** Replace the statements in force (each parsed; a bad one throws). */
  setStatements(texts: string[]): this {
    this.statements = texts.map(parseStatement);
    return this;
  }

  /** Add statements. */
  addStatements(texts: string[]): this {
    this.statements.push(...texts.map(parseStatement));
    return this;
  }

  setDynamicGroups(groups: DynamicGroup[]): this {
    this.dynamicGroups = [...groups];
    return this;
  }

  /** The statements in force, as text. */
  get texts(): string[] {
    return this.statements.map((s) => s.text);
  }

  private subjectMatches(s: Statement, p: Principal): boolean {
    switch (s.subject.kind) {
      case "any-user":
        return p.kind !== "service";
      case "service":
        return p.kind === "service" && p.name.toLowerCase() === s.subject.name.toLowerCase();
      case "group":
        return p.kind === "user" && p.groups.includes(s.subject.name);
      case "dynamic-group": {
        // `Domain/name` in a tenancy with identity domains: the stand-in has one domain.
        const name = s.subject.name.includes("/")
          ? s.subject.name.slice(s.subject.name.indexOf("/") + 1)
          : s.subject.name;
        const group = this.dynamicGroups.find((g) => g.name === name);
        return group !== undefined && matchesRule(group.matchingRule, p);
      }
    }
  }

  private variables(p: Principal, req: Requirement): Record<string, string> {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.target)) vars[k.toLowerCase()] = v;
    switch (p.kind) {
      case "user":
        vars["request.principal.type"] = "user";
        vars["request.principal.id"] = p.id;
        break;
      case "resource":
        vars["request.principal.type"] = p.type;
        vars["request.principal.id"] = p.id;
        vars["request.principal.compartment.id"] = p.compartmentId;
        break;
      case "workload":
        vars["request.principal.type"] = "workload";
        vars["request.principal.namespace"] = p.namespace;
        vars["request.principal.service_account"] = p.serviceAccount;
        vars["request.principal.cluster_id"] = p.clusterId;
        break;
      case "resourceschedule":
        vars["request.principal.type"] = "resourceschedule";
        vars["request.principal.id"] = p.id;
        break;
      case "service":
        break;
    }
    return vars;
  }

  private whereHolds(where: Where | undefined, vars: Record<string, string>): boolean {
    if (!where) return true;
    const test = (c: Condition) => {
      const actual = vars[c.variable];
      if (actual === undefined) return false;
      return c.variable === "target.bucket.name"
        ? actual.toLowerCase() === c.value.toLowerCase()
        : actual === c.value;
    };
    return where.mode === "all" ? where.conditions.every(test) : where.conditions.some(test);
  }

  /** The permissions statements grant `p` for this request. */
  private granted(p: Principal, req: Requirement): Set<string> | "all" {
    const out = new Set<string>();
    const vars = this.variables(p, req);
    for (const s of this.statements) {
      if (!this.subjectMatches(s, p)) continue;
      if (s.location.kind === "compartment" && s.location.id !== req.compartmentId) continue;
      if (!this.whereHolds(s.where, vars)) continue;
      const perms = permissionsOf(s.verb, s.resourceType);
      if (perms === "all") return "all";
      for (const perm of perms ?? []) out.add(perm);
    }
    return out;
  }

  /** Allow or deny; a denial lists the permissions that were missing. */
  decide(p: Principal, req: Requirement): Decision {
    const granted = this.granted(p, req);
    if (granted === "all") return { allowed: true };
    const missing = req.all.filter((perm) => !granted.has(perm));
    if (req.any && req.any.length > 0 && !req.any.some((perm) => granted.has(perm))) {
      missing.push(req.any.join(" or "));
    }
    return missing.length === 0 ? { allowed: true } : { allowed: false, missing };
  }
}

/** The verb one step weaker than `verb` (undefined below inspect). */
export function weakerVerb(verb: Verb): Verb | undefined {
  return VERBS[VERBS.indexOf(verb) - 1];
}

/** OCI's tenancy-admin statement (every tenancy has it for the Administrators group). */
export const ADMIN_STATEMENT = "Allow group Administrators to manage all-resources in tenancy";
