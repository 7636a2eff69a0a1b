/** The deploy config (scripts/oci/deploy.example.json): its shape, defaults and checks. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError } from "../../../src/core/errors.ts";
import { ROOT } from "./paths.ts";

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
