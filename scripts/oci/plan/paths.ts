import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: every repo path in the plan is relative to it, and commands run in it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export const IAM_FILE = "scripts/oci/iam-policies.json";
export const RULES_DIR = "events/rules";
export const K8S_DIR = "worker-image/k8s";
