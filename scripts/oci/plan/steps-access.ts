/** Steps that connect the parts: IAM, the Events rules, the scaler's triggers, the Kubernetes objects. */

import { type PlanContext, usesUnavailable } from "./context.ts";
import { K8S_DIR } from "./paths.ts";
import { fill, ph, sh } from "./placeholders.ts";
import { renderScalerRbac, renderWorkerDeployment, workerEnv } from "./render.ts";
import { type IamFile, loadIam, loadRules } from "./repo-files.ts";
import type { PlanTools } from "./tools.ts";
import type { Action, Step } from "./types.ts";

/** iam, events, scaler-triggers, kubernetes. */
export function accessSteps(ctx: PlanContext, t: PlanTools): Step[] {
  const { c, C, out, file, oci, wait, id, run, jsonFile, ensure, workerImage } = t;
  const steps: Step[] = [];
  const iam = loadIam();
  const groups = iam.dynamicGroups.filter((g) => !usesUnavailable(g.matchingRule, ctx));
  // A statement for a dynamic group that is not created (its function is left out) goes too.
  const skippedGroups = iam.dynamicGroups
    .filter((g) => !groups.includes(g))
    .map((g) => `${g.name} `);
  const policy = (p: IamFile["policies"][number]): Action[] => {
    const statements = p.statements.filter(
      (s) => !usesUnavailable(s, ctx) && !skippedGroups.some((g) => s.includes(g)),
    );
    if (statements.length === 0) return [];
    const name = fill(p.name, ctx.vars, "strict");
    const v = `POLICY_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_OCID`;
    const statementsFile = out("iam", `${name}.statements.json`);
    const P = c.policyCompartmentOcid;
    return [
      jsonFile(`Statements of policy ${name} (${p.component})`, statementsFile, statements),
      ...ensure({
        what: `policy ${name}`,
        v,
        lookup: sh`iam policy list --compartment-id ${P} --name ${name} ${id("data[0].id")}`,
        create: sh`iam policy create --compartment-id ${P} --name ${name} --description ${p.description}
                   --statements ${file(statementsFile)} ${wait("ACTIVE")}`,
      }),
      run(
        `Bring policy ${name}'s statements up to date`,
        oci(
          sh`iam policy update --policy-id ${ph(v)} --statements ${file(statementsFile)} --force`,
        ),
      ),
    ];
  };
  steps.push({
    id: "iam",
    title:
      "IAM: a dynamic group per function, least-privilege policies per component, workload identity for workers",
    actions: [
      ...groups.flatMap((g): Action[] => {
        const name = fill(g.name, ctx.vars, "strict");
        return [
          ...ensure({
            what: `dynamic group ${name}`,
            why: g.description,
            v: g.captureAs,
            lookup: sh`iam dynamic-group list --compartment-id ${c.tenancyOcid} --name ${name}
                         ${id("data[0].id")}`,
            create: sh`iam dynamic-group create --compartment-id ${c.tenancyOcid} --name ${name}
                         --description ${g.description} --matching-rule ${g.matchingRule}
                         ${wait("ACTIVE")}`,
          }),
          run(
            `Bring ${name}'s matching rule up to date`,
            oci(sh`iam dynamic-group update --dynamic-group-id ${ph(g.captureAs)}
                     --matching-rule ${g.matchingRule} --force`),
          ),
        ];
      }),
      ...iam.policies.filter((p) => p.step === "iam").flatMap(policy),
    ],
  });

  steps.push({
    id: "events",
    title: "Events rules: uploads fire the splitter",
    actions: loadRules()
      .filter(([, rule]) => !usesUnavailable(JSON.stringify(rule), ctx))
      .flatMap(([name, rule]): Action[] => {
        const display = fill(rule.displayName, ctx.vars, "strict");
        const v = `RULE_${display.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_OCID`;
        const ruleFile = out("events", name);
        const actionsFile = out("events", name.replace(/\.json$/, ".actions.json"));
        return [
          jsonFile(
            `Rule ${display}, as oci events rule create --from-json takes it`,
            ruleFile,
            rule,
          ),
          jsonFile(`Actions of rule ${display}`, actionsFile, rule.actions),
          ...ensure({
            what: `rule ${display}`,
            why: rule.description,
            v,
            lookup: sh`events rule list --compartment-id ${C} --display-name ${display}
                       --lifecycle-state ACTIVE ${id("data[0].id")}`,
            create: sh`events rule create --from-json ${file(ruleFile)} ${wait("ACTIVE", "FAILED")}`,
          }),
          run(
            `Bring rule ${display}'s condition and action up to date`,
            oci(sh`events rule update --rule-id ${ph(v)} --condition ${rule.condition}
                   --actions ${file(actionsFile)} --is-enabled ${String(rule.isEnabled)} --force
                   ${wait("ACTIVE", "FAILED")}`),
          ),
        ];
      }),
  });

  const topic = `${c.prefix}-scaler`;
  const alarm = `${c.prefix}-queue-has-work`;
  const schedule = `${c.prefix}-scaler-backstop`;
  const SCALER = ph("SCALER_FUNCTION_OCID");
  const alarmActions: Action[] = !c.scaler.alarm
    ? []
    : [
        ...ensure({
          what: `notification topic ${topic}`,
          why: "queue-depth alarm notifications go here, and on to the scaler",
          v: "SCALER_TOPIC_OCID",
          // A topic's id is "topic-id" in the CLI's output, not "id".
          idQuery: 'data."topic-id"',
          lookup: sh`ons topic list --compartment-id ${C} --name ${topic} ${id('data[0]."topic-id"')}`,
          create: sh`ons topic create --compartment-id ${C} --name ${topic}
                     --description ${"Queue-depth alarm notifications that invoke the batch-infer scaler"}`,
        }),
        ...ensure({
          what: "subscription of the scaler function to the topic",
          why: "protocol ORACLE_FUNCTIONS: each notification invokes the scaler",
          v: "SCALER_SUBSCRIPTION_OCID",
          lookup: sh`ons subscription list --compartment-id ${C} --topic-id ${ph("SCALER_TOPIC_OCID")} --all
                     --query ${`data[?endpoint=='${SCALER}'].id | [0]`} --raw-output`,
          create: sh`ons subscription create --compartment-id ${C} --topic-id ${ph("SCALER_TOPIC_OCID")}
                     --protocol ORACLE_FUNCTIONS --subscription-endpoint ${SCALER}`,
        }),
        ...ensure({
          what: `alarm ${alarm}`,
          why:
            `while the partition queue holds messages, notify the scaler every ${c.scaler.repeatNotification}, ` +
            "and once more when it empties",
          v: "SCALER_ALARM_OCID",
          lookup: sh`monitoring alarm list --compartment-id ${C} --display-name ${alarm} ${id("data[0].id")}`,
          create: sh`monitoring alarm create --compartment-id ${C} --display-name ${alarm}
                     --metric-compartment-id ${C} --namespace oci_queue
                     --query-text ${`MessagesInQueueCount[1m]{resourceId = "${ph("QUEUE_OCID")}"}.max() > 0`}
                     --severity INFO --destinations ${`["${ph("SCALER_TOPIC_OCID")}"]`} --is-enabled true
                     --pending-duration PT1M --repeat-notification-duration ${c.scaler.repeatNotification}
                     --message-format RAW --body ${"batch-infer partition queue has work: run the scaler"}`,
        }),
      ];
  const scheduleActions: Action[] = !c.scaler.scheduleCron
    ? []
    : [
        ...ensure({
          what: `resource schedule ${schedule}`,
          why: `invoke the scaler on "${c.scaler.scheduleCron}", a backstop that scales to zero after the cooldown even when no alarm notification comes`,
          v: "SCALER_SCHEDULE_OCID",
          workRequest: true,
          lookup: sh`resource-scheduler schedule list --compartment-id ${C} --display-name ${schedule}
                     ${id("data.items[0].id")}`,
          create: sh`resource-scheduler schedule create --compartment-id ${C} --display-name ${schedule}
                     --action START_RESOURCE --recurrence-type CRON
                     --recurrence-details ${c.scaler.scheduleCron}
                     --resources ${`[{"id":"${SCALER}","parameters":[{"parameterType":"BODY","value":{"source":"resource-scheduler"}}]}]`}`,
        }),
        ...iam.policies.filter((p) => p.step === "scaler-triggers").flatMap(policy),
      ];
  steps.push({
    id: "scaler-triggers",
    title: "Scaler triggers: queue alarm → Notifications → scaler; Resource Scheduler backstop",
    actions: [...alarmActions, ...scheduleActions],
  });

  const kubeconfig = out("kubeconfig");
  const kubectl = (argv: string[]) => ["kubectl", "--kubeconfig", kubeconfig, ...argv];
  const deploymentFile = out("k8s", "worker-deployment.yaml");
  const rbacFile = out("k8s", "scaler-rbac.yaml");
  steps.push({
    id: "kubernetes",
    title:
      "OKE: namespace and service account, scaler RBAC, worker Deployment (0 replicas; the scaler sizes it)",
    actions: [
      run(
        "Write a kubeconfig for the cluster (OKE token auth)",
        oci(sh`ce cluster create-kubeconfig --cluster-id ${c.oke.clusterOcid} --file ${kubeconfig}
               --token-version 2.0.0 --kube-endpoint ${c.oke.kubeEndpoint} --overwrite`),
      ),
      {
        kind: "write",
        note: "Worker Deployment with its image and the OCI environment",
        file: deploymentFile,
        render: (f) =>
          renderWorkerDeployment(
            ctx.repo.deploymentTemplate,
            f(workerImage),
            workerEnv(c).map(([k, v]) => [k, f(v)]),
            c.oke.imagePullSecret,
          ),
      },
      {
        kind: "write",
        note: "Role and RoleBinding for the scaler",
        file: rbacFile,
        render: (f) => f(renderScalerRbac(ctx.repo.k8sNamespace, ctx.repo.k8sDeployment)),
      },
      run(
        "Namespace and the workers' service account (workload identity binds to it)",
        kubectl(sh`apply -f ${`${K8S_DIR}/namespace.yaml`}`),
      ),
      run("Let the scaler get and patch the Deployment's scale", kubectl(sh`apply -f ${rbacFile}`)),
      run("The worker Deployment", kubectl(sh`apply -f ${deploymentFile}`)),
    ],
  });
  return steps;
}
