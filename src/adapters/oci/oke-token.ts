/**
 * OKE's Kubernetes API bearer token: what `oci ce cluster generate-token` prints.
 *
 * Terminology:
 * - cluster request: `GET https://containerengine.<region>.oraclecloud.com/cluster_request/<clusterId>`,
 *   a request that is never sent. Its OCI signature is the credential.
 * - token: that URL with the signature's `authorization` and `date` headers moved
 *   into its query, base64url-encoded. The API server decodes it, rebuilds the
 *   signed request and checks the signature with OCI IAM, so the token is only as
 *   fresh as its date (about four minutes).
 */
import { createPrivateKey, sign } from "node:crypto";
import type * as common from "oci-common";
import { InvalidArgumentError } from "../../core/errors.ts";
import type { OciAuth } from "./auth.ts";
import { mapOciError } from "./errors.ts";

/** How long OKE accepts a token after its signed date (the CLI's kubeconfig helpers refresh after 240 s). */
export const OKE_TOKEN_LIFETIME_MS = 4 * 60_000;

/** Options for {@link generateOkeToken}. */
export interface OkeTokenOptions {
  auth: OciAuth;
  /** The cluster's OCID. */
  clusterId: string;
  /** Region id of the cluster, e.g. `us-ashburn-1`. */
  region: string;
  /** Clock (tests). */
  now?: () => Date;
}

/** A token and when OKE stops accepting it. */
export interface OkeToken {
  token: string;
  expiresAt: Date;
}

/** The headers OKE rebuilds from the token's query, in the order the CLI and the Go SDK sign them. */
const SIGNED_HEADERS = ["date", "(request-target)", "host"] as const;

/** The host a cluster request is signed for. */
export function okeTokenHost(region: string): string {
  // UNCONFIRMED for realms other than OC1: the CLI and the Go SDK build this
  // host with a fixed `oraclecloud.com`, and so do we.
  return `containerengine.${region}.oraclecloud.com`;
}

/**
 * The provider that really signs: a config-file provider may delegate to another
 * (oci-common's own signer does the same check before every request).
 */
function signingProvider(
  provider: common.AuthenticationDetailsProvider,
): common.AuthenticationDetailsProvider {
  return provider.getProvider?.() ?? provider;
}

/**
 * Make a Bearer token for the cluster's Kubernetes API, as
 * `oci ce cluster generate-token --cluster-id ID --region R` does.
 *
 * Signed with node:crypto rather than oci-common's DefaultRequestSigner: that
 * signer always signs `x-date`, while the token carries only `date` (the header
 * the CLI and the Go SDK sign), so OKE could not rebuild an x-date signature.
 *
 * @example
 * const { token } = await generateOkeToken({ auth, clusterId, region: "us-ashburn-1" });
 * await fetch(`${apiServer}/version`, { headers: { authorization: `Bearer ${token}` } });
 */
export async function generateOkeToken(options: OkeTokenOptions): Promise<OkeToken> {
  const { clusterId, region } = options;
  if (!/^[A-Za-z0-9._-]+$/.test(clusterId)) {
    throw new InvalidArgumentError(`OKE cluster id "${clusterId}" is not an OCID`);
  }
  if (!/^[a-z0-9-]+$/.test(region)) {
    throw new InvalidArgumentError(`OCI region "${region}" is not a region id like us-ashburn-1`);
  }
  const signedAt = options.now?.() ?? new Date();
  const date = signedAt.toUTCString();
  const host = okeTokenHost(region);
  const requestTarget = `/cluster_request/${clusterId}`;

  let keyId: string;
  let privateKeyPem: string;
  let passphrase: string | null;
  try {
    const provider = signingProvider(options.auth.provider);
    // keyId first: for principals it refreshes the session token and key pair together.
    keyId = await provider.getKeyId();
    privateKeyPem = provider.getPrivateKey();
    passphrase = provider.getPassphrase();
  } catch (err) {
    throw mapOciError(err, `OKE token: reading the ${options.auth.mode} signing key`);
  }

  const values: Record<(typeof SIGNED_HEADERS)[number], string> = {
    date,
    "(request-target)": `get ${requestTarget}`,
    host,
  };
  const signingString = SIGNED_HEADERS.map((h) => `${h}: ${values[h]}`).join("\n");
  let signature: string;
  try {
    const key = createPrivateKey({
      key: privateKeyPem,
      ...(passphrase ? { passphrase } : {}),
    });
    signature = sign("RSA-SHA256", Buffer.from(signingString), key).toString("base64");
  } catch (err) {
    throw new InvalidArgumentError(
      `OKE token: cannot sign with the ${options.auth.mode} private key: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const authorization =
    `Signature version="1",keyId="${keyId}",algorithm="rsa-sha256",` +
    `headers="${SIGNED_HEADERS.join(" ")}",signature="${signature}"`;

  const url = new URL(`https://${host}${requestTarget}`);
  url.searchParams.set("authorization", authorization);
  url.searchParams.set("date", date);
  return {
    // URL-safe alphabet *with* padding, byte for byte what the CLI (Python's
    // urlsafe_b64encode) and the Go SDK (base64.URLEncoding) produce.
    token: Buffer.from(url.toString()).toString("base64").replace(/\+/g, "-").replace(/\//g, "_"),
    expiresAt: new Date(signedAt.getTime() + OKE_TOKEN_LIFETIME_MS),
  };
}

/**
 * Reuse a token until a minute before it expires, so a warm function doesn't sign
 * on every call; concurrent callers share one generation, and a failure is not kept.
 */
export function cachedOkeToken(
  generate: () => Promise<OkeToken>,
  now: () => number = Date.now,
): () => Promise<string> {
  const refreshBeforeMs = 60_000;
  let current: OkeToken | undefined;
  let pending: Promise<OkeToken> | undefined;
  return async () => {
    if (current && now() < current.expiresAt.getTime() - refreshBeforeMs) return current.token;
    pending ??= generate().finally(() => {
      pending = undefined;
    });
    current = await pending;
    return current.token;
  };
}
