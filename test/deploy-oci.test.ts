/**
 * The OCI deployment, checked without a tenancy: the dry run prints every step
 * and runs nothing; a real run against stub `oci`/`fn`/`docker`/`kubectl`
 * binaries stops at the first failure and resumes; the Events rules match real
 * upload payloads (with OCI's filter semantics) and nothing else; the IAM
 * policies stay least-privilege; every environment variable of the contract
 * reaches the functions or the workers.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { fill, ph, placeholders, sh } from "../scripts/oci/plan/placeholders.ts";
import { shellQuote } from "../scripts/oci/plan/print.ts";
import { renderWorkerDeployment } from "../scripts/oci/plan/render.ts";
import {
  type IamFile,
  loadIam,
  loadRules,
  parseDdl,
  type RuleFile,
} from "../scripts/oci/plan/repo-files.ts";
import { objectCreatedEvent, parseObjectEvent } from "../src/pipeline/events.ts";
import { WORKER_ENV } from "../src/runner/worker-config.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = path.join(ROOT, "scripts", "deploy-oci.ts");
const EXAMPLE = path.join(ROOT, "scripts", "oci", "deploy.example.json");

/** The environment contract: every key must reach a function's config or the worker Deployment. */
const CONTRACT = [
  "BATCH_INFER_BACKEND",
  "OCI_AUTH",
  "OCI_REGION",
  "OCI_NAMESPACE",
  "OCI_COMPARTMENT_ID",
  "BATCH_INFER_QUEUE_ID",
  "BATCH_INFER_QUEUE_ENDPOINT",
  "BATCH_INFER_PARKING_QUEUE_ID",
  "BATCH_INFER_JOBS_TABLE",
  "BATCH_INFER_PARTITIONS_TABLE",
  "BATCH_INFER_STREAM_ID",
  "BATCH_INFER_STREAM_ENDPOINT",
  "BATCH_INFER_STATE_BUCKET",
  "BATCH_INFER_MODEL_CACHE",
  "BATCH_INFER_FUNCTION",
  "BATCH_INFER_JOB_DEFAULTS",
  "BATCH_INFER_OKE_CLUSTER_ID",
  "BATCH_INFER_K8S_API",
  "BATCH_INFER_K8S_NAMESPACE",
  "BATCH_INFER_K8S_DEPLOYMENT",
  "BATCH_INFER_K8S_CA_FILE",
];

/** Set only when the config names them (the scaler asks OKE for the endpoint and CA otherwise). */
const OPTIONAL = ["BATCH_INFER_K8S_API", "BATCH_INFER_K8S_CA_FILE"];

const STEPS = [
  "namespace",
  "buckets",
  "queues",
  "nosql",
  "streaming",
  "images",
  "functions",
  "iam",
  "events",
  "scaler-triggers",
  "kubernetes",
];

let tmp: string;
let stubs: string;

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "deploy-oci-"));
  stubs = path.join(tmp, "bin");
  mkdirSync(stubs);
  writeStubs(stubs);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Stand-ins for the CLIs: each logs its argv. `oci` keeps what it "created" by
 * name, so a lookup after a create finds it, answers `--raw-output` queries
 * with an id (a work request's status with $STUB_STATUS, default SUCCEEDED),
 * and fails when its command line contains $STUB_FAIL.
 */
function writeStubs(dir: string): void {
  const body = `#!${process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const tool = path.basename(process.argv[1]);
const args = process.argv.slice(2);
const dir = ${JSON.stringify(dir)};
fs.appendFileSync(path.join(dir, "calls.log"), JSON.stringify([tool, ...args]) + "\\n");
if (process.env.STUB_FAIL && args.join(" ").includes(process.env.STUB_FAIL)) {
  console.error("ServiceError: stub failure");
  process.exit(3);
}
if (tool !== "oci") process.exit(0);
const after = (flag) => { const i = args.indexOf(flag); return i < 0 ? undefined : args[i + 1]; };
const query = after("--query") ?? "";
const name = after("--display-name") ?? after("--name") ?? /name=='([^']+)'/.exec(query)?.[1] ?? "?";
const dbFile = path.join(dir, "created.json");
const db = fs.existsSync(dbFile) ? JSON.parse(fs.readFileSync(dbFile, "utf8")) : {};
const verbs = ["list", "create", "get", "update", "create-kubeconfig"];
const verb = args.find((a) => verbs.includes(a));
const newId = () => "ocid1.stub.oc1.." + (Object.keys(db).length + 1) + "x" + name.replace(/[^a-z0-9]/g, "");
if (verb === "create" && name !== "?") db[name] = db[name] ?? newId();
fs.writeFileSync(dbFile, JSON.stringify(db));
if (!args.includes("--raw-output")) process.exit(0);
if (query === "data.status") console.log(process.env.STUB_STATUS ?? "SUCCEEDED");
else if (query === 'data."lifecycle-state"') console.log(process.env.STUB_STATE ?? "ACTIVE");
else if (args.includes("ns")) console.log("stubns");
else if (verb === "list") console.log(db[name] ?? "");
else if (verb === "create") console.log(db[name] ?? newId());
else if (verb === "get") console.log("https://cell-1.stub.us-ashburn-1.oci.oraclecloud.com");
`;
  // The stubs are CommonJS whatever a package.json above the temp dir says.
  writeFileSync(path.join(dir, "package.json"), '{"type":"commonjs"}\n');
  for (const tool of ["oci", "fn", "docker", "kubectl", "npm"]) {
    const file = path.join(dir, tool);
    writeFileSync(file, body);
    chmodSync(file, 0o755);
  }
}

function calls(): string[][] {
  const file = path.join(stubs, "calls.log");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
}

function deploy(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ["--import", "tsx", SCRIPT, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, PATH: `${stubs}${path.delimiter}${process.env.PATH}`, ...env },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** A config with every optional section filled in, so every contract key is set. */
function fullConfig(): string {
  const config = JSON.parse(readFileSync(EXAMPLE, "utf8")) as Record<
    string,
    Record<string, unknown>
  >;
  config.oke = {
    ...config.oke,
    apiServer: "https://10.0.10.5:6443",
    caFile: "/etc/batch-infer/oke-ca.pem",
    imagePullSecret: "ocirsecret",
  };
  config.dataScience = { compartmentOcid: "ocid1.compartment.oc1..aaaaaaaamodels" };
  const file = path.join(tmp, "full.json");
  writeFileSync(file, JSON.stringify(config));
  return file;
}

// ---------------------------------------------------------------------------

describe("deploy-oci --dry-run", () => {
  let out: string;
  let plan: string;

  before(() => {
    out = path.join(tmp, "dry");
    rmSync(path.join(stubs, "calls.log"), { force: true });
    const res = deploy(["--dry-run", "--out", out]);
    assert.equal(res.status, 0, res.stderr);
    plan = res.stdout;
  });

  it("prints every step in order and runs nothing", () => {
    const headers = [...plan.matchAll(/^# ── step (\d+)\/(\d+): (\S+) — /gm)];
    assert.deepEqual(
      headers.map((m) => m[3]),
      STEPS,
    );
    assert.ok(headers.every((m) => m[2] === String(STEPS.length)));
    assert.deepEqual(calls(), [], "a dry run must not start any command");
    assert.ok(!existsSync(path.join(out, "state.json")), "a dry run captures nothing");
  });

  it("has a comment on every command and is valid shell", () => {
    const lines = plan.split("\n");
    let commands = 0;
    lines.forEach((line, i) => {
      if (line === "" || line.startsWith("#")) return;
      commands++;
      assert.match(lines[i - 1] ?? "", /^# \S/, `no comment above: ${line}`);
    });
    assert.ok(commands > 60, `only ${commands} commands`);
    const syntax = spawnSync("bash", ["-n"], { input: plan, encoding: "utf8" });
    assert.equal(syntax.status, 0, syntax.stderr);
  });

  it("prints each resource the architecture needs, with captures for later steps", () => {
    const expect: [string, RegExp][] = [
      ["namespace", /^OS_NAMESPACE=\$\(oci .* os ns get --query data --raw-output\)$/m],
      [
        "object events",
        /os bucket update .*--bucket-name batch-infer-input --object-events-enabled true/,
      ],
      [
        "partition queue + DLQ",
        /queue queue-admin queue create .*--display-name batch-infer-partitions .*--dlq-delivery-count 20/,
      ],
      ["parking queue", /queue queue-admin queue create .*--display-name batch-infer-parking /],
      [
        "queue endpoint capture",
        /^QUEUE_ENDPOINT=\$\(oci .*queue get --queue-id "\$\{QUEUE_OCID\}" --query 'data\."messages-endpoint"' --raw-output\)$/m,
      ],
      [
        "jobs table",
        /nosql table create .*--name batch_infer_jobs --ddl-statement 'CREATE TABLE IF NOT EXISTS batch_infer_jobs/,
      ],
      ["partitions table", /nosql table create .*--name batch_infer_partitions /],
      ["stream pool", /streaming admin stream-pool create /],
      ["stream", /streaming admin stream create .*--stream-pool-id "\$\{STREAM_POOL_OCID\}"/],
      ["stream endpoint", /^STREAM_ENDPOINT=\$\(/m],
      ["bundle", /^npm run build$/m],
      ["function image", /^fn --registry "iad\.ocir\.io\/\$\{OS_NAMESPACE\}\/batch-infer" build$/m],
      ["push", /^docker push "iad\.ocir\.io\/\$\{OS_NAMESPACE\}\/batch-infer\/functions:/m],
      ["worker image", /^docker build -f worker-image\/Dockerfile -t /m],
      ["application", /fn application create .*--subnet-ids/],
      [
        "splitter",
        /fn function create .*--display-name batch-infer-splitter .*--image "iad\.ocir\.io\/\$\{OS_NAMESPACE\}\/batch-infer\/functions:/,
      ],
      ["merger", /fn function create .*--display-name batch-infer-merger .*functions:/],
      ["scaler", /fn function create .*--display-name batch-infer-scaler .*functions:/],
      ["dynamic group", /iam dynamic-group create .*resource\.type = 'fnfunc'/],
      ["policy", /iam policy create .*--statements file:\/\//],
      ["events rule", /events rule create --from-json file:\/\/.*score-on-upload\.json/],
      [
        "alarm → scaler",
        /ons subscription create .*--protocol ORACLE_FUNCTIONS --subscription-endpoint "\$\{SCALER_FUNCTION_OCID\}"/,
      ],
      [
        "queue alarm",
        /monitoring alarm create .*--namespace oci_queue --query-text "MessagesInQueueCount/,
      ],
      [
        "schedule",
        /resource-scheduler schedule create .*--action START_RESOURCE --recurrence-type CRON/,
      ],
      ["kubeconfig", /ce cluster create-kubeconfig --cluster-id \S+ --file /],
      [
        "namespace manifest",
        /^kubectl --kubeconfig \S+ apply -f worker-image\/k8s\/namespace\.yaml$/m,
      ],
      [
        "worker Deployment",
        /^kubectl --kubeconfig \S+ apply -f \S+\/k8s\/worker-deployment\.yaml$/m,
      ],
    ];
    for (const [what, re] of expect) assert.match(plan, re, what);
    // Every function runs the same image.
    const images = new Set(
      [...plan.matchAll(/fn function (?:create|update) .*?--image (\S+)/g)].map((m) => m[1]),
    );
    assert.equal(images.size, 1, [...images].join(", "));
  });

  it("leaves out what the config leaves out (embedding refresh, scaler triggers, namespace lookup)", () => {
    const config = JSON.parse(readFileSync(EXAMPLE, "utf8")) as Record<string, unknown>;
    delete config.embeddingRefresh;
    const file = path.join(tmp, "minimal.json");
    writeFileSync(
      file,
      JSON.stringify({
        ...config,
        namespace: "mytenancy",
        scaler: { alarm: false, scheduleCron: null },
      }),
    );
    const minOut = path.join(tmp, "minimal");
    const res = deploy(["--dry-run", "--config", file, "--out", minOut]);
    assert.equal(res.status, 0, res.stderr);
    assert.doesNotMatch(res.stdout, /os ns get|corpus-|embed-splitter|refresh-embeddings/);
    assert.match(
      res.stdout,
      /step 10\/11: scaler-triggers .*\n# \(nothing to do with this config\)/,
    );
    assert.match(res.stdout, /docker push iad\.ocir\.io\/mytenancy\/batch-infer\/functions:/);
    assert.deepEqual(readdirSync(path.join(minOut, "events")).sort(), [
      "score-on-upload.actions.json",
      "score-on-upload.json",
    ]);
    assert.ok(!existsSync(path.join(minOut, "iam/batch-infer-embed-splitter.statements.json")));
    assert.ok(!existsSync(path.join(minOut, "iam/batch-infer-scaler-schedule.statements.json")));
  });

  it("writes the rendered files it will pass to the CLI", () => {
    for (const f of [
      "fn/app.config.json",
      "fn/splitter.config.json",
      "fn/merger.config.json",
      "fn/scaler.config.json",
      "events/score-on-upload.json",
      "iam/batch-infer-workers.statements.json",
      "k8s/worker-deployment.yaml",
      "k8s/scaler-rbac.yaml",
    ]) {
      assert.ok(existsSync(path.join(out, f)), f);
    }
    const rule = JSON.parse(
      readFileSync(path.join(out, "events/score-on-upload.json"), "utf8"),
    ) as RuleFile;
    assert.match(rule.condition, /"bucketName":\["batch-infer-input"\]/);
    assert.equal(rule.actions.actions[0]?.functionId, ph("SPLITTER_FUNCTION_OCID"));
  });
});

// ---------------------------------------------------------------------------

describe("deploy-oci (real run against stub CLIs)", () => {
  it("stops at the first failure, says how to resume, and resumes with the captured ids", () => {
    const out = path.join(tmp, "real");
    const config = fullConfig();
    rmSync(path.join(stubs, "calls.log"), { force: true });
    rmSync(path.join(stubs, "created.json"), { force: true });

    const failed = deploy(["--config", config, "--out", out], {
      STUB_FAIL: "queue-admin queue create",
    });
    assert.equal(failed.status, 1, failed.stderr);
    assert.match(failed.stdout, /✗ step queues failed: exit status 3/);
    assert.match(failed.stdout, /command: QUEUE_OCID_CREATE=\$\(oci .*queue-admin queue create/);
    assert.match(
      failed.stdout,
      /npx tsx scripts\/deploy-oci\.ts --config \S+ --out \S+ --from queues/,
    );
    const first = calls();
    assert.ok(
      first.some((c) => c.includes("bucket") && c.includes("create")),
      "buckets came first",
    );
    assert.ok(!first.some((c) => c[0] === "kubectl"), "nothing after the failure ran");
    const state = JSON.parse(readFileSync(path.join(out, "state.json"), "utf8")) as {
      captured: Record<string, string>;
    };
    assert.equal(state.captured.OS_NAMESPACE, "stubns");

    rmSync(path.join(stubs, "calls.log"));
    const resumed = deploy(["--config", config, "--out", out, "--from", "queues"]);
    assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
    const second = calls();
    assert.ok(
      !second.some((c) => c.includes("ns") && c.includes("get")),
      "namespace not looked up again",
    );
    assert.ok(!second.some((c) => c.includes("bucket")), "buckets not touched again");
    assert.ok(second.some((c) => c[0] === "kubectl" && c.includes("apply")));
    // The OCIR path uses the namespace captured by the first run.
    assert.ok(
      second.some(
        (c) => c[0] === "docker" && c.includes("iad.ocir.io/stubns/batch-infer/functions:0.1.0"),
      ),
    );
    // A create's id is used by later commands (the created queue is found by name).
    const update = second.find((c) => c.includes("function") && c.includes("update"));
    assert.match(update?.[update.indexOf("--function-id") + 1] ?? "", /^ocid1\.stub\./);

    for (const f of [
      "k8s/worker-deployment.yaml",
      "k8s/scaler-rbac.yaml",
      "fn/app.config.json",
      "events/score-on-upload.json",
    ]) {
      const text = readFileSync(path.join(out, f), "utf8");
      assert.deepEqual(placeholders(text), [], `${f} still has placeholders`);
    }
  });

  it("treats a work request that ends FAILED as a failure", () => {
    rmSync(path.join(stubs, "created.json"), { force: true });
    const res = deploy(["--config", fullConfig(), "--out", path.join(tmp, "wr")], {
      STUB_STATUS: "FAILED",
    });
    assert.equal(res.status, 1);
    assert.match(
      res.stdout,
      /✗ step queues failed: QUEUE_OCID_CREATE is "FAILED", expected "SUCCEEDED"/,
    );
  });

  it("waits for the stream pool and stream to be ACTIVE, and stops when one ends FAILED", () => {
    rmSync(path.join(stubs, "created.json"), { force: true });
    const res = deploy(["--config", fullConfig(), "--out", path.join(tmp, "poll")], {
      STUB_STATE: "FAILED",
    });
    assert.equal(res.status, 1);
    assert.match(
      res.stdout,
      /✗ step streaming failed: STREAM_POOL_STATE is FAILED, expected ACTIVE/,
    );
    assert.match(res.stdout, /streaming admin stream-pool get --stream-pool-id/);
  });

  it("rejects a bad config naming the field, and a real run without --config", () => {
    const bad = path.join(tmp, "bad.json");
    const config = JSON.parse(readFileSync(EXAMPLE, "utf8")) as Record<string, unknown>;
    writeFileSync(bad, JSON.stringify({ ...config, compartmentOcid: "my-compartment" }));
    const res = deploy(["--dry-run", "--config", bad, "--out", path.join(tmp, "bad")]);
    assert.equal(res.status, 2);
    assert.match(res.stderr, /compartmentOcid "my-compartment" does not match/);
    const spec = path.join(tmp, "badspec.json");
    writeFileSync(
      spec,
      JSON.stringify({
        ...config,
        functions: { ...(config.functions as object), jobDefaults: { output: { bucket: "x" } } },
      }),
    );
    assert.match(deploy(["--dry-run", "--config", spec]).stderr, /functions\.jobDefaults: .*model/);
    assert.match(deploy([]).stderr, /needs --config FILE/);
  });
});

// ---------------------------------------------------------------------------

/**
 * OCI Events filter semantics: fields the condition leaves out are ignored; a
 * field it names must be present; an array lists alternatives; `*` in a
 * string matches any run of characters; nested objects match recursively.
 */
function matches(condition: unknown, event: unknown): boolean {
  if (Array.isArray(condition)) return condition.some((c) => matches(c, event));
  if (condition !== null && typeof condition === "object") {
    if (event === null || typeof event !== "object" || Array.isArray(event)) return false;
    return Object.entries(condition).every(
      ([k, c]) => k in event && matches(c, (event as Record<string, unknown>)[k]),
    );
  }
  if (typeof condition === "string") {
    if (typeof event !== "string") return false;
    const re = condition.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
    return new RegExp(`^${re.join(".*")}$`).test(event);
  }
  return condition === event;
}

/** An Object Storage createobject event as OCI Events delivers it (CloudEvents 0.1). */
function ociUpload(bucket: string, object: string, eventType = "createobject") {
  return {
    eventType: `com.oraclecloud.objectstorage.${eventType}`,
    cloudEventsVersion: "0.1",
    eventTypeVersion: "2.0",
    source: "ObjectStorage",
    eventTime: "2024-05-02T10:41:27Z",
    contentType: "application/json",
    extensions: { compartmentId: "ocid1.compartment.oc1..aaaaaaaaexample" },
    eventID: "4d2b7e2f-2b7a-4f4e-8a44-5d6f0f8a0c11",
    data: {
      compartmentId: "ocid1.compartment.oc1..aaaaaaaaexample",
      compartmentName: "batch",
      resourceName: object,
      resourceId: `/n/ns1/b/${bucket}/o/${object}`,
      availabilityDomain: "IAD-AD-1",
      additionalDetails: {
        bucketName: bucket,
        versionId: "a1b2c3",
        archivalState: "Available",
        namespace: "ns1",
        bucketId: "ocid1.bucket.oc1.iad.aaaaaaaaexample",
        eTag: "0f3c1a0e-1d8e-4c3c-9a2e-7b1f0e5d9a21",
      },
    },
  };
}

/** Example upload payloads checked into events/ (any JSON there that is an Object Storage event). */
function examplePayloads(): unknown[] {
  const found: unknown[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".json")) {
        const v = JSON.parse(readFileSync(p, "utf8")) as { eventType?: unknown };
        if (
          typeof v.eventType === "string" &&
          v.eventType.startsWith("com.oraclecloud.objectstorage.")
        )
          found.push(v);
      }
    }
  };
  walk(path.join(ROOT, "events"));
  return found;
}

describe("Events rules", () => {
  const rules = loadRules();
  const vars = new Map(
    Object.entries({
      PREFIX: "bi",
      COMPARTMENT_OCID: "ocid1.compartment.oc1..aaaaaaaaexample",
      INPUT_BUCKET: "in-bkt",
      CORPUS_BUCKET: "corpus-bkt",
      CORPUS_PREFIX: "docs/",
      SPLITTER_FUNCTION_OCID: "ocid1.fnfunc.oc1.iad.splitter",
      EMBED_SPLITTER_FUNCTION_OCID: "ocid1.fnfunc.oc1.iad.embed",
    }),
  );
  const condition = (rule: RuleFile) => JSON.parse(fill(rule.condition, vars, "strict")) as unknown;
  const byName = (f: string) => {
    const r = rules.find(([n]) => n === f)?.[1];
    assert.ok(r, `events/rules/${f}`);
    return r;
  };

  it("are in the shape oci events rule create --from-json takes, with a FAAS action", () => {
    assert.ok(rules.length >= 2);
    const allowed = new Set([
      "compartmentId",
      "displayName",
      "description",
      "isEnabled",
      "condition",
      "actions",
      "freeformTags",
      "definedTags",
    ]);
    for (const [name, rule] of rules) {
      for (const k of Object.keys(rule))
        assert.ok(allowed.has(k), `${name}: ${k} is not a rule create parameter`);
      assert.equal(typeof rule.displayName, "string");
      assert.equal(typeof rule.description, "string");
      assert.equal(rule.isEnabled, true);
      assert.equal(typeof rule.condition, "string", `${name}: condition must be a JSON string`);
      assert.equal(typeof condition(rule), "object");
      assert.ok(rule.actions.actions.length > 0);
      for (const a of rule.actions.actions) {
        assert.equal(a.actionType, "FAAS");
        assert.match(a.functionId ?? "", /^\$\{[A-Z_]+_FUNCTION_OCID\}$/);
        assert.equal(a.isEnabled, true);
      }
    }
  });

  it("the example payloads are what the splitter accepts", () => {
    const payloads = [
      ...examplePayloads(),
      ociUpload("in-bkt", "customers.csv"),
      objectCreatedEvent({ bucket: "in-bkt", object: "c.csv", etag: "e1", eventId: "x1" }),
    ];
    for (const p of payloads) assert.doesNotThrow(() => parseObjectEvent(p));
  });

  it("score-on-upload fires on create and overwrite in the input bucket, and only there", () => {
    const c = condition(byName("score-on-upload.json"));
    assert.ok(matches(c, ociUpload("in-bkt", "customers.csv")));
    assert.ok(matches(c, ociUpload("in-bkt", "nested/customers.jsonl", "updateobject")));
    assert.ok(
      matches(
        c,
        objectCreatedEvent({ bucket: "in-bkt", object: "c.csv", etag: "e", eventId: "x" }),
      ),
    );
    for (const p of examplePayloads()) {
      const bucket = (p as { data: { additionalDetails: { bucketName: string } } }).data
        .additionalDetails.bucketName;
      assert.equal(matches(condition(byName("score-on-upload.json")), p), bucket === "in-bkt");
    }
    assert.ok(!matches(c, ociUpload("scores", "customers.csv")), "wrong bucket");
    assert.ok(
      !matches(c, ociUpload("in-bkt-2", "customers.csv")),
      "a bucket whose name only starts the same",
    );
    assert.ok(!matches(c, ociUpload("in-bkt", "customers.csv", "deleteobject")), "a delete");
  });

  it("refresh-embeddings fires only under the corpus prefix", () => {
    const c = condition(byName("refresh-embeddings-on-corpus-change.json"));
    assert.ok(matches(c, ociUpload("corpus-bkt", "docs/a.jsonl")));
    assert.ok(matches(c, ociUpload("corpus-bkt", "docs/2024/b.jsonl", "updateobject")));
    assert.ok(matches(c, ociUpload("corpus-bkt", "docs/c.txt", "deleteobject")), "a delete");
    assert.ok(!matches(c, ociUpload("corpus-bkt", "other/a.jsonl")), "outside the prefix");
    assert.ok(!matches(c, ociUpload("in-bkt", "docs/a.jsonl")), "wrong bucket");
  });

  it("the matcher follows OCI's semantics (absent fields ignored, arrays are alternatives)", () => {
    assert.ok(matches({}, ociUpload("x", "y")));
    assert.ok(matches({ data: { resourceName: ["a*", "y"] } }, ociUpload("x", "y")));
    assert.ok(!matches({ data: { missingField: "*" } }, ociUpload("x", "y")));
  });
});

// ---------------------------------------------------------------------------

describe("IAM policies", () => {
  const iam: IamFile = loadIam();
  const all = iam.policies.flatMap((p) => p.statements.map((s) => ({ policy: p.name, s })));

  it("grant no tenancy-wide or all-resources access", () => {
    assert.deepEqual(iam.tenancyGrants, [], "tenancy grants must be listed and justified here");
    for (const { policy, s } of all) {
      assert.doesNotMatch(s, /all-resources/, `${policy}: ${s}`);
      assert.doesNotMatch(s, /\bin tenancy\b/, `${policy}: ${s}`);
      assert.match(
        s,
        /^Allow (dynamic-group|any-user|service) \S+ .* in compartment id \$\{[A-Z_]+\}/,
        `${policy}: ${s}`,
      );
    }
  });

  it("narrow every grant to the resource it needs", () => {
    for (const { policy, s } of all) {
      if (/ to manage objects /.test(s))
        assert.match(s, /target\.bucket\.name = '\$\{(OUTPUT|STATE)_BUCKET\}'/, s);
      if (/ to read objects /.test(s))
        assert.match(s, /target\.bucket\.name = '\$\{(INPUT|MODELS|CORPUS)_BUCKET\}'/, s);
      if (/ (queue-push|queue-pull|read queues) /.test(s))
        assert.match(s, /target\.queue\.id = /, s);
      if (/ stream-push /.test(s)) assert.match(s, /target\.stream\.id = /, s);
      if (/nosql-(rows|tables)/.test(s)) assert.match(s, /target\.nosql-table\.name = /, s);
      assert.doesNotMatch(
        s,
        / to manage (?!objects )/,
        `${policy}: manage only objects in one bucket`,
      );
      if (s.startsWith("Allow any-user"))
        assert.match(
          s,
          /request\.principal\.(type = 'workload'|type = 'resourceschedule', request\.principal\.id = )/,
          `${policy}: any-user needs a principal condition`,
        );
    }
  });

  it("functions get one dynamic group each; workers use workload identity, bound to the manifests' service account", () => {
    for (const g of iam.dynamicGroups) {
      assert.match(
        g.matchingRule,
        /^ALL \{resource\.type = 'fnfunc', resource\.compartment\.id = '\$\{COMPARTMENT_OCID\}', resource\.id = '\$\{[A-Z_]+_FUNCTION_OCID\}'\}$/,
      );
    }
    const workers = iam.policies.find((p) => p.component.startsWith("workers"));
    assert.ok(workers);
    for (const s of workers.statements) {
      assert.match(
        s,
        /request\.principal\.type = 'workload', request\.principal\.namespace = '\$\{K8S_NAMESPACE\}', request\.principal\.service_account = '\$\{K8S_SERVICE_ACCOUNT\}', request\.principal\.cluster_id = '\$\{OKE_CLUSTER_OCID\}'/,
      );
    }
    const ns = readFileSync(path.join(ROOT, "worker-image/k8s/namespace.yaml"), "utf8");
    const deployment = readFileSync(
      path.join(ROOT, "worker-image/k8s/worker-deployment.yaml"),
      "utf8",
    );
    const sa = /serviceAccountName:\s*(\S+)/.exec(deployment)?.[1] ?? "";
    assert.match(
      ns,
      new RegExp(`kind: ServiceAccount\\nmetadata:\\n\\s+name: ${sa}\\n\\s+namespace: batch-infer`),
    );
  });

  it("each component gets what its code calls, and the dry run fills every placeholder it can", () => {
    const of = (component: string) =>
      iam.policies.find((p) => p.component === component)?.statements.join("\n") ?? "";
    assert.match(of("splitter"), /use queue-push/);
    assert.match(of("scaler"), /read queues .*QUEUE_OCID/);
    assert.match(of("scaler"), /use clusters/);
    assert.match(of("merger"), /manage objects .*OUTPUT_BUCKET/);
    assert.match(of("workers (OKE workload identity)"), /use queue-pull/);
    assert.match(of("workers (OKE workload identity)"), /use queue-push .*PARKING_QUEUE_OCID/);
    const dry = JSON.parse(
      readFileSync(path.join(tmp, "dry/iam/batch-infer-workers.statements.json"), "utf8"),
    ) as string[];
    for (const s of dry) {
      assert.deepEqual(
        placeholders(s).filter((p) => !p.endsWith("_OCID")),
        [],
        s,
      );
      assert.match(s, /request\.principal\.namespace = 'batch-infer'/);
    }
  });
});

// ---------------------------------------------------------------------------

describe("environment contract", () => {
  const envOf = (out: string) => {
    const fnDir = path.join(out, "fn");
    const functions = readdirSync(fnDir).map((f) => ({
      file: f,
      config: JSON.parse(readFileSync(path.join(fnDir, f), "utf8")) as Record<string, string>,
    }));
    const manifest = readFileSync(path.join(out, "k8s/worker-deployment.yaml"), "utf8");
    const worker = Object.fromEntries(
      [...manifest.matchAll(/- \{ name: ([A-Z0-9_]+), value: ("(?:[^"\\]|\\.)*") \}/g)].map((m) => [
        m[1] as string,
        JSON.parse(m[2] as string) as string,
      ]),
    );
    return { functions, worker, manifest };
  };

  it("every key reaches a function's config or the worker Deployment (all optional sections set)", () => {
    const { functions, worker, manifest } = envOf(path.join(tmp, "real"));
    const keys = new Set([
      ...functions.flatMap((f) => Object.keys(f.config)),
      ...Object.keys(worker),
    ]);
    for (const k of CONTRACT) assert.ok(keys.has(k), `${k} is set nowhere`);
    assert.match(manifest, /imagePullSecrets: \[\{ name: ocirsecret \}\]/);
  });

  it("with the example config only the optional scaler overrides are unset", () => {
    const { functions, worker } = envOf(path.join(tmp, "dry"));
    const keys = new Set([
      ...functions.flatMap((f) => Object.keys(f.config)),
      ...Object.keys(worker),
    ]);
    assert.deepEqual(
      CONTRACT.filter((k) => !keys.has(k)),
      OPTIONAL,
    );
  });

  it("functions use resource principals and share one config; workers use workload identity", () => {
    const { functions, worker } = envOf(path.join(tmp, "dry"));
    const app = functions.find((f) => f.file === "app.config.json")?.config ?? {};
    assert.equal(app.OCI_AUTH, "resource_principal");
    assert.equal(app.BATCH_INFER_BACKEND, "oci");
    assert.equal(worker.OCI_AUTH, "workload_identity");
    assert.equal(worker.BATCH_INFER_BACKEND, "oci");
    const byFn = Object.fromEntries(functions.map((f) => [f.file, f.config.BATCH_INFER_FUNCTION]));
    assert.deepEqual(byFn, {
      "app.config.json": undefined,
      "splitter.config.json": "splitter",
      "embed-splitter.config.json": "refresh",
      "merger.config.json": "merger",
      "scaler.config.json": "scaler",
    });
    const defaults = JSON.parse(
      functions.find((x) => x.file === "splitter.config.json")?.config.BATCH_INFER_JOB_DEFAULTS ??
        "",
    ) as object;
    assert.ok(!("input" in defaults), "the event names the input");
    // The corpus rule's function refreshes the corpus the config names, with its model.
    const refresh = JSON.parse(
      functions.find((x) => x.file === "embed-splitter.config.json")?.config.BATCH_INFER_REFRESH ??
        "",
    ) as { corpus: { bucket: string; prefix: string }; model: string; output: { bucket: string } };
    assert.equal(refresh.corpus.prefix, "docs/");
    assert.match(refresh.model, /embedder\/descriptor\.json$/);
    assert.ok(refresh.output.bucket.length > 0);
    for (const k of Object.keys(worker))
      assert.ok((WORKER_ENV as readonly string[]).includes(k), `${k} is not read by the worker`);
  });
});

// ---------------------------------------------------------------------------

describe("deploy-oci helpers", () => {
  it("sh splits literals on whitespace and keeps each value one argument", () => {
    const q = "data[?name=='a b'].name | [0]";
    assert.deepEqual(sh`oci os bucket list --query ${q} --x=${"1 2"} ${["--a", "b c"]} ${3}`, [
      "oci",
      "os",
      "bucket",
      "list",
      "--query",
      q,
      "--x=1 2",
      "--a",
      "b c",
      "3",
    ]);
  });

  it("shellQuote round-trips through bash; placeholders expand like fill()", () => {
    const tricky = [
      "plain",
      "",
      "it's",
      'say "hi" $HOME `x` \\ !',
      "data[?a=='b'] | [0]",
      '{"a":["x y"]}',
    ];
    const script = `printf '%s\\n' ${tricky.map(shellQuote).join(" ")}`;
    const res = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    assert.deepEqual(res.stdout.split("\n").slice(0, -1), tricky);
    const withVar = `MessagesInQueueCount[1m]{resourceId = "\${QUEUE_OCID}"}.max() > 0 $HOME`;
    const expanded = spawnSync(
      "bash",
      ["-c", `QUEUE_OCID=ocid1.queue.x; printf '%s' ${shellQuote(withVar)}`],
      {
        encoding: "utf8",
      },
    );
    assert.equal(
      expanded.stdout,
      fill(withVar, new Map([["QUEUE_OCID", "ocid1.queue.x"]]), "strict"),
    );
  });

  it("parseDdl reads the tables, their limits and plain-column indexes; refuses what the CLI can't run", () => {
    const ddl = parseDdl(readFileSync(path.join(ROOT, "scripts/oci/nosql-tables.ddl"), "utf8"));
    const tables = ddl.filter((s) => s.kind === "table").map((s) => s.table);
    assert.ok(tables.includes("batch_infer_jobs") && tables.includes("batch_infer_partitions"));
    for (const s of ddl.filter((x) => x.kind === "table"))
      assert.match(s.statement, /^CREATE TABLE IF NOT EXISTS \w+ \(.*\)$/);
    const idx = parseDdl(
      '-- table-limits: {"maxReadUnits":1,"maxWriteUnits":1,"maxStorageInGBs":1}\nCREATE TABLE t (a STRING, PRIMARY KEY (a));\nCREATE INDEX IF NOT EXISTS byA ON t (a, b);\n',
    );
    assert.deepEqual(idx[0]?.limits, { maxReadUnits: 1, maxWriteUnits: 1, maxStorageInGBs: 1 });
    assert.deepEqual(idx[1], {
      kind: "index",
      name: "byA",
      table: "t",
      columns: ["a", "b"],
      statement: "CREATE INDEX IF NOT EXISTS byA ON t (a, b)",
    });
    assert.throws(() => parseDdl("DROP TABLE t;"), /unsupported NoSQL DDL statement/);
  });

  it("renderWorkerDeployment sets the image, replaces same-named env entries, adds the rest", () => {
    const template = readFileSync(
      path.join(ROOT, "worker-image/k8s/worker-deployment.yaml"),
      "utf8",
    );
    const out = renderWorkerDeployment(template, "iad.ocir.io/ns/w:1", [
      ["LOG_LEVEL", "debug"],
      ["BATCH_INFER_BACKEND", "oci"],
    ]);
    assert.match(out, /^\s+image: iad\.ocir\.io\/ns\/w:1$/m);
    assert.equal(out.match(/name: LOG_LEVEL/g)?.length, 1);
    assert.match(out, /- \{ name: LOG_LEVEL, value: "debug" \}/);
    assert.match(out, /- \{ name: BATCH_INFER_BACKEND, value: "oci" \}\n\s+resources:/);
    assert.match(out, /- \{ name: ORT_INTRA_OP_THREADS, value: "2" \}/);
  });
});

describe("README", () => {
  it('ends with "## Deploying to OCI", which shows the dry run', () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const at = readme.lastIndexOf("\n## ");
    assert.ok(readme.slice(at).startsWith("\n## Deploying to OCI\n"));
    assert.match(readme.slice(at), /npx tsx scripts\/deploy-oci\.ts --dry-run/);
    assert.match(readme.slice(at), /UNCONFIRMED/);
  });
});
