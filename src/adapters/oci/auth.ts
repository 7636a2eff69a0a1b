import { readFileSync } from "node:fs";
import * as common from "oci-common";
import { InvalidArgumentError } from "../../core/errors.ts";

/** How a component proves who it is to OCI. */
export type OciAuthMode =
  | "resource_principal"
  | "instance_principal"
  | "workload_identity"
  | "config_file";

const MODES: readonly OciAuthMode[] = [
  "resource_principal",
  "instance_principal",
  "workload_identity",
  "config_file",
];

/** An auth provider and the region requests go to. */
export interface OciAuth {
  mode: OciAuthMode;
  provider: common.AuthenticationDetailsProvider;
  /** Region id (e.g. `us-ashburn-1`); clients need it when the provider is not a RegionProvider. */
  region: string | undefined;
}

/**
 * The auth mode for this process: `OCI_AUTH` if set; else resource principal
 * inside Fn (it sets `OCI_RESOURCE_PRINCIPAL_VERSION`); else the `~/.oci/config`
 * file, which is what the CLI on a laptop has.
 */
export function authModeFromEnv(env: NodeJS.ProcessEnv = process.env): OciAuthMode {
  const explicit = env.OCI_AUTH;
  if (explicit) {
    if (!(MODES as readonly string[]).includes(explicit)) {
      throw new InvalidArgumentError(`OCI_AUTH=${explicit} is not one of ${MODES.join(", ")}`);
    }
    return explicit as OciAuthMode;
  }
  return env.OCI_RESOURCE_PRINCIPAL_VERSION ? "resource_principal" : "config_file";
}

/**
 * Build the auth provider. Nothing here runs at import time (cold start): functions
 * and workers call it once, on their first request.
 */
export async function ociAuthFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<OciAuth> {
  const mode = authModeFromEnv(env);
  const region = env.OCI_REGION;
  switch (mode) {
    case "resource_principal": {
      // Reads OCI_RESOURCE_PRINCIPAL_{VERSION,RPST,PRIVATE_PEM,REGION} that Fn injects.
      const provider = await common.ResourcePrincipalAuthenticationDetailsProvider.builder();
      return { mode, provider, region: region ?? env.OCI_RESOURCE_PRINCIPAL_REGION };
    }
    case "instance_principal": {
      const provider =
        await new common.InstancePrincipalsAuthenticationDetailsProviderBuilder().build();
      return { mode, provider, region };
    }
    case "workload_identity": {
      // OKE workload identity is not a RegionProvider: the region must come from OCI_REGION.
      if (!region) throw new InvalidArgumentError("OCI_AUTH=workload_identity needs OCI_REGION");
      const provider =
        await new common.OkeWorkloadIdentityAuthenticationDetailsProvider.OkeWorkloadIdentityAuthenticationDetailsProviderBuilder().build();
      return { mode, provider, region };
    }
    case "config_file": {
      const file = env.OCI_CONFIG_FILE;
      const profile = env.OCI_CONFIG_PROFILE ?? "DEFAULT";
      try {
        const provider = new common.ConfigFileAuthenticationDetailsProvider(file, profile);
        return { mode, provider, region: region ?? provider.getRegion()?.regionId };
      } catch (err) {
        throw new InvalidArgumentError(
          `cannot read OCI config ${file ?? "~/.oci/config"} [${profile}]: ${(err as Error).message}. ` +
            "Set OCI_CONFIG_FILE / OCI_CONFIG_PROFILE, or OCI_AUTH for principals.",
          { cause: err },
        );
      }
    }
  }
}

/** Who the process is to OCI, for error messages and the scaler's decision log. */
export interface OciIdentity {
  mode: OciAuthMode;
  /** A readable name: `user ocid1.user…`, `function ocid1.fnfunc…`, `workload ns/sa`. */
  principal: string;
  /**
   * The Kubernetes user OKE maps this identity's token to, when known: a user's
   * OCID for API keys (OKE's documented mapping); the function's OCID for a
   * resource principal (UNCONFIRMED, see README "UNCONFIRMED").
   */
  kubernetesUser: string | undefined;
}

/** The payload of a JWT (no verification: it names who we are, it proves nothing). */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<
      string,
      unknown
    >;
  } catch {
    return undefined;
  }
}

/** A token given inline or as a file path (Fn passes the RPST either way). */
function readToken(valueOrPath: string | undefined): string | undefined {
  if (!valueOrPath) return undefined;
  if (!valueOrPath.startsWith("/")) return valueOrPath;
  try {
    return readFileSync(valueOrPath, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Where OKE mounts a pod's service-account token. */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Describe the identity `auth` signs as, from what is at hand without a call:
 * the config file's user, the resource principal token's claims (or Fn's
 * `FN_FN_ID`), the pod's service-account token.
 */
export function ociIdentity(auth: OciAuth, env: NodeJS.ProcessEnv = process.env): OciIdentity {
  const provider = auth.provider as { getUser?: () => string };
  switch (auth.mode) {
    case "config_file": {
      const user = typeof provider.getUser === "function" ? provider.getUser() : undefined;
      return {
        mode: auth.mode,
        principal: `user ${user ?? "(unknown)"} (OCI config ${env.OCI_CONFIG_FILE ?? "~/.oci/config"} [${env.OCI_CONFIG_PROFILE ?? "DEFAULT"}])`,
        kubernetesUser: user,
      };
    }
    case "resource_principal": {
      const claims = jwtClaims(readToken(env.OCI_RESOURCE_PRINCIPAL_RPST) ?? "");
      const id =
        (typeof claims?.res_id === "string" ? claims.res_id : undefined) ??
        env.FN_FN_ID ??
        undefined;
      const type = typeof claims?.res_type === "string" ? claims.res_type : "function";
      return {
        mode: auth.mode,
        principal: `${type} ${id ?? "(unknown resource principal)"} (resource principal; its dynamic group needs the policy)`,
        kubernetesUser: id,
      };
    }
    case "workload_identity": {
      const sub = jwtClaims(readToken(SERVICE_ACCOUNT_TOKEN) ?? "")?.sub;
      const account =
        typeof sub === "string"
          ? sub.replace(/^system:serviceaccount:/, "").replace(":", "/")
          : undefined;
      return {
        mode: auth.mode,
        principal: `workload ${account ?? "(this pod's service account)"} (OKE workload identity)`,
        kubernetesUser: undefined,
      };
    }
    case "instance_principal":
      return {
        mode: auth.mode,
        principal: "this instance (instance principal; its dynamic group needs the policy)",
        kubernetesUser: undefined,
      };
  }
}
