/**
 * The README's commands work as written, in the order a reader meets them.
 *
 * Convention: a fenced block whose info string is `sh test` (```` ```sh test ````)
 * is run, line by line, in a fresh copy of the repository (tracked files, with
 * node_modules linked in); other blocks are left alone, so sections can be
 * added anywhere. Each command must exit 0. The few changes made for speed or
 * because the test already has them are listed in ADAPT, and each must match
 * something, so the list cannot go stale silently.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { tempDir } from "./helpers/pipeline-fixture.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const DEMO_ROWS = 20_000;

/** [what the README says, what the test runs instead, why]; `null` skips the command. */
const ADAPT: [RegExp, string | null, string][] = [
  [/^npm ci$/, null, "the copy links this checkout's node_modules"],
  [/^npm test$/, null, "the whole suite; this test is part of it"],
  [/^npm run demo$/, `npm run demo -- --rows ${DEMO_ROWS}`, "a small demo"],
  [/customers-1000000\.csv/g, `customers-${DEMO_ROWS}.csv`, "the small demo's file"],
];

/** Shell commands of the README's `sh test` blocks, in order (comments and continuations handled). */
export function readmeCommands(markdown: string): string[] {
  const commands: string[] = [];
  const blocks = markdown.matchAll(/^```sh[ \t]+test[ \t]*\n([\s\S]*?)^```[ \t]*$/gm);
  for (const block of blocks) {
    const lines = (block[1] ?? "").replace(/\s*\\\n\s*/g, " ").split("\n");
    for (const raw of lines) {
      // A comment starts at a # after whitespace (none of the commands quote one).
      const line = raw.replace(/(^|\s)#.*$/, "").trim();
      if (line) commands.push(...line.split(/\s+&&\s+/));
    }
  }
  return commands;
}

function adapt(command: string, used: Set<number>): string | null {
  let out: string | null = command;
  ADAPT.forEach(([from, to, _why], i) => {
    if (out === null || !from.test(out)) return;
    from.lastIndex = 0;
    used.add(i);
    out = to === null ? null : out.replace(from, to);
  });
  return out;
}

let root: { dir: string; cleanup(): Promise<void> };
let copy: string;

before(async () => {
  root = await tempDir("bi-readme-");
  copy = path.join(root.dir, "repo");
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: REPO, encoding: "utf8" })
    .split("\0")
    .filter(Boolean);
  for (const f of files) {
    const from = path.join(REPO, f);
    // A file deleted in the working tree but not yet in the index is not part of the checkout.
    if (!existsSync(from)) continue;
    await mkdir(path.dirname(path.join(copy, f)), { recursive: true });
    await copyFile(from, path.join(copy, f));
  }
  await symlink(path.join(REPO, "node_modules"), path.join(copy, "node_modules"), "dir");
});
after(() => root.cleanup());

describe("README", () => {
  it("finds the commands to run, and every adaptation still applies", async () => {
    const commands = readmeCommands(await readFile(path.join(REPO, "README.md"), "utf8"));
    assert.ok(commands.length >= 5, `commands: ${JSON.stringify(commands)}`);
    assert.equal(commands[0], "npm ci", "the README starts with installing");
    const used = new Set<number>();
    for (const c of commands) adapt(c, used);
    ADAPT.forEach(([from], i) => {
      assert.ok(used.has(i), `ADAPT ${from} matches no command`);
    });
    assert.deepEqual(
      readmeCommands(
        "```sh test\nnpm ci && npm run demo   # both\nfoo \\\n  --bar  # x\n```\n```sh\nskipped\n```\n",
      ),
      ["npm ci", "npm run demo", "foo --bar"],
    );
  });

  it("its commands work verbatim, in order, from a fresh copy", async () => {
    const commands = readmeCommands(await readFile(path.join(copy, "README.md"), "utf8"));
    const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: "0" };
    // Not inherited from an outer `npm test`: npm sets its own for each `npm run`.
    for (const k of Object.keys(env)) if (k.startsWith("npm_") || k === "INIT_CWD") delete env[k];
    const used = new Set<number>();
    for (const readme of commands) {
      const command = adapt(readme, used);
      if (command === null) continue;
      const r = spawnSync("bash", ["-c", command], {
        cwd: copy,
        env,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
      assert.equal(
        r.status,
        0,
        `README command failed: ${readme}\n(ran: ${command})\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`,
      );
    }
    // What the commands promised is there.
    assert.ok(existsSync(path.join(copy, "results", "predictions.jsonl")));
    assert.ok(existsSync(path.join(copy, "results", "loans", "report.html")));
    const descriptor = JSON.parse(
      await readFile(path.join(copy, ".demo", "loans", "descriptor.json"), "utf8"),
    ) as { outputs: { index: number }[] };
    assert.equal(descriptor.outputs[0]?.index, 1);
  });
});
