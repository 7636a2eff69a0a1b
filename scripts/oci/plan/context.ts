/** The plan's context: the config, the repository facts, static placeholder values. */
import type { DeployConfig } from "./config.ts";
import { placeholders, type Vars } from "./placeholders.ts";
import { type RepoFacts, readRepoFacts } from "./repo-files.ts";

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

export function usesUnavailable(text: string, ctx: PlanContext): boolean {
  return placeholders(text).some((p) => ctx.unavailable.has(p));
}
