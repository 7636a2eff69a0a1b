/**
 * The scaler's OKE side: the OKE token (checked the way OKE checks it), the
 * Deployment scale target against the Kubernetes API stand-in, and the scaler
 * handler end to end over a real (SQLite) queue.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type * as common from "oci-common";
import { ContainerEngineClient } from "oci-containerengine";
import { createScalerHandler } from "../functions/scaler/handler.ts";
import { guardHandler, type Rejection } from "../functions/wiring.ts";
import { SqliteTaskQueue } from "../src/adapters/local/sqlite-task-queue.ts";
import type { OciAuth } from "../src/adapters/oci/auth.ts";
import { createClient } from "../src/adapters/oci/clients.ts";
import { OkeDeploymentTarget } from "../src/adapters/oci/oke-replica-target.ts";
import {
  type ClusterLookup,
  createOkeScalerTarget,
} from "../src/adapters/oci/oke-scaler-target.ts";
import { cachedOkeToken, generateOkeToken, type OkeToken } from "../src/adapters/oci/oke-token.ts";
import {
  InvalidArgumentError,
  NotFoundError,
  PipelineError,
  StoreUnavailableError,
} from "../src/core/errors.ts";
import { silentLogger } from "../src/core/log.ts";
import { DEFAULT_POLICY, type ScalingPolicy } from "../src/pipeline/scaler.ts";
import { replicaTargetConformance } from "./conformance/replica-target.conformance.ts";
import {
  type KubernetesStandIn,
  mountContainerEngine,
  startKubernetesStandIn,
  verifyOkeToken,
} from "./oci-standin/kubernetes.ts";
import {
  type OciStandIn,
  standInAuth,
  startStandIn,
  testCredentials,
} from "./oci-standin/server.ts";

const creds = testCredentials();
const auth = standInAuth(creds);
const REGION = creds.region;
const CLUSTER = "ocid1.cluster.oc1.iad.aaaaaaaastandincluster";
const OTHER_CLUSTER = "ocid1.cluster.oc1.iad.aaaaaaaaothercluster";
const NS = "batch-infer";
const WORKER = "batch-infer-worker";
const trusted = new Map([[creds.keyId, creds.publicKeyPem]]);

function decode(token: string): URL {
  return new URL(Buffer.from(token, "base64url").toString("utf8"));
}

function encode(url: URL): string {
  return Buffer.from(url.toString()).toString("base64url");
}

const tokenFor = (clusterId = CLUSTER) =>
  cachedOkeToken(() => generateOkeToken({ auth, clusterId, region: REGION }));

function target(
  k8s: KubernetesStandIn,
  overrides: { deployment?: string; clusterId?: string } = {},
) {
  return new OkeDeploymentTarget({
    apiServer: k8s.url,
    namespace: NS,
    deployment: overrides.deployment ?? WORKER,
    token: tokenFor(overrides.clusterId),
  });
}

/** A self-signed certificate for 127.0.0.1 (what OKE's own CA is to a client), or undefined without openssl. */
function selfSignedCert(dir: string): { cert: string; key: string } | undefined {
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        keyFile,
        "-out",
        certFile,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  } catch {
    return undefined;
  }
  return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "bi-oci-scaler-"));
});
after(() => rm(tmp, { recursive: true, force: true }));

describe("OKE token", () => {
  const signedAt = new Date("2025-03-04T05:06:07Z");
  const at = (ms: number) => ({
    trustedKeys: trusted,
    clusterId: CLUSTER,
    region: REGION,
    now: signedAt.getTime() + ms,
  });

  it("is the signed cluster request URL, base64url-encoded, and OKE's check accepts it", async () => {
    const { token, expiresAt } = await generateOkeToken({
      auth,
      clusterId: CLUSTER,
      region: REGION,
      now: () => signedAt,
    });
    assert.match(token, /^[A-Za-z0-9_-]+={0,2}$/);
    assert.equal(expiresAt.getTime(), signedAt.getTime() + 4 * 60_000);
    const url = decode(token);
    assert.equal(url.origin, `https://containerengine.${REGION}.oraclecloud.com`);
    assert.equal(url.pathname, `/cluster_request/${CLUSTER}`);
    assert.deepEqual([...url.searchParams.keys()], ["authorization", "date"]);
    assert.equal(url.searchParams.get("date"), signedAt.toUTCString());
    const authorization = url.searchParams.get("authorization") ?? "";
    assert.match(authorization, /^Signature version="1",/);
    assert.match(authorization, /headers="date \(request-target\) host"/);
    assert.match(authorization, /algorithm="rsa-sha256"/);
    assert.ok(authorization.includes(`keyId="${creds.keyId}"`));
    assert.deepEqual(verifyOkeToken(token, at(60_000)), { keyId: creds.keyId });
  });

  it("is refused when tampered with, expired, for another cluster or region, or from an unknown key", async () => {
    const { token } = await generateOkeToken({
      auth,
      clusterId: CLUSTER,
      region: REGION,
      now: () => signedAt,
    });
    const refused = (t: string, ms = 0, expect = at(ms)) => {
      const r = verifyOkeToken(t, expect);
      assert.ok("reason" in r, `expected a refusal, got ${JSON.stringify(r)}`);
      return r.reason;
    };
    // A later date in the query: the signature covered the original one.
    const redated = decode(token);
    redated.searchParams.set("date", new Date(signedAt.getTime() + 60_000).toUTCString());
    assert.match(refused(encode(redated)), /does not verify/);
    // A different cluster id in the path.
    const moved = decode(token);
    moved.pathname = `/cluster_request/${OTHER_CLUSTER}`;
    assert.match(refused(encode(moved)), /not this cluster/);
    // A flipped signature byte.
    const flipped = decode(token);
    const a = flipped.searchParams.get("authorization") ?? "";
    flipped.searchParams.set(
      "authorization",
      a.replace(/signature="(.)/, (_m, c: string) => `signature="${c === "A" ? "B" : "A"}`),
    );
    assert.match(refused(encode(flipped)), /does not verify/);
    // Garbage and plain strings.
    assert.match(refused("not a token!"), /base64url/);
    assert.match(refused(Buffer.from("hello").toString("base64url")), /URL/);

    assert.match(refused(token, 4 * 60_000 + 1000), /expired/);
    assert.match(refused(token, 0, { ...at(0), clusterId: OTHER_CLUSTER }), /not this cluster/);
    assert.match(refused(token, 0, { ...at(0), region: "eu-frankfurt-1" }), /not https:/);
    assert.match(refused(token, 0, { ...at(0), trustedKeys: new Map() }), /unknown keyId/);

    const other = await generateOkeToken({
      auth,
      clusterId: OTHER_CLUSTER,
      region: REGION,
      now: () => signedAt,
    });
    assert.match(refused(other.token), /not this cluster/);
  });

  it("signs with a resource principal's session key (keyId ST$<token>)", async () => {
    const pair = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const rpst = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvY2lkMS5mbmZ1bmMifQ.c2ln";
    const calls: string[] = [];
    // Shaped like oci-common's resource principal provider: keyId first, then the (rotating) key.
    const provider = {
      getKeyId: async () => {
        calls.push("keyId");
        return `ST$${rpst}`;
      },
      getPrivateKey: () => {
        calls.push("key");
        return pair.privateKey;
      },
      getPassphrase: () => null,
    } as unknown as common.AuthenticationDetailsProvider;
    const rpAuth: OciAuth = { mode: "resource_principal", provider, region: REGION };
    const { token } = await generateOkeToken({ auth: rpAuth, clusterId: CLUSTER, region: REGION });
    assert.deepEqual(calls, ["keyId", "key"]);
    assert.deepEqual(
      verifyOkeToken(token, {
        trustedKeys: new Map([[`ST$${rpst}`, pair.publicKey]]),
        clusterId: CLUSTER,
        region: REGION,
        now: Date.now(),
      }),
      { keyId: `ST$${rpst}` },
    );
  });

  it("rejects a cluster id or region that is not one", async () => {
    await assert.rejects(
      generateOkeToken({ auth, clusterId: "ocid1.cluster/../x", region: REGION }),
      InvalidArgumentError,
    );
    await assert.rejects(
      generateOkeToken({ auth, clusterId: CLUSTER, region: "us ashburn" }),
      InvalidArgumentError,
    );
  });

  it("cachedOkeToken reuses a token until a minute before expiry, shares one generation, keeps no failure", async () => {
    let clock = 0;
    let made = 0;
    let fail = false;
    const generate = async (): Promise<OkeToken> => {
      made++;
      await new Promise((r) => setImmediate(r));
      if (fail) throw new StoreUnavailableError("auth service down");
      return { token: `t${made}`, expiresAt: new Date(clock + 240_000) };
    };
    const token = cachedOkeToken(generate, () => clock);
    assert.deepEqual(await Promise.all([token(), token(), token()]), ["t1", "t1", "t1"]);
    assert.equal(made, 1);
    clock = 179_000;
    assert.equal(await token(), "t1");
    clock = 180_000;
    assert.equal(await token(), "t2");
    clock = 1_000_000;
    fail = true;
    await assert.rejects(token(), StoreUnavailableError);
    fail = false;
    assert.equal(await token(), "t4");
  });
});

replicaTargetConformance("OkeDeploymentTarget conformance (Kubernetes API stand-in)", async () => {
  const k8s = await startKubernetesStandIn({
    trustedKeys: trusted,
    clusterId: CLUSTER,
    region: REGION,
    deployments: [{ namespace: NS, name: WORKER, replicas: 0 }],
  });
  return {
    target: target(k8s),
    // The Deployment's replicas as the API server holds them (Kubernetes then converges pods).
    observed: async () => k8s.replicas(NS, WORKER) ?? -1,
    cleanup: () => k8s.close(),
  };
});

describe("OkeDeploymentTarget against the Kubernetes API stand-in", () => {
  let k8s: KubernetesStandIn;
  before(async () => {
    k8s = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [
        { namespace: NS, name: WORKER, replicas: 0 },
        { namespace: NS, name: "other", replicas: 2 },
      ],
    });
  });
  after(() => k8s.close());

  it("reads and sets spec.replicas of the scale subresource", async () => {
    const t = target(k8s);
    assert.equal(await t.current(), 0);
    assert.equal(await target(k8s, { deployment: "other" }).current(), 2);
    await t.scaleTo(3);
    assert.equal(await t.current(), 3);
    assert.equal(k8s.replicas(NS, WORKER), 3);
    await t.scaleTo(3);
    await t.scaleTo(0);
    assert.equal(await t.current(), 0);
    assert.deepEqual(
      k8s.history
        .filter((h) => h.name === WORKER)
        .map(({ from, to, keyId }) => ({ from, to, keyId })),
      [
        { from: 0, to: 3, keyId: creds.keyId },
        { from: 3, to: 0, keyId: creds.keyId },
      ],
    );
    const patches = k8s.requests.filter((r) => r.method === "PATCH");
    assert.equal(patches.length, 3);
    assert.ok(
      patches.every(
        (r) =>
          r.status === 200 &&
          r.path === `/apis/apps/v1/namespaces/${NS}/deployments/${WORKER}/scale`,
      ),
    );
  });

  it("works through an injected fetch too", async () => {
    const t = new OkeDeploymentTarget({
      apiServer: k8s.url,
      namespace: NS,
      deployment: "other",
      token: tokenFor(),
      fetchImpl: fetch,
    });
    await t.scaleTo(5);
    assert.equal(await t.current(), 5);
    await t.scaleTo(2);
  });

  it("refuses a bad replica count before sending anything", async () => {
    const before = k8s.requests.length;
    await assert.rejects(target(k8s).scaleTo(-1), InvalidArgumentError);
    await assert.rejects(target(k8s).scaleTo(1.5), InvalidArgumentError);
    assert.equal(k8s.requests.length, before);
  });

  it("404 → NotFoundError naming the namespace and Deployment", async () => {
    await assert.rejects(target(k8s, { deployment: "nope" }).current(), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.match(err.message, /batch-infer\/nope/);
      assert.match(err.message, /BATCH_INFER_K8S_DEPLOYMENT/);
      return true;
    });
  });

  it("401 → a non-retryable error that names the dynamic group's OKE policy", async () => {
    await assert.rejects(target(k8s, { clusterId: OTHER_CLUSTER }).scaleTo(4), (err: unknown) => {
      assert.ok(err instanceof PipelineError);
      assert.equal(err.retryable, false);
      assert.equal(err.details.status, 401);
      assert.match(err.message, /dynamic group needs the OKE policy/);
      assert.match(err.message, /target\.cluster\.id/);
      assert.match(err.message, /README "IAM per component"/);
      return true;
    });
    const unsigned = await fetch(
      `${k8s.url}/apis/apps/v1/namespaces/${NS}/deployments/${WORKER}/scale`,
    );
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { reason: string }).reason, "Unauthorized");
    assert.notEqual(k8s.replicas(NS, WORKER), 4);
  });

  it("403 (RBAC) → a non-retryable error naming the Role it needs", async () => {
    const rbac = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [{ namespace: NS, name: WORKER, replicas: 1 }],
      authorize: ({ verb }) => verb === "get",
    });
    try {
      const t = target(rbac);
      assert.equal(await t.current(), 1);
      await assert.rejects(t.scaleTo(2), (err: unknown) => {
        assert.ok(err instanceof PipelineError);
        assert.equal(err.retryable, false);
        assert.match(err.message, /cannot patch resource "deployments\/scale"/);
        assert.match(err.message, /Role allowing get and patch on deployments\/scale/);
        return true;
      });
      assert.equal(rbac.replicas(NS, WORKER), 1);
      // With its identity known, the error names the subject a RoleBinding must name.
      const named = new OkeDeploymentTarget({
        apiServer: rbac.url,
        namespace: NS,
        deployment: WORKER,
        token: tokenFor(),
        identity: {
          mode: "resource_principal",
          principal: "fnfunc ocid1.fnfunc.oc1..scaler",
          kubernetesUser: "ocid1.fnfunc.oc1..scaler",
        },
      });
      await assert.rejects(named.scaleTo(2), (err: unknown) => {
        assert.ok(err instanceof PipelineError);
        assert.match(err.message, /to User "ocid1\.fnfunc\.oc1\.\.scaler"/);
        assert.equal(err.details.kubernetesUser, "ocid1.fnfunc.oc1..scaler");
        return true;
      });
    } finally {
      await rbac.close();
    }
  });

  it("5xx and network failures → retryable StoreUnavailableError", async () => {
    const remove = k8s.inject(() => ({
      status: 503,
      body: { kind: "Status", message: "etcd leader changed" },
    }));
    try {
      await assert.rejects(target(k8s).current(), (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.equal(err.retryable, true);
        assert.match(err.message, /503 etcd leader changed/);
        return true;
      });
    } finally {
      remove();
    }
    const gone = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [],
    });
    const url = gone.url;
    await gone.close();
    const t = new OkeDeploymentTarget({
      apiServer: url,
      namespace: NS,
      deployment: WORKER,
      token: tokenFor(),
    });
    await assert.rejects(
      t.current(),
      (err: unknown) => err instanceof StoreUnavailableError && err.retryable,
    );
  });

  it("the stand-in takes only merge patches, and validates replicas like the API server", async () => {
    const token = await tokenFor()();
    const url = `${k8s.url}/apis/apps/v1/namespaces/${NS}/deployments/${WORKER}/scale`;
    const patch = (contentType: string, body: unknown) =>
      fetch(url, {
        method: "PATCH",
        headers: { authorization: `Bearer ${token}`, "content-type": contentType },
        body: JSON.stringify(body),
      });
    const changes = k8s.history.length;
    assert.equal((await patch("application/json", { spec: { replicas: 2 } })).status, 415);
    assert.equal(
      (await patch("application/merge-patch+json", { spec: { replicas: -1 } })).status,
      422,
    );
    assert.equal(
      (
        await patch("application/merge-patch+json", {
          metadata: { resourceVersion: "999" },
          spec: { replicas: 2 },
        })
      ).status,
      409,
    );
    assert.equal(k8s.history.length, changes);
  });

  it("https with the cluster's CA (and refused without it)", async (t) => {
    const tls = selfSignedCert(tmp);
    if (!tls) {
      t.skip("openssl is not available to make a certificate");
      return;
    }
    const secure = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [{ namespace: NS, name: WORKER, replicas: 2 }],
      tls,
    });
    try {
      assert.match(secure.url, /^https:/);
      const base = { apiServer: secure.url, namespace: NS, deployment: WORKER, token: tokenFor() };
      const withCa = new OkeDeploymentTarget({ ...base, caPem: tls.cert });
      assert.equal(await withCa.current(), 2);
      await withCa.scaleTo(1);
      assert.equal(secure.replicas(NS, WORKER), 1);
      await assert.rejects(new OkeDeploymentTarget(base).current(), StoreUnavailableError);
    } finally {
      await secure.close();
    }
  });
});

describe("createOkeScalerTarget", () => {
  const noLookup: ClusterLookup = {
    getCluster: () => Promise.reject(new Error("getCluster should not be called")),
    createKubeconfig: () => Promise.reject(new Error("createKubeconfig should not be called")),
  };

  it("fails fast naming the missing variable", async () => {
    await assert.rejects(createOkeScalerTarget({}, auth), /BATCH_INFER_OKE_CLUSTER_ID is required/);
    await assert.rejects(
      createOkeScalerTarget(
        { BATCH_INFER_OKE_CLUSTER_ID: CLUSTER },
        { ...auth, region: undefined },
      ),
      (err: unknown) =>
        err instanceof InvalidArgumentError && /OCI_REGION is required/.test(err.message),
    );
    await assert.rejects(
      createOkeScalerTarget(
        {
          BATCH_INFER_OKE_CLUSTER_ID: CLUSTER,
          BATCH_INFER_K8S_API: "https://x",
          BATCH_INFER_K8S_CA_FILE: path.join(tmp, "none.pem"),
        },
        auth,
      ),
      /BATCH_INFER_K8S_CA_FILE/,
    );
  });

  it("uses BATCH_INFER_K8S_API and the default namespace and Deployment without asking ContainerEngine", async () => {
    const k8s = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [{ namespace: NS, name: WORKER, replicas: 3 }],
    });
    try {
      const t = await createOkeScalerTarget(
        { BATCH_INFER_OKE_CLUSTER_ID: CLUSTER, BATCH_INFER_K8S_API: k8s.url, OCI_REGION: REGION },
        auth,
        { containerEngine: noLookup },
      );
      assert.equal(await t.current(), 3);
    } finally {
      await k8s.close();
    }
  });

  describe("looking the cluster up in ContainerEngine (OCI stand-in)", () => {
    let oci: OciStandIn;
    let secure: KubernetesStandIn | undefined;
    let caPem = "";
    before(async () => {
      oci = await startStandIn(creds);
      const tls = selfSignedCert(await mkdtemp(path.join(tmp, "ce-")));
      // Without openssl the tests below skip themselves.
      if (!tls) return;
      caPem = tls.cert;
      secure = await startKubernetesStandIn({
        trustedKeys: trusted,
        clusterId: CLUSTER,
        region: REGION,
        deployments: [{ namespace: "jobs", name: "scorer", replicas: 1 }],
        tls,
      });
      mountContainerEngine(oci, [
        {
          id: CLUSTER,
          region: REGION,
          // OCI reports endpoints as host:port; the public one here is unreachable on purpose.
          endpoints: {
            privateEndpoint: new URL(secure.url).host,
            publicEndpoint: "192.0.2.1:6443",
          },
          caPem,
        },
      ]);
    });
    after(async () => {
      await secure?.close();
      await oci.close();
    });

    it("API server from the private endpoint, CA from the kubeconfig", async (t) => {
      if (!secure) return t.skip("openssl is not available");
      const env = {
        BATCH_INFER_OKE_CLUSTER_ID: CLUSTER,
        BATCH_INFER_K8S_NAMESPACE: "jobs",
        BATCH_INFER_K8S_DEPLOYMENT: "scorer",
        OCI_CONTAINERENGINE_ENDPOINT: oci.url,
      };
      const viaEnv = await createOkeScalerTarget(env, auth);
      assert.equal(await viaEnv.current(), 1);
      await viaEnv.scaleTo(2);
      assert.equal(secure.replicas("jobs", "scorer"), 2);
      const seen = oci.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
      assert.ok(seen.includes(`GET /20180222/clusters/${CLUSTER} 200`));
      assert.ok(seen.includes(`POST /20180222/clusters/${CLUSTER}/kubeconfig/content 200`));

      // An injected client does the same; a CA file skips the kubeconfig.
      const caFile = path.join(tmp, "ca.pem");
      await writeFile(caFile, caPem);
      const client = createClient(ContainerEngineClient, auth, { endpoint: oci.url });
      const before = oci.requests.length;
      const withFile = await createOkeScalerTarget(
        { ...env, OCI_CONTAINERENGINE_ENDPOINT: undefined, BATCH_INFER_K8S_CA_FILE: caFile },
        auth,
        { containerEngine: client },
      );
      assert.equal(await withFile.current(), 2);
      assert.deepEqual(
        oci.requests.slice(before).map((r) => r.path),
        [`/20180222/clusters/${CLUSTER}`],
      );
    });

    it("an unknown (or forbidden) cluster → a retryable configuration error naming it", async (t) => {
      if (!secure) return t.skip("openssl is not available");
      await assert.rejects(
        createOkeScalerTarget(
          { BATCH_INFER_OKE_CLUSTER_ID: OTHER_CLUSTER, OCI_CONTAINERENGINE_ENDPOINT: oci.url },
          auth,
        ),
        (err: unknown) =>
          err instanceof PipelineError &&
          err.retryable &&
          err.details.notAuthorizedOrNotFound === true &&
          err.message.includes(OTHER_CLUSTER),
      );
    });
  });
});

describe("scaler handler over a real queue and the OKE Deployment", () => {
  let k8s: KubernetesStandIn;
  let queue: SqliteTaskQueue;
  const policy: ScalingPolicy = {
    ...DEFAULT_POLICY,
    targetPerReplica: 2,
    maxReplicas: 4,
    cooldownSeconds: 60,
  };
  before(async () => {
    k8s = await startKubernetesStandIn({
      trustedKeys: trusted,
      clusterId: CLUSTER,
      region: REGION,
      deployments: [{ namespace: NS, name: WORKER, replicas: 0 }],
    });
    queue = new SqliteTaskQueue({
      path: path.join(tmp, "queue.db"),
      queue: "partitions",
      maxDeliveries: 5,
    });
  });
  after(async () => {
    queue.close();
    await k8s.close();
  });

  function scaler(
    t: OkeDeploymentTarget,
    clock: { now: number },
    saved: { lastActiveAt?: number },
  ) {
    return createScalerHandler(
      {
        queue,
        target: t,
        log: silentLogger,
        now: () => clock.now,
        state: {
          get: async () => saved.lastActiveAt,
          set: async (v) => {
            saved.lastActiveAt = v;
          },
        },
      },
      policy,
    );
  }

  it("scales up from zero under backlog, dry-runs without changing anything, scales down only after the cooldown", async () => {
    const clock = { now: 0 };
    const saved: { lastActiveAt?: number } = {};
    const scale = scaler(target(k8s), clock, saved);
    const patches = () => k8s.requests.filter((r) => r.method === "PATCH").length;

    // Empty queue at zero: nothing to do, nothing sent.
    const idle = await scale({});
    assert.equal(idle.replicas, 0);
    assert.equal(idle.applied, false);
    assert.equal(patches(), 0);

    // Backlog of 5: ceil(5 / 2) = 3.
    await queue.send(Array.from({ length: 5 }, (_, i) => ({ body: `p${i}` })));
    clock.now = 1_000;
    const up = await scale({});
    assert.deepEqual(
      { replicas: up.replicas, previous: up.previous, applied: up.applied, visible: up.visible },
      { replicas: 3, previous: 0, applied: true, visible: 5 },
    );
    assert.match(up.reason, /ceil\(\(5 visible \+ 0 in flight\) \/ 2\) = 3/);
    assert.equal(k8s.replicas(NS, WORKER), 3);
    assert.equal(saved.lastActiveAt, 1_000);

    // Dry run at 12 deep: reports 4 (clamped) and why, changes neither the Deployment nor the cooldown clock.
    await queue.send(Array.from({ length: 7 }, (_, i) => ({ body: `q${i}` })));
    clock.now = 2_000;
    const dry = await scale({ dryRun: true });
    assert.deepEqual(
      { replicas: dry.replicas, previous: dry.previous, applied: dry.applied, dryRun: dry.dryRun },
      { replicas: 4, previous: 3, applied: false, dryRun: true },
    );
    assert.match(dry.reason, /12 visible.*clamped to 0\.\.4/);
    assert.equal(k8s.replicas(NS, WORKER), 3);
    assert.equal(saved.lastActiveAt, 1_000);
    assert.equal(patches(), 1);

    clock.now = 3_000;
    assert.equal((await scale({})).replicas, 4);
    assert.equal(k8s.replicas(NS, WORKER), 4);

    // Workers take all 12 and finish 9: 3 in flight keeps 3 replicas (not ceil(3 / 2) = 2).
    const taken = await queue.receive({ max: 12, visibilitySeconds: 600 });
    assert.equal(taken.length, 12);
    for (const m of taken.slice(0, 9)) await queue.delete(m.receipt);
    clock.now = 4_000;
    const busy = await scale({});
    assert.equal(busy.inFlight, 3);
    assert.equal(busy.replicas, 3);
    assert.match(busy.reason, /raised to 3 partitions in flight/);
    assert.equal(k8s.replicas(NS, WORKER), 3);

    // Queue drained: hold during the cooldown, then go to zero.
    for (const m of taken.slice(9)) await queue.delete(m.receipt);
    clock.now = 4_000 + 59_000;
    const holding = await scale({});
    assert.equal(holding.replicas, 3);
    assert.equal(holding.applied, false);
    assert.match(holding.reason, /cooldown/);
    assert.equal(k8s.replicas(NS, WORKER), 3);

    clock.now = 4_000 + 60_000;
    const down = await scale({});
    assert.equal(down.replicas, 0);
    assert.equal(down.applied, true);
    assert.match(down.reason, /cooled down/);
    assert.equal(k8s.replicas(NS, WORKER), 0);

    assert.deepEqual(
      k8s.history.map(({ from, to }) => [from, to]),
      [
        [0, 3],
        [3, 4],
        [4, 3],
        [3, 0],
      ],
    );
  });

  it("a 401 from the API surfaces as the IAM error (thrown, and as Fn's rejection)", async () => {
    const clock = { now: 100_000 };
    await queue.send([{ body: "late" }]);
    const scale = scaler(target(k8s, { clusterId: OTHER_CLUSTER }), clock, {});
    await assert.rejects(scale({}), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /dynamic group needs the OKE policy/);
      return true;
    });
    const answer = (await guardHandler(() => scale)({})) as Rejection;
    assert.equal(answer.ok, false);
    assert.equal(answer.error.code, "STORE_UNAVAILABLE");
    assert.equal(answer.error.retryable, false);
    assert.match(answer.error.message, /README "IAM per component"/);
    assert.equal(k8s.replicas(NS, WORKER), 0);
  });
});
