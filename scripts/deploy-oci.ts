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
 * Terminology: a *step* is a named group of *actions*; an action either runs
 * one command or writes one rendered file under the output directory. A
 * *placeholder* `${NAME}` stands for a static config value or for an id a
 * command *captures* (`--query … --raw-output`) at run time. Every step is
 * written to be re-runnable: it looks a resource up by name, creates it only
 * when missing, then brings its settings up to date.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describeError, InvalidArgumentError } from "../src/core/errors.ts";
import { resolveJobSpec } from "../src/core/job-spec.ts";

/** Repository root: every repo path in the plan is relative to it, and commands run in it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const DEFAULT_CONFIG = "scripts/oci/deploy.example.json";
const DEFAULT_OUT = "dist/oci-deploy";
const IAM_FILE = "scripts/oci/iam-policies.json";
const RULES_DIR = "events/rules";
const K8S_DIR = "worker-image/k8s";

// ---------------------------------------------------------------------------
// Configuration

/** Provisioned table limits, as `oci nosql table create --table-limits` takes them. */
export interface TableLimits {
  maxReadUnits: number;
  maxWriteUnits: number;
  maxStorageInGBs: number;
  capacityMode?: "PROVISIONED" | "ON_DEMAND";
}

/** The deploy config (scripts/oci/deploy.example.json), with defaults applied. */
export interface DeployConfig {
  prefix: string;
  region: string;
  ocirRegionKey: string;
  tenancyOcid: string;
  compartmentOcid: string;
  /** Where the policies live: a common parent when the cluster or models sit in other compartments. */
  policyCompartmentOcid: string;
  /** Identity domain of the dynamic groups ("Default"); policies then name `Default/<group>`. */
  identityDomain: string | undefined;
  profile: string | undefined;
  /** Object Storage namespace; looked up with `oci os ns get` when absent. */
  namespace: string | undefined;
  imageTag: string;
  buckets: { input: string; output: string; models: string; state: string };
  queue: {
    visibilitySeconds: number;
    retentionSeconds: number;
    pollTimeoutSeconds: number;
    deadLetterDeliveryCount: number;
  };
  nosql: {
    ddlFile: string;
    jobsTable: string;
    partitionsTable: string;
    tableLimits: Record<string, TableLimits>;
  };
  stream: { partitions: number; retentionHours: number };
  functions: {
    subnetIds: string[];
    shape: string | undefined;
    logLevel: string;
    jobDefaults: Record<string, unknown>;
    memoryMb: Record<FunctionName, number>;
    timeoutSeconds: Record<FunctionName, number>;
  };
  oke: {
    clusterOcid: string;
    compartmentOcid: string;
    kubeEndpoint: string;
    apiServer: string | undefined;
    caFile: string | undefined;
    imagePullSecret: string | undefined;
  };
  scaler: {
    alarm: boolean;
    repeatNotification: string;
    /** Resource Scheduler cron for the backstop invocation; undefined = no schedule. */
    scheduleCron: string | undefined;
    scaling: Record<string, number> | undefined;
  };
  embeddingRefresh:
    | { bucket: string; prefix: string; jobDefaults: Record<string, unknown> }
    | undefined;
  dataScience: { compartmentOcid: string } | undefined;
}

/** The functions one image serves (BATCH_INFER_FUNCTION), plus the embedding splitter. */
export type FunctionName = "splitter" | "merger" | "scaler" | "embed-splitter";

const OCID = /^ocid1\.[a-z0-9]+\.[a-z0-9-]+\.[a-z0-9-]*\.[a-z0-9._-]+$/i;
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,255}$/;

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(private readonly file: string) {}

  fail(field: string, what: string): never {
    throw new InvalidArgumentError(`config ${this.file}: ${field} ${what}`);
  }

  obj(parent: Json, key: string, field: string, optional = false): Json | undefined {
    const v = parent[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== "object" || v === null || Array.isArray(v))
      this.fail(field, "must be an object");
    return v as Json;
  }

  str(parent: Json, key: string, field: string, opts: { re?: RegExp; def?: string } = {}): string {
    const v = parent[key] ?? opts.def;
    if (typeof v !== "string" || v === "") this.fail(field, "must be a non-empty string");
    if (opts.re && !opts.re.test(v)) this.fail(field, `"${v}" does not match ${opts.re}`);
    return v;
  }

  optStr(parent: Json, key: string, field: string, re?: RegExp): string | undefined {
    return parent[key] === undefined ? undefined : this.str(parent, key, field, re ? { re } : {});
  }

  int(parent: Json, key: string, field: string, min: number, max: number, def: number): number {
    const v = parent[key] ?? def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      this.fail(field, `must be an integer in ${min}..${max}`);
    return v;
  }
}

/** Read and check a deploy config; fails naming the file and the bad field. */
export function loadConfig(file: string): DeployConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  const r = new ConfigReader(file);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    r.fail("(root)", "must be an object");
  const c = raw as Json;
  const ocid = { re: OCID };
  const compartmentOcid = r.str(c, "compartmentOcid", "compartmentOcid", ocid);
  const buckets = r.obj(c, "buckets", "buckets") as Json;
  const queue = r.obj(c, "queue", "queue", true) ?? {};
  const nosql = r.obj(c, "nosql", "nosql", true) ?? {};
  const stream = r.obj(c, "stream", "stream", true) ?? {};
  const fns = r.obj(c, "functions", "functions") as Json;
  const oke = r.obj(c, "oke", "oke") as Json;
  const scaler = r.obj(c, "scaler", "scaler", true) ?? {};
  const embed = r.obj(c, "embeddingRefresh", "embeddingRefresh", true);
  const ds = r.obj(c, "dataScience", "dataScience", true);
  if (embed && "input" in ((embed.jobDefaults as Json | undefined) ?? {}))
    r.fail("embeddingRefresh.jobDefaults", 'must not have "input" (the event names it)');

  const subnetIds = fns.subnetIds;
  if (
    !Array.isArray(subnetIds) ||
    subnetIds.length === 0 ||
    !subnetIds.every((s) => typeof s === "string" && OCID.test(s))
  ) {
    r.fail("functions.subnetIds", "must be a non-empty array of subnet OCIDs");
  }
  const jobDefaults = r.obj(fns, "jobDefaults", "functions.jobDefaults") as Json;
  if ("input" in jobDefaults)
    r.fail("functions.jobDefaults", 'must not have "input" (the event names it)');
  const limits = (r.obj(nosql, "tableLimits", "nosql.tableLimits", true) ?? {}) as Record<
    string,
    TableLimits
  >;
  const cron = scaler.scheduleCron === null ? undefined : (scaler.scheduleCron ?? "0 * * * *");
  if (cron !== undefined && (typeof cron !== "string" || cron.trim().split(/\s+/).length !== 5)) {
    r.fail("scaler.scheduleCron", "must be a 5-field cron expression, or null for no schedule");
  }
  const scaling = r.obj(scaler, "scaling", "scaler.scaling", true) as
    | Record<string, number>
    | undefined;
  const mem = (r.obj(fns, "memoryMb", "functions.memoryMb", true) ?? {}) as Json;
  const tmo = (r.obj(fns, "timeoutSeconds", "functions.timeoutSeconds", true) ?? {}) as Json;
  const perFn = (o: Json, field: string, defs: Record<FunctionName, number>, max: number) =>
    Object.fromEntries(
      (Object.keys(defs) as FunctionName[]).map((n) => [
        n,
        r.int(o, n, `${field}.${n}`, 1, max, defs[n]),
      ]),
    ) as Record<FunctionName, number>;

  return {
    prefix: r.str(c, "prefix", "prefix", { re: /^[a-z][a-z0-9-]{0,30}$/, def: "batch-infer" }),
    region: r.str(c, "region", "region", { re: /^[a-z]+-[a-z]+-\d+$/ }),
    ocirRegionKey: r.str(c, "ocirRegionKey", "ocirRegionKey", { re: /^[a-z0-9-]+$/ }),
    tenancyOcid: r.str(c, "tenancyOcid", "tenancyOcid", ocid),
    compartmentOcid,
    policyCompartmentOcid:
      r.optStr(c, "policyCompartmentOcid", "policyCompartmentOcid", OCID) ?? compartmentOcid,
    identityDomain: r.optStr(c, "identityDomain", "identityDomain", /^[A-Za-z0-9_-]+$/),
    profile: r.optStr(c, "profile", "profile"),
    namespace: r.optStr(c, "namespace", "namespace", /^[a-z0-9]+$/),
    imageTag: r.str(c, "imageTag", "imageTag", {
      re: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
      def: packageVersion(),
    }),
    buckets: {
      input: r.str(buckets, "input", "buckets.input", { re: BUCKET }),
      output: r.str(buckets, "output", "buckets.output", { re: BUCKET }),
      models: r.str(buckets, "models", "buckets.models", { re: BUCKET }),
      state: r.str(buckets, "state", "buckets.state", { re: BUCKET }),
    },
    queue: {
      visibilitySeconds: r.int(queue, "visibilitySeconds", "queue.visibilitySeconds", 1, 43200, 60),
      retentionSeconds: r.int(
        queue,
        "retentionSeconds",
        "queue.retentionSeconds",
        10,
        604800,
        604800,
      ),
      pollTimeoutSeconds: r.int(queue, "pollTimeoutSeconds", "queue.pollTimeoutSeconds", 0, 30, 20),
      deadLetterDeliveryCount: r.int(
        queue,
        "deadLetterDeliveryCount",
        "queue.deadLetterDeliveryCount",
        1,
        100,
        20,
      ),
    },
    nosql: {
      ddlFile: r.str(nosql, "ddlFile", "nosql.ddlFile", { def: "scripts/oci/nosql-tables.ddl" }),
      jobsTable: r.str(nosql, "jobsTable", "nosql.jobsTable", {
        re: TABLE,
        def: "batch_infer_jobs",
      }),
      partitionsTable: r.str(nosql, "partitionsTable", "nosql.partitionsTable", {
        re: TABLE,
        def: "batch_infer_partitions",
      }),
      tableLimits: limits,
    },
    stream: {
      partitions: r.int(stream, "partitions", "stream.partitions", 1, 50, 1),
      retentionHours: r.int(stream, "retentionHours", "stream.retentionHours", 24, 168, 24),
    },
    functions: {
      subnetIds: subnetIds as string[],
      shape: r.optStr(fns, "shape", "functions.shape", /^GENERIC_(X86|ARM|X86_ARM)$/),
      logLevel: r.str(fns, "logLevel", "functions.logLevel", {
        re: /^(debug|info|warn|error)$/,
        def: "info",
      }),
      jobDefaults,
      memoryMb: perFn(
        mem,
        "functions.memoryMb",
        { splitter: 512, merger: 1024, scaler: 256, "embed-splitter": 512 },
        3072,
      ),
      timeoutSeconds: perFn(
        tmo,
        "functions.timeoutSeconds",
        { splitter: 120, merger: 300, scaler: 60, "embed-splitter": 120 },
        300,
      ),
    },
    oke: {
      clusterOcid: r.str(oke, "clusterOcid", "oke.clusterOcid", ocid),
      compartmentOcid:
        r.optStr(oke, "compartmentOcid", "oke.compartmentOcid", OCID) ?? compartmentOcid,
      kubeEndpoint: r.str(oke, "kubeEndpoint", "oke.kubeEndpoint", {
        re: /^(PUBLIC_ENDPOINT|PRIVATE_ENDPOINT|VCN_HOSTNAME|LEGACY_KUBERNETES)$/,
        def: "PUBLIC_ENDPOINT",
      }),
      apiServer: r.optStr(oke, "apiServer", "oke.apiServer", /^https:\/\/\S+$/),
      caFile: r.optStr(oke, "caFile", "oke.caFile", /^\/\S+$/),
      imagePullSecret: r.optStr(
        oke,
        "imagePullSecret",
        "oke.imagePullSecret",
        /^[a-z0-9][a-z0-9.-]*$/,
      ),
    },
    scaler: {
      alarm: scaler.alarm !== false,
      repeatNotification: r.str(scaler, "repeatNotification", "scaler.repeatNotification", {
        re: /^P(T\d+[MH]|\d+D)$/,
        def: "PT1M",
      }),
      scheduleCron: cron as string | undefined,
      scaling,
    },
    embeddingRefresh: embed
      ? {
          bucket: r.str(embed, "bucket", "embeddingRefresh.bucket", { re: BUCKET }),
          prefix: r.str(embed, "prefix", "embeddingRefresh.prefix", { re: /^[^*"\\]*$/ }),
          jobDefaults: r.obj(embed, "jobDefaults", "embeddingRefresh.jobDefaults") as Json,
        }
      : undefined,
    dataScience: ds
      ? { compartmentOcid: r.str(ds, "compartmentOcid", "dataScience.compartmentOcid", ocid) }
      : undefined,
  };
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    version?: string;
  };
  return pkg.version ?? "latest";
}

// ---------------------------------------------------------------------------
// Placeholders

/** Values of placeholders known so far (static config values plus captured ids). */
export type Vars = Map<string, string>;

const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

/** The placeholder names a text uses, in order of first use. */
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string))];
}

/**
 * Replace known placeholders. `keep` leaves unknown ones in place (dry run:
 * they are captured at run time); `strict` refuses them (a real run must not
 * send a literal `${QUEUE_OCID}` to OCI).
 */
export function fill(text: string, vars: Vars, mode: "keep" | "strict"): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    const v = vars.get(name);
    if (v !== undefined) return v;
    if (mode === "keep") return whole;
    throw new InvalidArgumentError(
      `no value for \${${name}}: run the step that captures it first, or pass --set ${name}=VALUE`,
    );
  });
}

/** Fill every string inside a JSON value (keys stay as they are). */
function fillDeep(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === "string") return f(value);
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, f));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillDeep(v, f)]));
  return value;
}

// ---------------------------------------------------------------------------
// Plan

/** Run one command; `capture` stores its trimmed stdout; `ifEmpty` runs it only while that variable is empty. */
export interface RunAction {
  kind: "run";
  note: string;
  argv: string[];
  capture?: string;
  ifEmpty?: string;
  /** An empty capture is a failure (the resource was just created, so it must be found). */
  mustFind?: boolean;
  /** The capture must equal this (a work request's final status). */
  expect?: string;
}

/** Write one rendered file (function config, policy statements, rule, manifest). */
export interface WriteAction {
  kind: "write";
  note: string;
  /** Path relative to the repository root (or absolute). */
  file: string;
  render(f: (s: string) => string): string;
}

/** One action of a step. */
export type Action = RunAction | WriteAction;

/** A named group of actions; `--from <id>` resumes at it. */
export interface Step {
  id: string;
  title: string;
  actions: Action[];
}

/** What the plan knows about the repository (manifests, func.yaml, IAM and rule files). */
interface RepoFacts {
  fnName: string;
  fnVersion: string;
  k8sNamespace: string;
  k8sServiceAccount: string;
  k8sDeployment: string;
  deploymentTemplate: string;
}

function readRepoFacts(): RepoFacts {
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

/** Everything the plan and its renderers need: config, repo facts, static placeholder values. */
export interface PlanContext {
  config: DeployConfig;
  repo: RepoFacts;
  /** Output directory for rendered files, relative to the root when inside it. */
  out: string;
  /** Static placeholder values (from the config). */
  vars: Vars;
  /** Placeholders of features the config leaves out: whatever names them is skipped. */
  unavailable: Set<string>;
  /** Placeholders some command captures at run time. */
  captured: Set<string>;
}

/** Shared app config keys (every function) and the worker's environment, in the contract's terms. */
function backendEnv(
  auth: "resource_principal" | "workload_identity",
  c: DeployConfig,
): [string, string][] {
  return [
    ["BATCH_INFER_BACKEND", "oci"],
    ["OCI_AUTH", auth],
    ["OCI_REGION", c.region],
    ["OCI_NAMESPACE", ph("OS_NAMESPACE")],
    ["OCI_COMPARTMENT_ID", c.compartmentOcid],
    ["BATCH_INFER_QUEUE_ID", ph("QUEUE_OCID")],
    ["BATCH_INFER_QUEUE_ENDPOINT", ph("QUEUE_ENDPOINT")],
    ["BATCH_INFER_PARKING_QUEUE_ID", ph("PARKING_QUEUE_OCID")],
    ["BATCH_INFER_PARKING_QUEUE_ENDPOINT", ph("PARKING_QUEUE_ENDPOINT")],
    ["BATCH_INFER_JOBS_TABLE", c.nosql.jobsTable],
    ["BATCH_INFER_PARTITIONS_TABLE", c.nosql.partitionsTable],
    ["BATCH_INFER_STREAM_ID", ph("STREAM_OCID")],
    ["BATCH_INFER_STREAM_ENDPOINT", ph("STREAM_ENDPOINT")],
  ];
}

/** The Fn application's config: what all functions share. */
export function appConfig(c: DeployConfig): Record<string, string> {
  return Object.fromEntries([
    ...backendEnv("resource_principal", c),
    ["BATCH_INFER_STATE_BUCKET", c.buckets.state],
    // Functions can write only under /tmp.
    ["BATCH_INFER_MODEL_CACHE", "/tmp/batch-infer-models"],
    ["LOG_LEVEL", c.functions.logLevel],
  ]);
}

/** One function's own config (merged over the app's by Fn). */
export function functionConfig(name: FunctionName, ctx: PlanContext): Record<string, string> {
  const c = ctx.config;
  const defaults = (d: Record<string, unknown>) => JSON.stringify(d);
  switch (name) {
    case "splitter":
      return {
        BATCH_INFER_FUNCTION: "splitter",
        BATCH_INFER_JOB_DEFAULTS: defaults(c.functions.jobDefaults),
        // Refuse events from any other bucket, whatever a rule is later edited to send.
        BATCH_INFER_INPUT_BUCKETS: c.buckets.input,
      };
    case "embed-splitter":
      return {
        BATCH_INFER_FUNCTION: "splitter",
        BATCH_INFER_JOB_DEFAULTS: defaults(c.embeddingRefresh?.jobDefaults ?? {}),
        BATCH_INFER_INPUT_BUCKETS: c.embeddingRefresh?.bucket ?? "",
      };
    case "merger":
      return { BATCH_INFER_FUNCTION: "merger" };
    case "scaler":
      return {
        BATCH_INFER_FUNCTION: "scaler",
        BATCH_INFER_OKE_CLUSTER_ID: c.oke.clusterOcid,
        BATCH_INFER_K8S_NAMESPACE: ctx.repo.k8sNamespace,
        BATCH_INFER_K8S_DEPLOYMENT: ctx.repo.k8sDeployment,
        // Unset: the scaler asks OKE for the cluster's endpoint and CA itself.
        ...(c.oke.apiServer ? { BATCH_INFER_K8S_API: c.oke.apiServer } : {}),
        ...(c.oke.caFile ? { BATCH_INFER_K8S_CA_FILE: c.oke.caFile } : {}),
        ...(c.scaler.scaling ? { BATCH_INFER_SCALING: JSON.stringify(c.scaler.scaling) } : {}),
      };
  }
}

/** The worker container's environment on OKE. */
export function workerEnv(c: DeployConfig): [string, string][] {
  return [
    ...backendEnv("workload_identity", c),
    // /tmp is the pod's writable emptyDir (the root filesystem is read-only).
    ["BATCH_INFER_MODEL_CACHE", "/tmp/batch-infer-models"],
  ];
}

/**
 * The worker Deployment with the image and environment filled in. The
 * manifest in worker-image/k8s stays the source: only its `image:` line and
 * its `env:` list change (entries named here replace same-named ones).
 */
export function renderWorkerDeployment(
  template: string,
  image: string,
  env: [string, string][],
  imagePullSecret?: string,
): string {
  const lines = template.split("\n");
  const imageAt = lines.flatMap((l, i) => (/^\s+image:\s*\S+\s*$/.test(l) ? [i] : []));
  if (imageAt.length !== 1)
    throw new InvalidArgumentError("worker-deployment.yaml: expected one image: line");
  const ii = imageAt[0] as number;
  lines[ii] = (lines[ii] as string).replace(/image:\s*\S+/, `image: ${image}`);

  const envAt = lines.findIndex((l) => /^\s+env:\s*$/.test(l));
  if (envAt < 0) throw new InvalidArgumentError("worker-deployment.yaml: expected an env: list");
  const itemIndent =
    /^(\s*)- /.exec(lines[envAt + 1] ?? "")?.[1] ??
    `${/^(\s*)/.exec(lines[envAt] as string)?.[1]}  `;
  let end = envAt + 1;
  while (end < lines.length && (lines[end] as string).startsWith(`${itemIndent}- `)) end++;
  const ours = new Set(env.map(([k]) => k));
  const kept = lines
    .slice(envAt + 1, end)
    .filter((l) => !ours.has(/name:\s*([A-Z0-9_]+)/.exec(l)?.[1] ?? ""));
  const added = env.map(([k, v]) => `${itemIndent}- { name: ${k}, value: ${JSON.stringify(v)} }`);
  lines.splice(envAt + 1, end - envAt - 1, ...kept, ...added);

  if (imagePullSecret) {
    const sa = lines.findIndex((l) => /^\s+serviceAccountName:/.test(l));
    const indent = /^(\s*)/.exec(lines[sa] ?? "")?.[1] ?? "      ";
    lines.splice(sa + 1, 0, `${indent}imagePullSecrets: [{ name: ${imagePullSecret} }]`);
  }
  return lines.join("\n");
}

/** Role + RoleBinding: the scaler may get and patch the worker Deployment's scale, nothing else. */
export function renderScalerRbac(namespace: string, deployment: string): string {
  const name = `${deployment}-scaler`;
  return `# The scaler function's Kubernetes identity may read and set the worker Deployment's
# replicas through the scale subresource, and nothing else. OKE maps an OKE token to
# a Kubernetes user named by the caller's OCID; which OCID a function's resource
# principal presents is UNCONFIRMED, so both the function and its dynamic group are bound.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: ${name}
  namespace: ${namespace}
rules:
  - apiGroups: ["apps"]
    resources: ["deployments/scale"]
    resourceNames: ["${deployment}"]
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: ${name}
  namespace: ${namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: ${name}
subjects:
  - kind: User
    apiGroup: rbac.authorization.k8s.io
    name: "\${SCALER_FUNCTION_OCID}"
  - kind: Group
    apiGroup: rbac.authorization.k8s.io
    name: "\${SCALER_DG_OCID}"
`;
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

/** Set up the context for a config: static placeholder values and the features left out. */
export function planContext(config: DeployConfig, out: string): PlanContext {
  const repo = readRepoFacts();
  const c = config;
  const vars: Vars = new Map(
    Object.entries({
      PREFIX: c.prefix,
      REGION: c.region,
      TENANCY_OCID: c.tenancyOcid,
      COMPARTMENT_OCID: c.compartmentOcid,
      POLICY_COMPARTMENT_OCID: c.policyCompartmentOcid,
      DG_PREFIX: c.identityDomain ? `${c.identityDomain}/` : "",
      INPUT_BUCKET: c.buckets.input,
      OUTPUT_BUCKET: c.buckets.output,
      MODELS_BUCKET: c.buckets.models,
      STATE_BUCKET: c.buckets.state,
      JOBS_TABLE: c.nosql.jobsTable,
      PARTITIONS_TABLE: c.nosql.partitionsTable,
      OKE_CLUSTER_OCID: c.oke.clusterOcid,
      OKE_COMPARTMENT_OCID: c.oke.compartmentOcid,
      K8S_NAMESPACE: repo.k8sNamespace,
      K8S_SERVICE_ACCOUNT: repo.k8sServiceAccount,
      K8S_DEPLOYMENT: repo.k8sDeployment,
      ...(c.namespace ? { OS_NAMESPACE: c.namespace } : {}),
      ...(c.embeddingRefresh
        ? { CORPUS_BUCKET: c.embeddingRefresh.bucket, CORPUS_PREFIX: c.embeddingRefresh.prefix }
        : {}),
      ...(c.dataScience ? { DATA_SCIENCE_COMPARTMENT_OCID: c.dataScience.compartmentOcid } : {}),
    }),
  );
  const unavailable = new Set<string>();
  if (!c.embeddingRefresh)
    for (const v of [
      "CORPUS_BUCKET",
      "CORPUS_PREFIX",
      "EMBED_SPLITTER_FUNCTION_OCID",
      "EMBED_SPLITTER_DG_OCID",
    ])
      unavailable.add(v);
  if (!c.dataScience) unavailable.add("DATA_SCIENCE_COMPARTMENT_OCID");
  if (!c.scaler.scheduleCron) unavailable.add("SCALER_SCHEDULE_OCID");
  if (!c.scaler.alarm) unavailable.add("SCALER_TOPIC_OCID");
  return { config, repo, out, vars, unavailable, captured: new Set() };
}

function usesUnavailable(text: string, ctx: PlanContext): boolean {
  return placeholders(text).some((p) => ctx.unavailable.has(p));
}

/** A placeholder for a value captured at run time (or a config value): `ph("QUEUE_OCID")`. */
export function ph(name: string): string {
  return `\${${name}}`;
}

/**
 * argv from a template: literal text splits on whitespace; each interpolated
 * value is one argument however many spaces it holds (joined to literal text
 * it touches), and an interpolated array adds its items as separate arguments.
 *
 * @example sh`oci os ns get --query ${"data"}` // ["oci", "os", "ns", "get", "--query", "data"]
 */
export function sh(
  strings: TemplateStringsArray,
  ...values: Array<string | number | readonly string[]>
): string[] {
  const argv: string[] = [];
  let open = false; // whether the last argument may still grow (no whitespace since)
  const add = (text: string) => {
    if (open) argv[argv.length - 1] += text;
    else argv.push(text);
    open = true;
  };
  strings.forEach((literal, i) => {
    for (const token of literal.split(/(\s+)/)) {
      if (token === "") continue;
      if (/^\s+$/.test(token)) open = false;
      else add(token);
    }
    if (i >= values.length) return;
    const v = values[i];
    if (Array.isArray(v)) {
      argv.push(...(v as string[]));
      open = false;
    } else add(String(v));
  });
  return argv;
}

/**
 * Every step of the deployment, in order. Pure: reads repository files but
 * runs nothing, so the dry run and the real run print the same plan.
 */
export function buildPlan(ctx: PlanContext): Step[] {
  const c = ctx.config;
  const C = c.compartmentOcid;
  const out = (...p: string[]) => path.join(ctx.out, ...p);
  const file = (p: string) => `file://${p}`;
  const region = ["--region", c.region, ...(c.profile ? ["--profile", c.profile] : [])];
  const oci = (argv: string[]) => ["oci", ...region, ...argv];
  const wait = (...states: string[]) => states.flatMap((s) => ["--wait-for-state", s]);
  const id = (q = "data.id") => ["--query", q, "--raw-output"];
  const capture = (
    note: string,
    name: string,
    argv: string[],
    ifEmpty?: string,
    mustFind = false,
  ): RunAction => {
    ctx.captured.add(name);
    return {
      kind: "run",
      note,
      argv,
      capture: name,
      ...(ifEmpty ? { ifEmpty } : {}),
      ...(mustFind ? { mustFind } : {}),
    };
  };
  const run = (note: string, argv: string[], ifEmpty?: string): RunAction => ({
    kind: "run",
    note,
    argv,
    ...(ifEmpty ? { ifEmpty } : {}),
  });
  const jsonFile = (note: string, path: string, value: unknown): WriteAction => ({
    kind: "write",
    note,
    file: path,
    render: (f) => `${JSON.stringify(fillDeep(value, f), null, 2)}\n`,
  });
  /** Look a resource up by name; create it only when the lookup found nothing. */
  /**
   * A create that answers with a work request: wait for it (FAILED too, so a
   * failure is not a 20-minute wait) and require SUCCEEDED.
   */
  const workRequest = (note: string, v: string, argv: string[], ifEmpty?: string): RunAction => ({
    ...capture(
      note,
      `${v}_CREATE`,
      oci([...argv, ...wait("SUCCEEDED", "FAILED"), ...id("data.status")]),
      ifEmpty,
    ),
    expect: "SUCCEEDED",
  });
  /** Look a resource up by name; create it only when the lookup found nothing. */
  const ensure = (o: {
    what: string;
    v: string;
    lookup: string[];
    create: string[];
    /** The create answers with a work request, not the resource: wait for it, then look up again. */
    workRequest?: boolean;
    idQuery?: string;
    /** Why it is created the way it is (goes in the create command's comment). */
    why?: string;
  }): RunAction[] => {
    const createNote = `Create ${o.what}${o.why ? `: ${o.why}` : ""}`;
    return o.workRequest
      ? [
          capture(`Does ${o.what} exist?`, o.v, oci(o.lookup)),
          workRequest(createNote, o.v, o.create, o.v),
          capture(`OCID of the new ${o.what}`, o.v, oci(o.lookup), o.v, true),
        ]
      : [
          capture(`Does ${o.what} exist?`, o.v, oci(o.lookup)),
          capture(createNote, o.v, oci([...o.create, ...id(o.idQuery)]), o.v, true),
        ];
  };
  const steps: Step[] = [];

  steps.push({
    id: "namespace",
    title: "Object Storage namespace (bucket URIs, OCIR image paths)",
    actions: c.namespace
      ? []
      : [
          capture(
            "The tenancy's Object Storage namespace",
            "OS_NAMESPACE",
            oci(sh`os ns get --query data --raw-output`),
          ),
        ],
  });

  const buckets: [string, string, boolean][] = [
    ["INPUT", c.buckets.input, true],
    ["OUTPUT", c.buckets.output, false],
    ["MODELS", c.buckets.models, false],
    ["STATE", c.buckets.state, false],
  ];
  if (c.embeddingRefresh) buckets.push(["CORPUS", c.embeddingRefresh.bucket, true]);
  const NS = ph("OS_NAMESPACE");
  steps.push({
    id: "buckets",
    title: "Buckets: input (and corpus) with object events on; output, models, scaler state",
    actions: buckets.flatMap(([key, name, events]): Action[] => [
      capture(
        `Does bucket ${name} exist?`,
        `${key}_BUCKET_FOUND`,
        oci(sh`os bucket list --compartment-id ${C} --namespace-name ${NS} --all
               --query ${`data[?name=='${name}'].name | [0]`} --raw-output`),
      ),
      run(
        `Create bucket ${name} (private)`,
        oci(sh`os bucket create --compartment-id ${C} --namespace-name ${NS} --name ${name}
               --public-access-type NoPublicAccess`),
        `${key}_BUCKET_FOUND`,
      ),
      ...(events
        ? [
            run(
              `Turn on object events for ${name} (objectEventsEnabled defaults to false: no event, no rule)`,
              oci(sh`os bucket update --namespace-name ${NS} --bucket-name ${name}
                     --object-events-enabled true`),
            ),
          ]
        : []),
    ]),
  });

  const queue = (v: string, name: string, dlq: number, why: string) =>
    ensure({
      what: `queue ${name}`,
      why,
      v,
      workRequest: true,
      lookup: sh`queue queue-admin queue list --compartment-id ${C} --display-name ${name}
                 --lifecycle-state ACTIVE ${id("data.items[0].id")}`,
      create: sh`queue queue-admin queue create --compartment-id ${C} --display-name ${name}
                 --visibility-in-seconds ${c.queue.visibilitySeconds}
                 --retention-in-seconds ${c.queue.retentionSeconds}
                 --timeout-in-seconds ${c.queue.pollTimeoutSeconds}
                 --dlq-delivery-count ${dlq}`,
    });
  steps.push({
    id: "queues",
    title: "OCI Queue: partitions (with a DLQ) and the parking queue",
    actions: [
      ...queue(
        "QUEUE_OCID",
        `${c.prefix}-partitions`,
        c.queue.deadLetterDeliveryCount,
        `partitions; OCI moves a message to the DLQ after ${c.queue.deadLetterDeliveryCount} deliveries ` +
          "(a safety net above the pipeline's own maxAttempts, set high because hand-backs count as deliveries)",
      ),
      capture(
        "The partition queue's messages endpoint (QueueClient must use it)",
        "QUEUE_ENDPOINT",
        oci(sh`queue queue-admin queue get --queue-id ${ph("QUEUE_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
      ...queue(
        "PARKING_QUEUE_OCID",
        `${c.prefix}-parking`,
        0,
        "messages workers dead-letter on purpose, kept for inspection (no DLQ of its own)",
      ),
      capture(
        "The parking queue's messages endpoint (queues live in cells; it may differ)",
        "PARKING_QUEUE_ENDPOINT",
        oci(sh`queue queue-admin queue get --queue-id ${ph("PARKING_QUEUE_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
    ],
  });

  const ddlPath = path.resolve(ROOT, c.nosql.ddlFile);
  if (!existsSync(ddlPath))
    throw new InvalidArgumentError(`NoSQL DDL file ${c.nosql.ddlFile} does not exist`);
  const ddl = parseDdl(readFileSync(ddlPath, "utf8"));
  for (const t of [c.nosql.jobsTable, c.nosql.partitionsTable]) {
    if (!ddl.some((s) => s.kind === "table" && s.table === t))
      throw new InvalidArgumentError(`${c.nosql.ddlFile} has no CREATE TABLE for ${t}`);
  }
  steps.push({
    id: "nosql",
    title: `NoSQL tables from ${c.nosql.ddlFile}`,
    actions: ddl.flatMap((s): Action[] => {
      if (s.kind === "index") {
        const keys = JSON.stringify((s.columns ?? []).map((columnName) => ({ columnName })));
        return [
          workRequest(
            `Create index ${s.name} on ${s.table} if missing`,
            `INDEX_${s.table.toUpperCase()}_${(s.name ?? "").toUpperCase()}`,
            sh`nosql index create --compartment-id ${C} --table-name-or-id ${s.table}
               --name ${s.name ?? ""} --keys ${keys} --is-if-not-exists true`,
          ),
        ];
      }
      const limits = c.nosql.tableLimits[s.table] ??
        s.limits ?? { maxReadUnits: 50, maxWriteUnits: 50, maxStorageInGBs: 1 };
      const v = `TABLE_${s.table.toUpperCase()}_OCID`;
      return [
        capture(
          `Does table ${s.table} exist?`,
          v,
          oci(
            sh`nosql table list --compartment-id ${C} --name ${s.table} ${id("data.items[0].id")}`,
          ),
        ),
        workRequest(
          `Create table ${s.table} (limits ${JSON.stringify(limits)})`,
          v,
          sh`nosql table create --compartment-id ${C} --name ${s.table}
             --ddl-statement ${s.statement} --table-limits ${JSON.stringify(limits)}`,
          v,
        ),
      ];
    }),
  });

  const pool = `${c.prefix}-pool`;
  const stream = `${c.prefix}-completions`;
  steps.push({
    id: "streaming",
    title: "Streaming: a stream pool and the completion-event stream (message key = job id)",
    actions: [
      ...ensure({
        what: `stream pool ${pool}`,
        v: "STREAM_POOL_OCID",
        workRequest: true,
        lookup: sh`streaming admin stream-pool list --compartment-id ${C} --name ${pool}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`streaming admin stream-pool create --compartment-id ${C} --name ${pool}`,
      }),
      ...ensure({
        what: `stream ${stream}`,
        why: `${c.stream.partitions} partition(s), ${c.stream.retentionHours} h retention`,
        v: "STREAM_OCID",
        workRequest: true,
        lookup: sh`streaming admin stream list --compartment-id ${C} --name ${stream}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`streaming admin stream create --name ${stream}
                   --stream-pool-id ${ph("STREAM_POOL_OCID")} --partitions ${c.stream.partitions}
                   --retention-in-hours ${c.stream.retentionHours}`,
      }),
      capture(
        "The stream's messages endpoint (StreamClient must use it)",
        "STREAM_ENDPOINT",
        oci(sh`streaming admin stream get --stream-id ${ph("STREAM_OCID")}
               ${id('data."messages-endpoint"')}`),
      ),
    ],
  });

  const registry = `${c.ocirRegionKey}.ocir.io/${NS}/${c.prefix}`;
  const fnImage = `${registry}/functions:${c.imageTag}`;
  const workerImage = `${registry}/worker:${c.imageTag}`;
  steps.push({
    id: "images",
    title:
      "Images: one function image for all functions, and the GPU worker image (docker login to OCIR first)",
    actions: [
      run("Bundle dist/functions.cjs and dist/worker.js with esbuild", sh`npm run build`),
      run(
        "Build the function image from func.yaml (runtime node, entrypoint dist/functions.cjs)",
        sh`fn --registry ${registry} build`,
      ),
      run(
        "Tag it as the image every function runs",
        sh`docker tag ${`${registry}/${ctx.repo.fnName}:${ctx.repo.fnVersion}`} ${fnImage}`,
      ),
      run("Push the function image to OCIR", sh`docker push ${fnImage}`),
      run(
        "Build the GPU worker image (CUDA 12 onnxruntime provider)",
        sh`docker build -f worker-image/Dockerfile -t ${workerImage} .`,
      ),
      run("Push the worker image to OCIR", sh`docker push ${workerImage}`),
    ],
  });

  const app = c.prefix;
  const fnNames: FunctionName[] = ["splitter", "merger", "scaler"];
  if (c.embeddingRefresh) fnNames.push("embed-splitter");
  const fnVar = (n: FunctionName) => `${n.toUpperCase().replace(/-/g, "_")}_FUNCTION_OCID`;
  const appConfigFile = out("fn", "app.config.json");
  steps.push({
    id: "functions",
    title: "Fn application and functions: one image, BATCH_INFER_FUNCTION picks the handler",
    actions: [
      jsonFile(
        "Application config every function shares (backend ids, endpoints)",
        appConfigFile,
        appConfig(c),
      ),
      ...ensure({
        what: `application ${app}`,
        v: "FN_APP_OCID",
        lookup: sh`fn application list --compartment-id ${C} --display-name ${app}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`fn application create --compartment-id ${C} --display-name ${app}
                   --subnet-ids ${JSON.stringify(c.functions.subnetIds)}
                   ${c.functions.shape ? ["--shape", c.functions.shape] : []}
                   ${wait("ACTIVE", "FAILED")}`,
      }),
      run(
        "Set the application's config",
        oci(sh`fn application update --application-id ${ph("FN_APP_OCID")}
               --config ${file(appConfigFile)} --force ${wait("ACTIVE", "FAILED")}`),
      ),
      ...fnNames.flatMap((n): Action[] => {
        const name = `${c.prefix}-${n}`;
        const cfgFile = out("fn", `${n}.config.json`);
        const cfg = functionConfig(n, ctx);
        const sizing = sh`--memory-in-mbs ${c.functions.memoryMb[n]}
                          --timeout-in-seconds ${c.functions.timeoutSeconds[n]}`;
        return [
          jsonFile(`Config of ${name} (merged over the application's)`, cfgFile, cfg),
          ...ensure({
            what: `function ${name}`,
            v: fnVar(n),
            lookup: sh`fn function list --application-id ${ph("FN_APP_OCID")} --display-name ${name}
                       --lifecycle-state ACTIVE ${id("data[0].id")}`,
            create: sh`fn function create --application-id ${ph("FN_APP_OCID")} --display-name ${name}
                       --image ${fnImage} ${sizing} ${wait("ACTIVE", "FAILED")}`,
          }),
          run(
            `Point ${name} at this image, with its config (BATCH_INFER_FUNCTION=${cfg.BATCH_INFER_FUNCTION})`,
            oci(sh`fn function update --function-id ${ph(fnVar(n))} --image ${fnImage} ${sizing}
                   --config ${file(cfgFile)} --force ${wait("ACTIVE", "FAILED")}`),
          ),
        ];
      }),
    ],
  });

  const iam = loadIam();
  const groups = iam.dynamicGroups.filter((g) => !usesUnavailable(g.matchingRule, ctx));
  // A statement for a dynamic group that is not created (its function is left out) goes too.
  const skippedGroups = iam.dynamicGroups
    .filter((g) => !groups.includes(g))
    .map((g) => `${g.name} `);
  const policy = (p: IamFile["policies"][number]): Action[] => {
    const statements = p.statements.filter(
      (s) => !usesUnavailable(s, ctx) && !skippedGroups.some((g) => s.includes(g)),
    );
    if (statements.length === 0) return [];
    const name = fill(p.name, ctx.vars, "strict");
    const v = `POLICY_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_OCID`;
    const statementsFile = out("iam", `${name}.statements.json`);
    const P = c.policyCompartmentOcid;
    return [
      jsonFile(`Statements of policy ${name} (${p.component})`, statementsFile, statements),
      ...ensure({
        what: `policy ${name}`,
        v,
        lookup: sh`iam policy list --compartment-id ${P} --name ${name} ${id("data[0].id")}`,
        create: sh`iam policy create --compartment-id ${P} --name ${name} --description ${p.description}
                   --statements ${file(statementsFile)} ${wait("ACTIVE")}`,
      }),
      run(
        `Bring policy ${name}'s statements up to date`,
        oci(
          sh`iam policy update --policy-id ${ph(v)} --statements ${file(statementsFile)} --force`,
        ),
      ),
    ];
  };
  steps.push({
    id: "iam",
    title:
      "IAM: a dynamic group per function, least-privilege policies per component, workload identity for workers",
    actions: [
      ...groups.flatMap((g): Action[] => {
        const name = fill(g.name, ctx.vars, "strict");
        return [
          ...ensure({
            what: `dynamic group ${name}`,
            why: g.description,
            v: g.captureAs,
            lookup: sh`iam dynamic-group list --compartment-id ${c.tenancyOcid} --name ${name}
                         ${id("data[0].id")}`,
            create: sh`iam dynamic-group create --compartment-id ${c.tenancyOcid} --name ${name}
                         --description ${g.description} --matching-rule ${g.matchingRule}
                         ${wait("ACTIVE")}`,
          }),
          run(
            `Bring ${name}'s matching rule up to date`,
            oci(sh`iam dynamic-group update --dynamic-group-id ${ph(g.captureAs)}
                     --matching-rule ${g.matchingRule} --force`),
          ),
        ];
      }),
      ...iam.policies.filter((p) => p.step === "iam").flatMap(policy),
    ],
  });

  steps.push({
    id: "events",
    title: "Events rules: uploads fire the splitter",
    actions: loadRules()
      .filter(([, rule]) => !usesUnavailable(JSON.stringify(rule), ctx))
      .flatMap(([name, rule]): Action[] => {
        const display = fill(rule.displayName, ctx.vars, "strict");
        const v = `RULE_${display.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_OCID`;
        const ruleFile = out("events", name);
        const actionsFile = out("events", name.replace(/\.json$/, ".actions.json"));
        return [
          jsonFile(
            `Rule ${display}, as oci events rule create --from-json takes it`,
            ruleFile,
            rule,
          ),
          jsonFile(`Actions of rule ${display}`, actionsFile, rule.actions),
          ...ensure({
            what: `rule ${display}`,
            why: rule.description,
            v,
            lookup: sh`events rule list --compartment-id ${C} --display-name ${display}
                       --lifecycle-state ACTIVE ${id("data[0].id")}`,
            create: sh`events rule create --from-json ${file(ruleFile)} ${wait("ACTIVE", "FAILED")}`,
          }),
          run(
            `Bring rule ${display}'s condition and action up to date`,
            oci(sh`events rule update --rule-id ${ph(v)} --condition ${rule.condition}
                   --actions ${file(actionsFile)} --is-enabled ${String(rule.isEnabled)} --force
                   ${wait("ACTIVE", "FAILED")}`),
          ),
        ];
      }),
  });

  const topic = `${c.prefix}-scaler`;
  const alarm = `${c.prefix}-queue-has-work`;
  const schedule = `${c.prefix}-scaler-backstop`;
  const SCALER = ph("SCALER_FUNCTION_OCID");
  const alarmActions: Action[] = !c.scaler.alarm
    ? []
    : [
        ...ensure({
          what: `notification topic ${topic}`,
          why: "queue-depth alarm notifications go here, and on to the scaler",
          v: "SCALER_TOPIC_OCID",
          // A topic's id is "topic-id" in the CLI's output, not "id".
          idQuery: 'data."topic-id"',
          lookup: sh`ons topic list --compartment-id ${C} --name ${topic} ${id('data[0]."topic-id"')}`,
          create: sh`ons topic create --compartment-id ${C} --name ${topic}
                     --description ${"Queue-depth alarm notifications that invoke the batch-infer scaler"}`,
        }),
        ...ensure({
          what: "subscription of the scaler function to the topic",
          why: "protocol ORACLE_FUNCTIONS: each notification invokes the scaler",
          v: "SCALER_SUBSCRIPTION_OCID",
          lookup: sh`ons subscription list --compartment-id ${C} --topic-id ${ph("SCALER_TOPIC_OCID")} --all
                     --query ${`data[?endpoint=='${SCALER}'].id | [0]`} --raw-output`,
          create: sh`ons subscription create --compartment-id ${C} --topic-id ${ph("SCALER_TOPIC_OCID")}
                     --protocol ORACLE_FUNCTIONS --subscription-endpoint ${SCALER}`,
        }),
        ...ensure({
          what: `alarm ${alarm}`,
          why:
            `while the partition queue holds messages, notify the scaler every ${c.scaler.repeatNotification}, ` +
            "and once more when it empties",
          v: "SCALER_ALARM_OCID",
          lookup: sh`monitoring alarm list --compartment-id ${C} --display-name ${alarm} ${id("data[0].id")}`,
          create: sh`monitoring alarm create --compartment-id ${C} --display-name ${alarm}
                     --metric-compartment-id ${C} --namespace oci_queue
                     --query-text ${`MessagesInQueueCount[1m]{resourceId = "${ph("QUEUE_OCID")}"}.max() > 0`}
                     --severity INFO --destinations ${`["${ph("SCALER_TOPIC_OCID")}"]`} --is-enabled true
                     --pending-duration PT1M --repeat-notification-duration ${c.scaler.repeatNotification}
                     --message-format RAW --body ${"batch-infer partition queue has work: run the scaler"}`,
        }),
      ];
  const scheduleActions: Action[] = !c.scaler.scheduleCron
    ? []
    : [
        ...ensure({
          what: `resource schedule ${schedule}`,
          why: `invoke the scaler on "${c.scaler.scheduleCron}", a backstop that scales to zero after the cooldown even when no alarm notification comes`,
          v: "SCALER_SCHEDULE_OCID",
          workRequest: true,
          lookup: sh`resource-scheduler schedule list --compartment-id ${C} --display-name ${schedule}
                     ${id("data.items[0].id")}`,
          create: sh`resource-scheduler schedule create --compartment-id ${C} --display-name ${schedule}
                     --action START_RESOURCE --recurrence-type CRON
                     --recurrence-details ${c.scaler.scheduleCron}
                     --resources ${`[{"id":"${SCALER}","parameters":[{"parameterType":"BODY","value":{"source":"resource-scheduler"}}]}]`}`,
        }),
        ...iam.policies.filter((p) => p.step === "scaler-triggers").flatMap(policy),
      ];
  steps.push({
    id: "scaler-triggers",
    title: "Scaler triggers: queue alarm → Notifications → scaler; Resource Scheduler backstop",
    actions: [...alarmActions, ...scheduleActions],
  });

  const kubeconfig = out("kubeconfig");
  const kubectl = (argv: string[]) => ["kubectl", "--kubeconfig", kubeconfig, ...argv];
  const deploymentFile = out("k8s", "worker-deployment.yaml");
  const rbacFile = out("k8s", "scaler-rbac.yaml");
  steps.push({
    id: "kubernetes",
    title:
      "OKE: namespace and service account, scaler RBAC, worker Deployment (0 replicas; the scaler sizes it)",
    actions: [
      run(
        "Write a kubeconfig for the cluster (OKE token auth)",
        oci(sh`ce cluster create-kubeconfig --cluster-id ${c.oke.clusterOcid} --file ${kubeconfig}
               --token-version 2.0.0 --kube-endpoint ${c.oke.kubeEndpoint} --overwrite`),
      ),
      {
        kind: "write",
        note: "Worker Deployment with its image and the OCI environment",
        file: deploymentFile,
        render: (f) =>
          renderWorkerDeployment(
            ctx.repo.deploymentTemplate,
            f(workerImage),
            workerEnv(c).map(([k, v]) => [k, f(v)]),
            c.oke.imagePullSecret,
          ),
      },
      {
        kind: "write",
        note: "Role and RoleBinding for the scaler",
        file: rbacFile,
        render: (f) => f(renderScalerRbac(ctx.repo.k8sNamespace, ctx.repo.k8sDeployment)),
      },
      run(
        "Namespace and the workers' service account (workload identity binds to it)",
        kubectl(sh`apply -f ${`${K8S_DIR}/namespace.yaml`}`),
      ),
      run("Let the scaler get and patch the Deployment's scale", kubectl(sh`apply -f ${rbacFile}`)),
      run("The worker Deployment", kubectl(sh`apply -f ${deploymentFile}`)),
    ],
  });

  checkPlaceholders(steps, ctx);
  return steps;
}

/**
 * Every placeholder in the plan is a config value or captured by a command
 * that runs before it: catches typos and steps in the wrong order.
 */
function checkPlaceholders(steps: Step[], ctx: PlanContext): void {
  const seen = new Set(ctx.vars.keys());
  for (const step of steps) {
    for (const a of step.actions) {
      const texts = a.kind === "run" ? a.argv : [a.render((s) => s)];
      for (const p of texts.flatMap(placeholders)) {
        if (!seen.has(p))
          throw new InvalidArgumentError(
            `step ${step.id}: \${${p}} is neither a config value nor captured by an earlier command`,
          );
      }
      if (a.kind === "run" && a.capture) seen.add(a.capture);
    }
  }
}

// ---------------------------------------------------------------------------
// Printing and running

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
  const body = a.capture ? `${a.capture}=$(${cmd})` : cmd;
  return a.ifEmpty ? `[ -n "\${${a.ifEmpty}:-}" ] || ${body}` : body;
}

function display(file: string): string {
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

interface RunOptions {
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
        const res = spawnSync(argv[0] as string, argv.slice(1), {
          cwd: ROOT,
          stdio: ["inherit", a.capture ? "pipe" : "inherit", "inherit"],
          encoding: "utf8",
        });
        if (res.error) failure = `${argv[0]} could not be started: ${res.error.message}`;
        else if (res.status !== 0) failure = `exit status ${res.status ?? `signal ${res.signal}`}`;
        else if (a.capture) {
          const raw = (res.stdout ?? "").trim();
          // --raw-output prints nothing (or "null") when a lookup finds no resource.
          const value = raw === "null" ? "" : raw;
          if (!value && a.mustFind) failure = `${a.capture} came back empty`;
          else if (a.expect && value !== a.expect)
            failure = `${a.capture} is "${value}", expected "${a.expect}"`;
          else {
            vars.set(a.capture, value);
            saveState(ctx, vars);
          }
        }
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
  return runPlan({ steps, ctx, from: args.from, resumeArgs, log: (l) => console.log(l) });
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
  if (c.embeddingRefresh)
    check(
      "embeddingRefresh.jobDefaults",
      c.embeddingRefresh.jobDefaults,
      c.embeddingRefresh.bucket,
    );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
