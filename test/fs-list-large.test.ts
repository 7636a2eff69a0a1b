/**
 * Listing a large folder of the local object store: pages come in name order and a
 * folder's sorted entries, kept between pages, never hide a later change.
 */
import assert from "node:assert/strict";
import { mkdir, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalObjectStore } from "../src/adapters/local/fs-object-store.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
const N = 2500;

before(async () => {
  root = await tempDir("bi-list-");
});
after(() => root?.cleanup());

async function listAll(store: LocalObjectStore, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let start: string | undefined;
  do {
    const page = await store.list("b", { prefix, limit: 1000, ...(start ? { start } : {}) });
    names.push(...page.objects.map((o) => o.name));
    start = page.nextStart;
  } while (start);
  return names;
}

describe("listing a large folder", () => {
  it("pages through it in name order and sees every later change", async () => {
    const dir = path.join(root.dir, "b", "docs");
    await mkdir(dir, { recursive: true });
    const want: string[] = [];
    for (let i = 0; i < N; i++) {
      const name = `d-${String((i * 7919) % N).padStart(5, "0")}.txt`;
      await writeFile(path.join(dir, name), "x");
      want.push(`docs/${name}`);
    }
    want.sort();
    // A folder last changed a while ago: its sorted entries may be kept between pages.
    const past = new Date(Date.now() - 60_000);
    await utimes(dir, past, past);
    const store = new LocalObjectStore({ root: root.dir });
    assert.deepEqual(await listAll(store, "docs/"), want);
    await store.put("b", "docs/d-new.txt", "y");
    await store.delete("b", "docs/d-00001.txt");
    const after1 = [...want.filter((n) => n !== "docs/d-00001.txt"), "docs/d-new.txt"].sort();
    assert.deepEqual(await listAll(store, "docs/"), after1);
    assert.deepEqual(
      await listAll(store, "docs/d-001"),
      after1.filter((n) => n.startsWith("docs/d-001")),
    );
  });
});
