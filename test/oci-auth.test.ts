/** Auth chosen by environment: which provider each component gets, and clear errors when it can't. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { authModeFromEnv, ociAuthFromEnv } from "../src/adapters/oci/auth.ts";
import { ociConfigFromEnv } from "../src/adapters/oci/config.ts";
import { testCredentials } from "./oci-standin/server.ts";

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("OCI auth by environment", () => {
  it("picks the mode: OCI_AUTH, else resource principal inside Fn, else the config file", () => {
    assert.equal(authModeFromEnv({}), "config_file");
    assert.equal(authModeFromEnv({ OCI_RESOURCE_PRINCIPAL_VERSION: "2.2" }), "resource_principal");
    assert.equal(authModeFromEnv({ OCI_AUTH: "workload_identity" }), "workload_identity");
    assert.equal(
      authModeFromEnv({ OCI_AUTH: "instance_principal", OCI_RESOURCE_PRINCIPAL_VERSION: "2.2" }),
      "instance_principal",
    );
    assert.throws(() => authModeFromEnv({ OCI_AUTH: "password" }), {
      code: "INVALID_ARGUMENT",
      message: /OCI_AUTH=password is not one of resource_principal, instance_principal/,
    });
  });

  it("reads ~/.oci/config-style files (key, region) and names the file when it can't", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "oci-auth-"));
    dirs.push(dir);
    const creds = testCredentials();
    const file = creds.writeConfigFile(dir, "BATCH");
    const auth = await ociAuthFromEnv({ OCI_CONFIG_FILE: file, OCI_CONFIG_PROFILE: "BATCH" });
    assert.equal(auth.mode, "config_file");
    assert.equal(auth.region, "us-ashburn-1");
    assert.equal(await auth.provider.getKeyId(), creds.keyId);
    await assert.rejects(
      ociAuthFromEnv({ OCI_CONFIG_FILE: path.join(dir, "missing"), OCI_CONFIG_PROFILE: "BATCH" }),
      { code: "INVALID_ARGUMENT", message: /cannot read OCI config .*missing \[BATCH\]/ },
    );
    await assert.rejects(ociAuthFromEnv({ OCI_CONFIG_FILE: file, OCI_CONFIG_PROFILE: "NOPE" }), {
      code: "INVALID_ARGUMENT",
      message: /\[NOPE\]/,
    });
  });

  it("workload identity needs a region; principals fail clearly off their platform", async () => {
    await assert.rejects(ociAuthFromEnv({ OCI_AUTH: "workload_identity" }), {
      code: "INVALID_ARGUMENT",
      message: /needs OCI_REGION/,
    });
    // Outside Fn there is no resource principal session: the SDK's error surfaces, not a hang.
    await assert.rejects(ociAuthFromEnv({ OCI_AUTH: "resource_principal" }));
  });

  it("the backend's configuration names the first missing variable and how to find it", () => {
    assert.throws(() => ociConfigFromEnv({}), {
      message: /OCI_NAMESPACE is required .*oci os ns get/,
    });
    const base = {
      OCI_NAMESPACE: "ns",
      OCI_COMPARTMENT_ID: "ocid1.compartment.oc1..x",
      BATCH_INFER_QUEUE_ID: "ocid1.queue.oc1..q",
    };
    assert.throws(() => ociConfigFromEnv(base), {
      message: /BATCH_INFER_QUEUE_ENDPOINT is required .*messages-endpoint/,
    });
    const full = ociConfigFromEnv({
      ...base,
      BATCH_INFER_QUEUE_ENDPOINT: "https://cell-1.queue.messaging.us-ashburn-1.oci.oraclecloud.com",
      BATCH_INFER_STREAM_ID: "ocid1.stream.oc1..s",
      BATCH_INFER_STREAM_ENDPOINT: "https://cell-1.streaming.us-ashburn-1.oci.oraclecloud.com",
    });
    assert.equal(full.jobsTable, "batch_infer_jobs");
    assert.equal(full.parkingQueueId, undefined);
    assert.equal(full.endpoints.objectStorage, undefined, "region default unless overridden");
  });
});
