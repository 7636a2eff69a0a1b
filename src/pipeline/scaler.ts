/** The scaling policy (KEDA's knobs, plus the in-flight floor KEDA lacks). */
export interface ScalingPolicy {
  /** Messages one replica should have in hand ("AverageValue" target). */
  targetPerReplica: number;
  minReplicas: number;
  maxReplicas: number;
  /** Scale from zero only when visible + in-flight exceeds this. */
  activationThreshold: number;
  /** Seconds the queue must stay empty before scaling to zero (KEDA cooldownPeriod). */
  cooldownSeconds: number;
}

/** What the scaler observes. */
export interface ScalingObservation {
  visible: number;
  inFlight: number;
  currentReplicas: number;
  /** Epoch ms now. */
  now: number;
  /** Epoch ms when the metric was last above the activation threshold (undefined = never). */
  lastActiveAt?: number;
}

/** The decision and why, for logs and the scaler function's answer. */
export interface ScalingDecision {
  replicas: number;
  reason: string;
  /** Carry into the next observation. */
  lastActiveAt?: number;
}

/** KEDA's defaults, except a 60 s cooldown suits batch jobs better than 300 s. */
export const DEFAULT_POLICY: ScalingPolicy = {
  targetPerReplica: 1,
  minReplicas: 0,
  maxReplicas: 4,
  activationThreshold: 0,
  cooldownSeconds: 60,
};

/**
 * Replicas = ceil((visible + inFlight) / target) within min..max, active only
 * above the activation threshold, to zero only after the cooldown — and never
 * below the partitions in flight, so scale-down never strands running work.
 */
export function decideReplicas(policy: ScalingPolicy, obs: ScalingObservation): ScalingDecision {
  const target = Math.max(1, policy.targetPerReplica);
  const load = obs.visible + obs.inFlight;
  const active = load > policy.activationThreshold;
  const lastActiveAt = active ? obs.now : obs.lastActiveAt;
  const clamp = (n: number) => Math.min(policy.maxReplicas, Math.max(policy.minReplicas, n));

  if (!active) {
    // KEDA: below activation, hold the current size until the cooldown passes, then go to min.
    const cooled =
      lastActiveAt === undefined || obs.now - lastActiveAt >= policy.cooldownSeconds * 1000;
    if (obs.currentReplicas > 0 && !cooled) {
      const floor = Math.max(policy.minReplicas, Math.min(obs.currentReplicas, obs.inFlight));
      const replicas = Math.min(policy.maxReplicas, Math.max(floor, obs.currentReplicas));
      return {
        replicas,
        reason: `load ${load} <= activation ${policy.activationThreshold}; holding ${replicas} during cooldown`,
        lastActiveAt,
      };
    }
    const replicas = Math.max(policy.minReplicas, Math.min(policy.maxReplicas, obs.inFlight));
    return {
      replicas,
      reason: `load ${load} <= activation ${policy.activationThreshold}; cooled down, ${replicas} replicas`,
      lastActiveAt,
    };
  }
  const wanted = Math.ceil(load / target);
  let replicas = clamp(wanted);
  let reason = `ceil((${obs.visible} visible + ${obs.inFlight} in flight) / ${target}) = ${wanted}`;
  if (replicas !== wanted) reason += `, clamped to ${policy.minReplicas}..${policy.maxReplicas}`;
  // The rule KEDA lacks: never scale below the partitions being worked on.
  const floor = Math.min(policy.maxReplicas, obs.inFlight);
  if (replicas < floor) {
    replicas = floor;
    reason += `; raised to ${floor} partitions in flight`;
  }
  return { replicas, reason: `${reason} -> ${replicas}`, lastActiveAt };
}
