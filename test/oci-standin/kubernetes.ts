/**
 * A stand-in for an OKE cluster's Kubernetes API (the worker Deployment's scale
 * subresource), plus ContainerEngine's getCluster and createKubeconfig mounted
 * on the OCI stand-in.
 *
 * The Kubernetes API is not OCI-signed: it takes `Authorization: Bearer <token>`
 * where the token is an OCI-signed "cluster request" URL (see
 * src/adapters/oci/oke-token.ts). The stand-in checks that token the way OKE
 * does: decode it, check it names this cluster in this region, rebuild the signed
 * request from its query and verify the signature with the same verifier the OCI
 * stand-in uses for every OCI request.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import {
  type Handler,
  type OciStandIn,
  ociError,
  type StandInRequest,
  verifyOciSignature,
} from "./server.ts";

/** How long OKE accepts a token after its signed date. */
export const TOKEN_LIFETIME_MS = 4 * 60_000;

/** What a token must be for. */
export interface TokenExpectation {
  trustedKeys: Map<string, string>;
  clusterId: string;
  region: string;
  /** Epoch ms now. */
  now: number;
}

/**
 * Check an OKE bearer token. Returns the keyId that signed it, or why it is refused.
 */
export function verifyOkeToken(
  token: string,
  expect: TokenExpectation,
): { keyId: string } | { reason: string } {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(token)) return { reason: "token is not base64url" };
  let url: URL;
  try {
    url = new URL(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return { reason: "token does not decode to a URL" };
  }
  const host = `containerengine.${expect.region}.oraclecloud.com`;
  if (url.protocol !== "https:" || url.host !== host) {
    return { reason: `token is for ${url.protocol}//${url.host}, not https://${host}` };
  }
  const requestTarget = `/cluster_request/${expect.clusterId}`;
  if (url.pathname !== requestTarget) {
    return { reason: `token is for ${url.pathname}, not this cluster (${requestTarget})` };
  }
  const authorization = url.searchParams.get("authorization");
  const date = url.searchParams.get("date");
  if (!authorization || !date) return { reason: "token lacks the authorization or date parameter" };
  const signedAt = Date.parse(date);
  if (!Number.isFinite(signedAt)) return { reason: `token date "${date}" is not a date` };
  if (expect.now - signedAt > TOKEN_LIFETIME_MS)
    return { reason: `token expired (signed ${date})` };
  // OKE rebuilds the request the token stands for: GET of the path alone, with
  // the date from the query and the host of the URL.
  return verifyOciSignature(
    {
      method: "GET",
      rawPathAndQuery: url.pathname,
      headers: { authorization, date, host: url.host },
      requireBodySigning: false,
    },
    expect.trustedKeys,
    expect.now,
  );
}

/** A Deployment as the stand-in holds it. */
export interface DeploymentSeed {
  namespace: string;
  name: string;
  replicas: number;
}

/** One change of a Deployment's replicas, for assertions. */
export interface ReplicaChange {
  namespace: string;
  name: string;
  from: number;
  to: number;
  /** The keyId whose token made the change. */
  keyId: string;
  at: number;
}

/** A request the stand-in answered. */
export interface KubeRequestRecord {
  method: string;
  path: string;
  status: number;
  keyId?: string;
}

/** An RBAC decision hook: may `keyId` do `verb` on this Deployment's scale? */
export type Authorizer = (req: {
  keyId: string;
  verb: "get" | "patch";
  namespace: string;
  name: string;
}) => boolean;

/** Fault injection: answer instead of the API (after authentication), or undefined to pass. */
export type KubeInjector = (req: {
  method: string;
  path: string;
}) => { status: number; body: unknown } | undefined;

/** Options for {@link startKubernetesStandIn}. */
export interface KubernetesStandInOptions {
  /** keyId → public key PEM, as OCI IAM would know them. */
  trustedKeys: Map<string, string>;
  /** The cluster this API server belongs to (tokens must name it). */
  clusterId: string;
  region: string;
  deployments: DeploymentSeed[];
  /** Serve https with this certificate (what OKE does, with its own CA). */
  tls?: { cert: string; key: string };
  /** RBAC (default: every authenticated caller may get and patch). */
  authorize?: Authorizer;
  /** Clock in epoch ms (token expiry). */
  now?: () => number;
  /**
   * IAM: the OCI stand-in whose principals and policies decide whether a token's
   * key may use the cluster (CLUSTER_USE on `target.cluster.id`, UNCONFIRMED which
   * permission OKE checks). A refusal is 401, as for a bad token.
   */
  iam?: { oci: OciStandIn; compartmentId: string };
}

interface Deployment {
  namespace: string;
  name: string;
  uid: string;
  replicas: number;
  resourceVersion: number;
  createdAt: string;
}

/** Kubernetes' error body. */
function status(code: number, reason: string, message: string, details?: object) {
  return {
    status: code,
    body: {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    },
  };
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/;

/** The loopback Kubernetes API server. */
export class KubernetesStandIn {
  /** `http(s)://127.0.0.1:PORT`. */
  url = "";
  /** Every replica change, in order. */
  readonly history: ReplicaChange[] = [];
  readonly requests: KubeRequestRecord[] = [];
  private readonly deployments = new Map<string, Deployment>();
  private readonly injectors: KubeInjector[] = [];
  private server: http.Server | https.Server | undefined;

  constructor(private readonly options: KubernetesStandInOptions) {
    for (const d of options.deployments) this.addDeployment(d);
  }

  /** Create (or replace) a Deployment. */
  addDeployment(d: DeploymentSeed): void {
    this.deployments.set(`${d.namespace}/${d.name}`, {
      ...d,
      uid: randomUUID(),
      resourceVersion: 1,
      createdAt: new Date().toISOString(),
    });
  }

  /** A Deployment's spec.replicas (undefined when it doesn't exist). */
  replicas(namespace: string, name: string): number | undefined {
    return this.deployments.get(`${namespace}/${name}`)?.replicas;
  }

  /** Add a fault injector; returns its remover. */
  inject(injector: KubeInjector): () => void {
    this.injectors.push(injector);
    return () => {
      const i = this.injectors.indexOf(injector);
      if (i >= 0) this.injectors.splice(i, 1);
    };
  }

  /** Listen on a free 127.0.0.1 port (https when `tls` was given). */
  async listen(): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, status(500, "InternalError", String(err)));
        else res.destroy();
      });
    };
    const tls = this.options.tls;
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address() as AddressInfo;
    this.url = `${tls ? "https" : "http"}://127.0.0.1:${addr.port}`;
    return this;
  }

  /** Stop listening and drop open connections. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private scale(d: Deployment) {
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: {
        name: d.name,
        namespace: d.namespace,
        uid: d.uid,
        resourceVersion: String(d.resourceVersion),
        creationTimestamp: d.createdAt,
      },
      // ScaleSpec.replicas is omitempty: zero is sent as an empty spec.
      spec: d.replicas === 0 ? {} : { replicas: d.replicas },
      // The stand-in's "controller" converges at once.
      status: { replicas: d.replicas, selector: `app=${d.name}` },
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? "GET";
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const answer = (r: { status: number; body: unknown }, keyId?: string) => {
      this.requests.push({ method, path, status: r.status, ...(keyId ? { keyId } : {}) });
      this.send(res, r);
    };

    const auth = req.headers.authorization ?? "";
    const bearer = /^Bearer (\S+)$/.exec(auth)?.[1];
    const checked = bearer
      ? verifyOkeToken(bearer, {
          trustedKeys: this.options.trustedKeys,
          clusterId: this.options.clusterId,
          region: this.options.region,
          now: this.options.now?.() ?? Date.now(),
        })
      : { reason: "no bearer token" };
    if ("reason" in checked) {
      answer(status(401, "Unauthorized", `Unauthorized: ${checked.reason}`));
      return;
    }
    const { keyId } = checked;
    const iam = this.options.iam;
    if (
      iam &&
      !iam.oci.allows(
        { keyId, principal: iam.oci.principalOf(keyId) },
        "KubernetesApiToken",
        iam.compartmentId,
        { "target.cluster.id": this.options.clusterId },
      )
    ) {
      answer(
        status(401, "Unauthorized", "Unauthorized: the token's principal may not use this cluster"),
      );
      return;
    }

    for (const inj of this.injectors) {
      const injected = inj({ method, path });
      if (injected) {
        answer(injected, keyId);
        return;
      }
    }

    const m = SCALE_PATH.exec(path);
    if (!m) {
      answer(status(404, "NotFound", "the server could not find the requested resource"), keyId);
      return;
    }
    const namespace = decodeURIComponent(m[1] ?? "");
    const name = decodeURIComponent(m[2] ?? "");
    const verb = method === "GET" ? "get" : method === "PATCH" ? "patch" : undefined;
    if (!verb) {
      answer(status(405, "MethodNotAllowed", `${method} is not supported here`), keyId);
      return;
    }
    if (this.options.authorize && !this.options.authorize({ keyId, verb, namespace, name })) {
      answer(
        status(
          403,
          "Forbidden",
          `deployments.apps "${name}" is forbidden: User "${keyId.slice(0, 40)}" cannot ${verb} resource "deployments/scale" in API group "apps" in the namespace "${namespace}"`,
          { name, group: "apps", kind: "deployments" },
        ),
        keyId,
      );
      return;
    }
    const d = this.deployments.get(`${namespace}/${name}`);
    if (!d) {
      answer(
        status(404, "NotFound", `deployments.apps "${name}" not found`, {
          name,
          group: "apps",
          kind: "deployments",
        }),
        keyId,
      );
      return;
    }
    if (verb === "get") {
      answer({ status: 200, body: this.scale(d) }, keyId);
      return;
    }

    const contentType = String(req.headers["content-type"] ?? "")
      .split(";")[0]
      ?.trim()
      .toLowerCase();
    if (contentType !== "application/merge-patch+json") {
      // The real API server also takes strategic-merge and JSON patches; this one
      // holds the adapter to the one type it is meant to send.
      answer(
        status(
          415,
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got "${contentType}")`,
        ),
        keyId,
      );
      return;
    }
    let patch: unknown;
    try {
      patch = JSON.parse(body.toString("utf8"));
    } catch (err) {
      answer(status(400, "BadRequest", `error decoding patch: ${(err as Error).message}`), keyId);
      return;
    }
    if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
      answer(status(400, "BadRequest", "a merge patch must be a JSON object"), keyId);
      return;
    }
    const current = this.scale(d);
    const wantedVersion = (patch as { metadata?: { resourceVersion?: unknown } }).metadata
      ?.resourceVersion;
    if (wantedVersion !== undefined && wantedVersion !== current.metadata.resourceVersion) {
      answer(
        status(
          409,
          "Conflict",
          `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        ),
        keyId,
      );
      return;
    }
    const merged = mergePatch(current, patch) as { spec?: { replicas?: unknown } };
    const replicas = merged.spec?.replicas ?? 0;
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
      answer(
        status(
          422,
          "Invalid",
          `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        ),
        keyId,
      );
      return;
    }
    if (replicas !== d.replicas) {
      this.history.push({
        namespace,
        name,
        from: d.replicas,
        to: replicas,
        keyId,
        at: this.options.now?.() ?? Date.now(),
      });
      d.replicas = replicas;
      d.resourceVersion++;
    }
    answer({ status: 200, body: this.scale(d) }, keyId);
  }

  private send(res: http.ServerResponse, r: { status: number; body: unknown }): void {
    const payload = Buffer.from(JSON.stringify(r.body));
    res.writeHead(r.status, {
      "content-type": "application/json",
      "content-length": String(payload.length),
    });
    res.end(payload);
  }
}

/** Start a Kubernetes API stand-in on a free loopback port. */
export async function startKubernetesStandIn(
  options: KubernetesStandInOptions,
): Promise<KubernetesStandIn> {
  return new KubernetesStandIn(options).listen();
}

/** An OKE cluster as ContainerEngine reports it. */
export interface ClusterRecord {
  id: string;
  name?: string;
  compartmentId?: string;
  region: string;
  /** As OCI reports them: `host:port`, no scheme. */
  endpoints: { kubernetes?: string; publicEndpoint?: string; privateEndpoint?: string };
  /** The cluster CA (what createKubeconfig embeds). */
  caPem: string;
}

const KUBECONFIG_ENDPOINTS: Record<string, keyof ClusterRecord["endpoints"]> = {
  LEGACY_KUBERNETES: "kubernetes",
  PUBLIC_ENDPOINT: "publicEndpoint",
  PRIVATE_ENDPOINT: "privateEndpoint",
};

/**
 * Serve ContainerEngine's GetCluster and CreateKubeconfig for `clusters` on the
 * OCI stand-in (paths as oci-containerengine sends them, under `/20180222`).
 */
export function mountContainerEngine(oci: OciStandIn, clusters: ClusterRecord[]): void {
  const byId = new Map(clusters.map((c) => [c.id, c]));
  const missing = (id: string) =>
    ociError(404, "NotAuthorizedOrNotFound", `Cluster ${id} not found or not authorized`);
  /** The cluster, if it exists and the caller may do `op` on it (CLUSTER_READ / CLUSTER_USE). */
  const find = (req: StandInRequest, op: "GetCluster" | "CreateKubeconfig") => {
    const id = req.params.clusterId ?? "";
    const c = byId.get(id);
    if (!c) return undefined;
    const compartment = c.compartmentId ?? "ocid1.compartment.oc1..standin";
    return oci.allows(req, op, compartment, { "target.cluster.id": id }) ? c : undefined;
  };
  const ce = (method: string, pattern: string, handler: Handler) =>
    oci.route(method, pattern, handler, "containerengine");
  ce("GET", "/20180222/clusters/:clusterId", (req) => {
    const c = find(req, "GetCluster");
    if (!c) return missing(req.params.clusterId ?? "");
    return {
      status: 200,
      headers: { etag: `"${c.id}-1"` },
      body: {
        id: c.id,
        name: c.name ?? "batch-infer",
        compartmentId: c.compartmentId ?? "ocid1.compartment.oc1..standin",
        kubernetesVersion: "v1.30.1",
        lifecycleState: "ACTIVE",
        endpoints: c.endpoints,
      },
    };
  });
  ce("POST", "/20180222/clusters/:clusterId/kubeconfig/content", (req) => {
    const c = find(req, "CreateKubeconfig");
    if (!c) return missing(req.params.clusterId ?? "");
    let details: { tokenVersion?: string; endpoint?: string };
    try {
      details = req.body.length ? JSON.parse(req.body.toString("utf8")) : {};
    } catch {
      return ociError(400, "InvalidParameter", "body is not JSON");
    }
    if (details.tokenVersion !== undefined && !["1.0.0", "2.0.0"].includes(details.tokenVersion)) {
      return ociError(400, "InvalidParameter", `unknown tokenVersion ${details.tokenVersion}`);
    }
    const kind = details.endpoint ?? "LEGACY_KUBERNETES";
    const field = KUBECONFIG_ENDPOINTS[kind];
    const server = field ? c.endpoints[field] : undefined;
    if (!server) {
      return ociError(400, "InvalidParameter", `cluster ${c.id} has no ${kind} endpoint`);
    }
    const short = c.id.slice(-11);
    const yaml = [
      "---",
      "apiVersion: v1",
      'kind: ""',
      "clusters:",
      `- name: cluster-${short}`,
      "  cluster:",
      `    server: https://${server}`,
      `    certificate-authority-data: ${Buffer.from(c.caPem).toString("base64")}`,
      "users:",
      `- name: user-${short}`,
      "  user:",
      "    exec:",
      "      apiVersion: client.authentication.k8s.io/v1beta1",
      "      command: oci",
      `      args: [ce, cluster, generate-token, --cluster-id, ${c.id}, --region, ${c.region}]`,
      "contexts:",
      `- name: context-${short}`,
      "  context:",
      `    cluster: cluster-${short}`,
      `    user: user-${short}`,
      `current-context: context-${short}`,
      "",
    ].join("\n");
    return { status: 200, headers: { "content-type": "application/octet-stream" }, body: yaml };
  });
}
