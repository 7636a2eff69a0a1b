import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_POLICY, decideReplicas, type ScalingPolicy } from "../src/pipeline/scaler.ts";

const policy: ScalingPolicy = {
  ...DEFAULT_POLICY,
  targetPerReplica: 2,
  minReplicas: 0,
  maxReplicas: 10,
  cooldownSeconds: 300,
};

describe("decideReplicas (the KEDA rule plus an in-flight floor)", () => {
  it("replicas = ceil((visible + in flight) / target), clamped to min..max", () => {
    assert.equal(
      decideReplicas(policy, { visible: 5, inFlight: 0, currentReplicas: 0, now: 0 }).replicas,
      3,
    );
    assert.equal(
      decideReplicas(policy, { visible: 4, inFlight: 3, currentReplicas: 2, now: 0 }).replicas,
      4,
    );
    assert.equal(
      decideReplicas(policy, { visible: 500, inFlight: 0, currentReplicas: 2, now: 0 }).replicas,
      10,
    );
    assert.equal(
      decideReplicas(
        { ...policy, minReplicas: 2 },
        { visible: 1, inFlight: 0, currentReplicas: 0, now: 0 },
      ).replicas,
      2,
    );
  });

  it("stays at zero until the load passes the activation threshold", () => {
    const p = { ...policy, activationThreshold: 3 };
    assert.equal(
      decideReplicas(p, { visible: 3, inFlight: 0, currentReplicas: 0, now: 0 }).replicas,
      0,
    );
    assert.equal(
      decideReplicas(p, { visible: 4, inFlight: 0, currentReplicas: 0, now: 0 }).replicas,
      2,
    );
  });

  it("holds replicas during the cooldown, then scales to zero", () => {
    const active = decideReplicas(policy, {
      visible: 4,
      inFlight: 0,
      currentReplicas: 0,
      now: 1000,
    });
    assert.equal(active.lastActiveAt, 1000);
    const holding = decideReplicas(policy, {
      visible: 0,
      inFlight: 0,
      currentReplicas: 2,
      now: 1000 + 299_000,
      lastActiveAt: 1000,
    });
    assert.equal(holding.replicas, 2);
    assert.match(holding.reason, /cooldown/);
    const cooled = decideReplicas(policy, {
      visible: 0,
      inFlight: 0,
      currentReplicas: 2,
      now: 1000 + 300_000,
      lastActiveAt: 1000,
    });
    assert.equal(cooled.replicas, 0);
  });

  it("never scales below the partitions in flight (the rule KEDA lacks)", () => {
    // target 4: KEDA would ask for ceil(6/4) = 2 and kill 4 pods that are still working.
    const d = decideReplicas(
      { ...policy, targetPerReplica: 4 },
      { visible: 0, inFlight: 6, currentReplicas: 6, now: 0 },
    );
    assert.equal(d.replicas, 6);
    assert.match(d.reason, /6 partitions in flight/);
    // ...but still within max.
    assert.equal(
      decideReplicas(
        { ...policy, targetPerReplica: 4, maxReplicas: 3 },
        { visible: 0, inFlight: 6, currentReplicas: 6, now: 0 },
      ).replicas,
      3,
    );
  });

  it("holds the pool over a short gap in the queue (no flapping between partitions)", () => {
    const d = decideReplicas(policy, {
      visible: 0,
      inFlight: 0,
      currentReplicas: 3,
      now: 5000,
      lastActiveAt: 4000,
    });
    assert.equal(d.replicas, 3);
  });
});
