/** Steps that build and run code: the images, the Fn application and its functions. */

import type { FunctionName } from "./config.ts";
import type { PlanContext } from "./context.ts";
import { ph, sh } from "./placeholders.ts";
import { appConfig, functionConfig } from "./render.ts";
import type { PlanTools } from "./tools.ts";
import type { Action, Step } from "./types.ts";

/** images, functions. */
export function computeSteps(ctx: PlanContext, t: PlanTools): Step[] {
  const { c, C, out, file, oci, wait, id, run, jsonFile, ensure, registry, fnImage, workerImage } =
    t;
  const steps: Step[] = [];
  steps.push({
    id: "images",
    title:
      "Images: one function image for all functions, and the GPU worker image (docker login to OCIR first)",
    actions: [
      run("Bundle dist/functions.cjs and dist/worker.js with esbuild", sh`npm run build`),
      run(
        "Build the function image from func.yaml (runtime node, entrypoint dist/functions.cjs)",
        sh`fn --registry ${registry} build`,
      ),
      run(
        "Tag it as the image every function runs",
        sh`docker tag ${`${registry}/${ctx.repo.fnName}:${ctx.repo.fnVersion}`} ${fnImage}`,
      ),
      run("Push the function image to OCIR", sh`docker push ${fnImage}`),
      run(
        "Build the GPU worker image (CUDA 12 onnxruntime provider)",
        sh`docker build -f worker-image/Dockerfile -t ${workerImage} .`,
      ),
      run("Push the worker image to OCIR", sh`docker push ${workerImage}`),
    ],
  });

  const app = c.prefix;
  const fnNames: FunctionName[] = ["splitter", "merger", "scaler"];
  if (c.embeddingRefresh) fnNames.push("embed-splitter");
  const fnVar = (n: FunctionName) => `${n.toUpperCase().replace(/-/g, "_")}_FUNCTION_OCID`;
  const appConfigFile = out("fn", "app.config.json");
  steps.push({
    id: "functions",
    title: "Fn application and functions: one image, BATCH_INFER_FUNCTION picks the handler",
    actions: [
      jsonFile(
        "Application config every function shares (backend ids, endpoints)",
        appConfigFile,
        appConfig(c),
      ),
      ...ensure({
        what: `application ${app}`,
        v: "FN_APP_OCID",
        lookup: sh`fn application list --compartment-id ${C} --display-name ${app}
                   --lifecycle-state ACTIVE ${id("data[0].id")}`,
        create: sh`fn application create --compartment-id ${C} --display-name ${app}
                   --subnet-ids ${JSON.stringify(c.functions.subnetIds)}
                   ${c.functions.shape ? ["--shape", c.functions.shape] : []}
                   ${wait("ACTIVE", "FAILED")}`,
      }),
      run(
        "Set the application's config",
        oci(sh`fn application update --application-id ${ph("FN_APP_OCID")}
               --config ${file(appConfigFile)} --force ${wait("ACTIVE", "FAILED")}`),
      ),
      ...fnNames.flatMap((n): Action[] => {
        const name = `${c.prefix}-${n}`;
        const cfgFile = out("fn", `${n}.config.json`);
        const cfg = functionConfig(n, ctx);
        const sizing = sh`--memory-in-mbs ${c.functions.memoryMb[n]}
                          --timeout-in-seconds ${c.functions.timeoutSeconds[n]}`;
        return [
          jsonFile(`Config of ${name} (merged over the application's)`, cfgFile, cfg),
          ...ensure({
            what: `function ${name}`,
            v: fnVar(n),
            lookup: sh`fn function list --application-id ${ph("FN_APP_OCID")} --display-name ${name}
                       --lifecycle-state ACTIVE ${id("data[0].id")}`,
            create: sh`fn function create --application-id ${ph("FN_APP_OCID")} --display-name ${name}
                       --image ${fnImage} ${sizing} ${wait("ACTIVE", "FAILED")}`,
          }),
          run(
            `Point ${name} at this image, with its config (BATCH_INFER_FUNCTION=${cfg.BATCH_INFER_FUNCTION})`,
            oci(sh`fn function update --function-id ${ph(fnVar(n))} --image ${fnImage} ${sizing}
                   --config ${file(cfgFile)} --force ${wait("ACTIVE", "FAILED")}`),
          ),
        ];
      }),
    ],
  });
  return steps;
}
