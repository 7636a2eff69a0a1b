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
