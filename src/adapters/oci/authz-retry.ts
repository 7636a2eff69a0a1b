/**
 * Retrying "not authorized or not found". Right after a deploy or a policy
 * change OCI keeps answering 404 NotAuthorizedOrNotFound for minutes: a resource
 * principal's token carries the grants it was issued with (Oracle documents up to
 * about 15 minutes of caching). A component that gives up at once would turn a
 * fresh deployment's first minutes into failed jobs, so each such call is retried
 * with backoff for a window that depends on who is calling: long for workers
 * (they hold their lease meanwhile), as long as a function's timeout allows for
 * functions (the caller's retry takes over from there), none for a human at the CLI.
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { OciAuthMode } from "./auth.ts";
import { isNotAuthorizedOrNotFound } from "./errors.ts";

/** How long to keep retrying a not-authorized-or-not-found answer. */
export interface AuthzRetry {
  /** Total time to keep trying; 0 = fail at the first answer. */
  windowMs: number;
  /** First delay; doubles up to {@link MAX_DELAY_MS}. Default 1 s. */
  firstDelayMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Longest wait between two tries. */
const MAX_DELAY_MS = 30_000;

/** Fail at once (tests, the CLI). */
export const NO_AUTHZ_RETRY: AuthzRetry = { windowMs: 0 };

/**
 * The window for this process: `BATCH_INFER_NOT_AUTHORIZED_RETRY_SECONDS` when set;
 * else 20 minutes for workers (workload identity, instance principal), 60 s for
 * functions (resource principal; Fn's timeout bounds the call), none for the CLI.
 */
export function authzRetryFromEnv(mode: OciAuthMode, env: NodeJS.ProcessEnv): AuthzRetry {
  const raw = env.BATCH_INFER_NOT_AUTHORIZED_RETRY_SECONDS;
  if (raw !== undefined && raw !== "") {
    const seconds = Number(raw);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new InvalidArgumentError(
        `BATCH_INFER_NOT_AUTHORIZED_RETRY_SECONDS must be a number >= 0, got "${raw}"`,
      );
    }
    return { windowMs: seconds * 1000 };
  }
  switch (mode) {
    case "workload_identity":
    case "instance_principal":
      return { windowMs: 20 * 60_000 };
    case "resource_principal":
      return { windowMs: 60_000 };
    case "config_file":
      return NO_AUTHZ_RETRY;
  }
}

/** Run `call`, retrying it while it fails with a not-authorized-or-not-found error, within the window. */
export async function retryNotAuthorized<T>(
  policy: AuthzRetry,
  call: () => Promise<T>,
): Promise<T> {
  const now = policy.now ?? Date.now;
  const sleep =
    policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = now() + policy.windowMs;
  let delay = policy.firstDelayMs ?? 1000;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const left = deadline - now();
      if (!isNotAuthorizedOrNotFound(err) || left <= 0) throw err;
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
