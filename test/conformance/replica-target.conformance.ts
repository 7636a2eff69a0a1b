import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ReplicaTarget } from "../../src/ports/replica-target.ts";

/** A fresh target at zero replicas, and a way to see what really runs. */
export interface ReplicaTargetFixture {
  target: ReplicaTarget;
  /** Replicas actually running now (processes alive, the Deployment's spec), as the platform reports them. */
  observed(): Promise<number>;
  cleanup(): Promise<void>;
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/** Register the ReplicaTarget contract tests under `describe(label)`. */
export function replicaTargetConformance(
  label: string,
  setup: () => Promise<ReplicaTargetFixture>,
): void {
  const withTarget =
    (fn: (f: ReplicaTargetFixture) => Promise<void>) => async (): Promise<void> => {
      const f = await setup();
      try {
        await fn(f);
      } finally {
        await f.cleanup();
      }
    };

  describe(label, () => {
    it(
      "scales up and down; current() is what was asked, and the platform follows",
      withTarget(async ({ target, observed }) => {
        assert.equal(await target.current(), 0);
        await target.scaleTo(2);
        assert.equal(await target.current(), 2);
        await eventually("2 replicas run", async () => (await observed()) === 2);
        await target.scaleTo(2); // idempotent
        assert.equal(await target.current(), 2);
        await target.scaleTo(1);
        assert.equal(await target.current(), 1);
        await eventually("1 replica runs", async () => (await observed()) === 1);
        await target.scaleTo(0);
        assert.equal(await target.current(), 0);
        await eventually("nothing runs", async () => (await observed()) === 0);
      }),
    );

    it(
      "refuses a replica count that is negative or not an integer, changing nothing",
      withTarget(async ({ target }) => {
        await target.scaleTo(1);
        await rejectsWithCode(target.scaleTo(-1), "INVALID_ARGUMENT");
        await rejectsWithCode(target.scaleTo(1.5), "INVALID_ARGUMENT");
        await rejectsWithCode(target.scaleTo(Number.NaN), "INVALID_ARGUMENT");
        assert.equal(await target.current(), 1);
        await target.scaleTo(0);
      }),
    );
  });
}
