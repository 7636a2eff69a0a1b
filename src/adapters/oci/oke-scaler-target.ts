/**
 * The scaler function's ReplicaTarget, from its configuration: the OKE cluster named
 * by BATCH_INFER_OKE_CLUSTER_ID is looked up with the Container Engine API for its
 * Kubernetes endpoint and CA (or given them directly), and the worker Deployment is
 * scaled through {@link OkeDeploymentTarget}.
 */
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { ContainerEngineClient, models } from "oci-containerengine";
import { InvalidArgumentError } from "../../core/errors.ts";
import { type OciAuth, ociIdentity } from "./auth.ts";
import { createClient } from "./clients.ts";
import { mapOciError } from "./errors.ts";
import { MAX_RESPONSE_BYTES, OkeDeploymentTarget } from "./oke-replica-target.ts";
import { cachedOkeToken, generateOkeToken } from "./oke-token.ts";

/** The parts of ContainerEngineClient the factory uses (tests pass a client pointed at the stand-in). */
export type ClusterLookup = Pick<ContainerEngineClient, "getCluster" | "createKubeconfig">;

/** Overrides for {@link createOkeScalerTarget}. */
export interface OkeScalerTargetDeps {
  containerEngine?: ClusterLookup;
  fetchImpl?: typeof fetch;
  /** Clock for token dates (tests). */
  now?: () => Date;
}

function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const v = env[name];
  if (!v) throw new InvalidArgumentError(`environment variable ${name} is required (${hint})`);
  return v;
}

/** An endpoint as the cluster reports it (`10.0.0.5:6443`, no scheme) as a URL. */
function endpointUrl(endpoint: string): string {
  return /^https?:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`;
}

async function readAll(value: unknown, limit: number): Promise<string> {
  if (typeof value === "string") return value;
  const stream =
    value && typeof (value as WebReadableStream).getReader === "function"
      ? Readable.fromWeb(value as WebReadableStream)
      : (value as Readable);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > limit) throw new Error(`kubeconfig larger than ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The cluster CA from a kubeconfig's `certificate-authority-data` (base64 PEM). */
function caFromKubeconfig(kubeconfig: string): string | undefined {
  const m = /certificate-authority-data:\s*["']?([A-Za-z0-9+/=]+)/.exec(kubeconfig);
  return m?.[1] ? Buffer.from(m[1], "base64").toString("utf8") : undefined;
}

/**
 * The scaler's target on OCI, from the function's config:
 * `BATCH_INFER_OKE_CLUSTER_ID` (required), `OCI_REGION` (or the resource
 * principal's region), `BATCH_INFER_K8S_API` (default: the cluster's private
 * endpoint, else its public one, from ContainerEngine getCluster),
 * `BATCH_INFER_K8S_NAMESPACE` (default `batch-infer`), `BATCH_INFER_K8S_DEPLOYMENT`
 * (default `batch-infer-worker`), `BATCH_INFER_K8S_CA_FILE` (default: the CA in
 * the cluster's kubeconfig, for https servers). `OCI_CONTAINERENGINE_ENDPOINT`
 * overrides the ContainerEngine endpoint.
 *
 * @example
 * const target = await createOkeScalerTarget(process.env, await ociAuthFromEnv());
 */
export async function createOkeScalerTarget(
  env: NodeJS.ProcessEnv,
  auth: OciAuth,
  deps: OkeScalerTargetDeps = {},
): Promise<OkeDeploymentTarget> {
  const clusterId = required(
    env,
    "BATCH_INFER_OKE_CLUSTER_ID",
    "the OCID of the OKE cluster that runs the worker Deployment",
  );
  const region = env.OCI_REGION || auth.region;
  if (!region) {
    throw new InvalidArgumentError(
      "environment variable OCI_REGION is required (the cluster's region, e.g. us-ashburn-1)",
    );
  }
  const namespace = env.BATCH_INFER_K8S_NAMESPACE || "batch-infer";
  const deployment = env.BATCH_INFER_K8S_DEPLOYMENT || "batch-infer-worker";
  let apiServer = env.BATCH_INFER_K8S_API || undefined;
  let caPem: string | undefined;
  const caFile = env.BATCH_INFER_K8S_CA_FILE;
  if (caFile) {
    try {
      caPem = await readFile(caFile, "utf8");
    } catch (err) {
      throw new InvalidArgumentError(
        `cannot read BATCH_INFER_K8S_CA_FILE ${caFile}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  const needCa = !caPem && (!apiServer || apiServer.startsWith("https:"));
  if (!apiServer || needCa) {
    const client =
      deps.containerEngine ??
      createClient(ContainerEngineClient, auth, { endpoint: env.OCI_CONTAINERENGINE_ENDPOINT });
    let endpoints: models.ClusterEndpoints | undefined;
    try {
      endpoints = (await client.getCluster({ clusterId })).cluster.endpoints;
    } catch (err) {
      throw mapOciError(err, `OKE getCluster ${clusterId}`, {
        principal: ociIdentity(auth, env).principal,
        resource: `OKE cluster ${clusterId} (read/use clusters)`,
      });
    }
    // Private first: a function runs in a VCN subnet, where the private endpoint needs no NAT.
    const kind = endpoints?.privateEndpoint
      ? models.CreateClusterKubeconfigContentDetails.Endpoint.PrivateEndpoint
      : endpoints?.publicEndpoint
        ? models.CreateClusterKubeconfigContentDetails.Endpoint.PublicEndpoint
        : models.CreateClusterKubeconfigContentDetails.Endpoint.LegacyKubernetes;
    const endpoint =
      endpoints?.privateEndpoint ?? endpoints?.publicEndpoint ?? endpoints?.kubernetes;
    if (!apiServer) {
      if (!endpoint) {
        throw new InvalidArgumentError(
          `OKE cluster ${clusterId} reports no API endpoint; set BATCH_INFER_K8S_API`,
        );
      }
      apiServer = endpointUrl(endpoint);
    }
    if (needCa && apiServer.startsWith("https:")) {
      let kubeconfig: string;
      try {
        const res = await client.createKubeconfig({
          clusterId,
          createClusterKubeconfigContentDetails: { tokenVersion: "2.0.0", endpoint: kind },
        });
        kubeconfig = await readAll(res.value, MAX_RESPONSE_BYTES);
      } catch (err) {
        throw mapOciError(err, `OKE createKubeconfig ${clusterId} (for the cluster CA)`, {
          principal: ociIdentity(auth, env).principal,
          resource: `OKE cluster ${clusterId} (use clusters)`,
        });
      }
      caPem = caFromKubeconfig(kubeconfig);
      if (!caPem) {
        throw new InvalidArgumentError(
          `the kubeconfig of OKE cluster ${clusterId} has no certificate-authority-data; set BATCH_INFER_K8S_CA_FILE`,
        );
      }
    }
  }

  const now = deps.now;
  return new OkeDeploymentTarget({
    apiServer,
    namespace,
    deployment,
    identity: ociIdentity(auth, env),
    token: cachedOkeToken(
      () => generateOkeToken({ auth, clusterId, region, ...(now ? { now } : {}) }),
      now ? () => now().getTime() : Date.now,
    ),
    ...(caPem ? { caPem } : {}),
    ...(deps.fetchImpl ? { fetchImpl: deps.fetchImpl } : {}),
  });
}
