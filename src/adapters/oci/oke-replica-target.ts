/**
 * ReplicaTarget for OCI: the worker Deployment's `scale` subresource on the OKE
 * cluster's Kubernetes API, authenticated with an OKE token (see oke-token.ts).
 *
 * Only the scale subresource is touched (never the Deployment spec), so RBAC can
 * grant exactly `get`/`patch` on `deployments/scale` and nothing else.
 */
import http from "node:http";
import https from "node:https";
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  type PipelineError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import type { ReplicaTarget } from "../../ports/replica-target.ts";
import type { OciIdentity } from "./auth.ts";
import { cachedOkeToken } from "./oke-token.ts";

/** Options for {@link OkeDeploymentTarget}. */
export interface OkeDeploymentTargetOptions {
  /** The cluster's API server, `https://10.0.0.5:6443` (or `http://127.0.0.1:PORT` in tests). */
  apiServer: string;
  namespace: string;
  deployment: string;
  /** A current bearer token; wrap the generator in {@link cachedOkeToken}. */
  token: () => Promise<string>;
  /** The cluster's CA: OKE serves its API with a certificate from its own CA, not a public one. */
  caPem?: string;
  /** Send requests with this instead of node:http(s) (tests; it cannot take `caPem`). */
  fetchImpl?: typeof fetch;
  /** Give up on a request after this long (default 10 s). */
  timeoutMs?: number;
  /** Who the token is for: named, with the Kubernetes subject to bind, when the API refuses it. */
  identity?: OciIdentity;
}

/** Largest API answer read (a Scale or a Status is well under 1 KiB). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

interface RawResponse {
  status: number;
  text: string;
}

/** One request over node:http or node:https, trusting `ca` (when given) instead of the public roots. */
function nodeRequest(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; ca?: string },
  timeoutMs: number,
): Promise<RawResponse> {
  const secure = url.protocol === "https:";
  const headers = { ...init.headers };
  if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body));
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      {
        method: init.method,
        headers,
        timeout: timeoutMs,
        ...(secure && init.ca ? { ca: init.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error("answer larger than 1 MiB"));
          else chunks.push(chunk);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The `message` of a Kubernetes `Status` answer, else the raw text (trimmed). */
function statusMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON: a proxy or load balancer answered
  }
  return text.slice(0, 300).trim();
}

/**
 * The OKE worker Deployment as a {@link ReplicaTarget}: `current()` reads and
 * `scaleTo()` merge-patches `/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`.
 * Kubernetes then stops surplus pods with SIGTERM, which the workers answer by
 * checkpointing and handing their partition back.
 *
 * @example
 * const target = new OkeDeploymentTarget({
 *   apiServer: "https://10.0.0.5:6443", namespace: "batch-infer", deployment: "batch-infer-worker",
 *   token: cachedOkeToken(() => generateOkeToken({ auth, clusterId, region })), caPem,
 * });
 * await target.scaleTo(3);
 */
export class OkeDeploymentTarget implements ReplicaTarget {
  private readonly url: URL;
  private readonly what: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: OkeDeploymentTargetOptions) {
    let base: URL;
    try {
      base = new URL(options.apiServer);
    } catch {
      throw new InvalidArgumentError(
        `Kubernetes API server "${options.apiServer}" is not a URL (BATCH_INFER_K8S_API)`,
      );
    }
    if (base.protocol !== "https:" && base.protocol !== "http:") {
      throw new InvalidArgumentError(
        `Kubernetes API server "${options.apiServer}" must be https:// (BATCH_INFER_K8S_API)`,
      );
    }
    if (!DNS_LABEL.test(options.namespace)) {
      throw new InvalidArgumentError(
        `"${options.namespace}" is not a Kubernetes namespace name (BATCH_INFER_K8S_NAMESPACE)`,
      );
    }
    if (!DNS_SUBDOMAIN.test(options.deployment)) {
      throw new InvalidArgumentError(
        `"${options.deployment}" is not a Kubernetes Deployment name (BATCH_INFER_K8S_DEPLOYMENT)`,
      );
    }
    // Keep a path prefix on the server URL (API proxies mount the cluster under one).
    const prefix = base.pathname.replace(/\/+$/, "");
    this.url = new URL(
      `${prefix}/apis/apps/v1/namespaces/${options.namespace}/deployments/${options.deployment}/scale`,
      base,
    );
    this.what = `Deployment ${options.namespace}/${options.deployment} on ${base.origin}`;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** `spec.replicas` of the Deployment's Scale. */
  async current(): Promise<number> {
    const scale = await this.call("GET", "reading the scale of");
    const spec = (scale as { spec?: { replicas?: unknown } } | null)?.spec;
    // ScaleSpec.replicas is omitempty: a Deployment at zero answers `"spec": {}`.
    const replicas = spec?.replicas ?? 0;
    if (typeof replicas !== "number" || !Number.isSafeInteger(replicas) || replicas < 0) {
      throw new StoreUnavailableError(
        `${this.what}: the Scale answer has no usable spec.replicas (${JSON.stringify(spec)})`,
        { retryable: false },
      );
    }
    return replicas;
  }

  /** Merge-patch `spec.replicas`; Kubernetes picks the pods to stop. */
  async scaleTo(replicas: number): Promise<void> {
    if (!Number.isSafeInteger(replicas) || replicas < 0) {
      throw new InvalidArgumentError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    await this.call("PATCH", "scaling", JSON.stringify({ spec: { replicas } }));
  }

  private async call(method: "GET" | "PATCH", doing: string, body?: string): Promise<unknown> {
    const what = `${doing} ${this.what}`;
    const token = await this.options.token();
    const headers: Record<string, string> = {
      accept: "application/json",
      authorization: `Bearer ${token}`,
    };
    if (body !== undefined) headers["content-type"] = "application/merge-patch+json";
    let res: RawResponse;
    try {
      res = await this.send(method, headers, body);
    } catch (err) {
      throw new StoreUnavailableError(
        `${what}: ${(err as Error).message} (is the API server reachable from the function's subnet, and is the cluster CA right?)`,
        { cause: err },
      );
    }
    if (res.status >= 200 && res.status < 300) {
      try {
        return JSON.parse(res.text) as unknown;
      } catch (err) {
        throw new StoreUnavailableError(`${what}: the answer is not JSON`, { cause: err });
      }
    }
    throw this.failure(res, what);
  }

  private async send(
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<RawResponse> {
    const fetchImpl = this.options.fetchImpl;
    if (!fetchImpl) {
      return nodeRequest(
        this.url,
        {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(this.options.caPem ? { ca: this.options.caPem } : {}),
        },
        this.timeoutMs,
      );
    }
    const res = await fetchImpl(this.url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  }

  /** The Kubernetes subject a RoleBinding must name for this identity, as far as it is known. */
  private subject(): string {
    const user = this.options.identity?.kubernetesUser;
    const who = this.options.identity?.principal ?? "the scaler's OCI identity";
    return user
      ? `User "${user}" (${who}; for a function OKE may map the token to its dynamic group's OCID instead, UNCONFIRMED: bind that as a Group too)`
      : `the Kubernetes user OKE maps ${who} to`;
  }

  private failure(res: RawResponse, what: string): PipelineError {
    const { namespace, deployment } = this.options;
    const message = statusMessage(res.text);
    const detail = `${what}: ${res.status} ${message}`.trim();
    const opts = {
      details: {
        status: res.status,
        namespace,
        deployment,
        ...(this.options.identity ? { principal: this.options.identity.principal } : {}),
        ...(this.options.identity?.kubernetesUser
          ? { kubernetesUser: this.options.identity.kubernetesUser }
          : {}),
      },
    };
    switch (res.status) {
      case 401:
        return new StoreUnavailableError(
          `${detail}. The API server did not accept the OKE token of ${this.options.identity?.principal ?? "the scaler"}: ` +
            `its dynamic group needs the OKE policy ("Allow dynamic-group <scaler> to use clusters in compartment <c> where target.cluster.id = '<cluster>'"); see README "IAM per component"`,
          { ...opts, retryable: false },
        );
      case 403:
        return new StoreUnavailableError(
          `${detail}. Bind a Role allowing get and patch on deployments/scale of ${deployment} in namespace ${namespace} to ` +
            `${this.subject()}; see README "IAM per component"`,
          { ...opts, retryable: false },
        );
      case 404:
        return new NotFoundError(
          `${detail}. No Deployment ${deployment} in namespace ${namespace}: check BATCH_INFER_K8S_NAMESPACE and BATCH_INFER_K8S_DEPLOYMENT`,
          opts,
        );
      case 409:
        return new ConflictError(detail, opts);
      case 429:
        return new StoreUnavailableError(detail, opts);
      default:
        return res.status >= 500
          ? new StoreUnavailableError(detail, opts)
          : new InvalidArgumentError(detail, opts);
    }
  }
}
