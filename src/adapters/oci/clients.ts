import * as common from "oci-common";
import type { OciAuth } from "./auth.ts";

/** Where a client sends requests: an endpoint override (the stand-in, a messages endpoint) or the region's default. */
export interface ClientTarget {
  endpoint?: string | undefined;
}

/** What every oci-sdk service client class has in common. */
interface SdkClient {
  endpoint: string;
}

type ClientCtor<T> = new (
  params: { authenticationDetailsProvider: common.AuthenticationDetailsProvider },
  config?: common.ClientConfiguration,
) => T;

/**
 * Retries for calls the SDK does not retry by default (getMessages, putMessages,
 * updateRow, query, stream puts): a few attempts with exponential backoff, on
 * throttling, 5xx and network errors only. The adapters make these calls safe to
 * repeat (conditional writes re-read on a 412 after a retry).
 */
export function retryConfiguration(maxAttempts = 4): common.RetryConfiguration {
  return {
    terminationStrategy: new common.MaxAttemptsTerminationStrategy(maxAttempts),
    delayStrategy: new common.ExponentialBackoffDelayStrategy(8),
  };
}

/**
 * Construct an oci-sdk client. The SDK's global circuit breaker is off: a
 * transient outage must not turn into a minute of fast failures for a worker
 * that retries on its own terms.
 */
export function createClient<T extends SdkClient>(
  Ctor: ClientCtor<T>,
  auth: OciAuth,
  target: ClientTarget = {},
): T {
  common.CircuitBreaker.EnableGlobalCircuitBreaker = false;
  const client = new Ctor({ authenticationDetailsProvider: auth.provider }, {});
  // Data-plane clients with a fixed messages endpoint (Streaming) have no regionId.
  if (auth.region && !common.isRegionProvider(auth.provider) && "regionId" in client) {
    (client as { regionId: string }).regionId = auth.region;
  }
  if (target.endpoint) client.endpoint = target.endpoint;
  return client;
}
