import { InvalidArgumentError } from "../../../src/core/errors.ts";
import type { DeployConfig, FunctionName } from "./config.ts";
import type { PlanContext } from "./context.ts";
import { ph } from "./placeholders.ts";

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
      // The corpus rule's function runs the refresh handler (src/refresh/).
      return {
        BATCH_INFER_FUNCTION: "refresh",
        BATCH_INFER_REFRESH: JSON.stringify(refreshSettingsOf(c)),
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

/**
 * The refresh function's settings (BATCH_INFER_REFRESH) from `embeddingRefresh`: the
 * corpus, and from its jobDefaults the model, the output location and job sizes.
 */
export function refreshSettingsOf(c: DeployConfig): Record<string, unknown> {
  const e = c.embeddingRefresh;
  const jd = (e?.jobDefaults ?? {}) as {
    model?: { descriptor?: string };
    output?: { bucket?: string; prefix?: string };
  } & Record<string, unknown>;
  const job = Object.fromEntries(
    ["partitionRecords", "checkpointEvery", "visibilitySeconds", "maxAttempts"]
      .filter((k) => jd[k] !== undefined)
      .map((k) => [k, jd[k]]),
  );
  return {
    corpus: { bucket: e?.bucket ?? "", prefix: e?.prefix ?? "" },
    output: { bucket: jd.output?.bucket ?? "", prefix: jd.output?.prefix ?? "embeddings" },
    model: jd.model?.descriptor ?? "",
    ...(Object.keys(job).length > 0 ? { job } : {}),
  };
}
