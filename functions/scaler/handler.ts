import { describeError, PipelineError } from "../../src/core/errors.ts";
import type { Logger } from "../../src/core/log.ts";
import { validateRequest } from "../../src/pipeline/requests.ts";
import {
  decideReplicas,
  type ScalingDecision,
  type ScalingPolicy,
} from "../../src/pipeline/scaler.ts";
import type { ReplicaTarget } from "../../src/ports/replica-target.ts";
import type { TaskQueue } from "../../src/ports/task-queue.ts";

/** Dependencies of the scaler function. */
export interface ScalerDeps {
  queue: TaskQueue;
  target: ReplicaTarget;
  log: Logger;
  now(): number;
  /** Where `lastActiveAt` survives between invocations (functions are stateless). */
  state: {
    get(): Promise<number | undefined>;
    set(lastActiveAt: number | undefined): Promise<void>;
  };
  /**
   * Who the scaler is to OCI and, when known, the Kubernetes user its OKE token
   * maps to: logged with every decision, so a refused scale names the subject to bind.
   */
  identity?: { principal: string; kubernetesUser?: string | undefined };
}

/** What the scaler decided, and whether it applied it. */
export interface ScalerAnswer extends ScalingDecision {
  visible: number;
  inFlight: number;
  previous: number;
  applied: boolean;
  dryRun: boolean;
}

/**
 * The scaler function's handler: read queue depth, apply the shared rule, and
 * set the worker replicas (unless `{"dryRun": true}`). Reports what it decided and why.
 */
export function createScalerHandler(deps: ScalerDeps, policy: ScalingPolicy) {
  const identity = deps.identity ? { identity: deps.identity } : {};
  return async (input: unknown): Promise<ScalerAnswer> => {
    try {
      return await decide(input);
    } catch (err) {
      deps.log.error("scaler failed", {
        ...identity,
        error: describeError(err),
        ...(err instanceof PipelineError ? { details: err.details } : {}),
      });
      throw err;
    }
  };

  async function decide(input: unknown): Promise<ScalerAnswer> {
    const dryRun = validateRequest.scale(input ?? null)?.dryRun === true;
    const stats = await deps.queue.stats();
    const previous = await deps.target.current();
    const lastActiveAt = await deps.state.get();
    const decision = decideReplicas(policy, {
      visible: stats.visible,
      inFlight: stats.inFlight,
      currentReplicas: previous,
      now: deps.now(),
      ...(lastActiveAt !== undefined ? { lastActiveAt } : {}),
    });
    // A dry run changes nothing, the cooldown clock included.
    if (!dryRun) await deps.state.set(decision.lastActiveAt);
    const applied = !dryRun && decision.replicas !== previous;
    if (applied) await deps.target.scaleTo(decision.replicas);
    deps.log.info("scaler decision", { ...decision, previous, applied, dryRun, ...identity });
    return {
      ...decision,
      visible: stats.visible,
      inFlight: stats.inFlight,
      previous,
      applied,
      dryRun,
    };
  }
}
