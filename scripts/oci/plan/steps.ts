/**
 * The deploy plan: every step, in order, as data (commands, captures, rendered
 * files). Pure: it reads repository files but runs nothing, so the dry run and
 * the real run print the same plan, and each line can be checked in a test.
 */
import { InvalidArgumentError } from "../../../src/core/errors.ts";
import type { PlanContext } from "./context.ts";
import { placeholders } from "./placeholders.ts";
import { accessSteps } from "./steps-access.ts";
import { computeSteps } from "./steps-compute.ts";
import { dataSteps } from "./steps-data.ts";
import { planTools } from "./tools.ts";
import type { Step } from "./types.ts";

/** Every step of the deployment, in order. */
export function buildPlan(ctx: PlanContext): Step[] {
  const t = planTools(ctx);
  const steps = [...dataSteps(ctx, t), ...computeSteps(ctx, t), ...accessSteps(ctx, t)];
  checkPlaceholders(steps, ctx);
  return steps;
}

/**
 * Every placeholder in the plan is a config value or captured by a command
 * that runs before it: catches typos and steps in the wrong order.
 */
function checkPlaceholders(steps: Step[], ctx: PlanContext): void {
  const seen = new Set(ctx.vars.keys());
  for (const step of steps) {
    for (const a of step.actions) {
      const texts = a.kind === "run" ? a.argv : [a.render((s) => s)];
      for (const p of texts.flatMap(placeholders)) {
        if (!seen.has(p))
          throw new InvalidArgumentError(
            `step ${step.id}: \${${p}} is neither a config value nor captured by an earlier command`,
          );
      }
      if (a.kind === "run" && a.capture) seen.add(a.capture);
    }
  }
}
