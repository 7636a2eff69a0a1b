/**
 * A watched folder on the embedded default (`refresh --corpus DIR --watch`): the
 * first refresh embeds the folder, a burst of changes afterwards makes one more
 * refresh that embeds only what changed, and stopping ends the watch.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../src/core/log.ts";
import { type LocalRefreshResult, watchLocalCorpus } from "../src/refresh/local-refresh.ts";
import { tempDir } from "./helpers/pipeline-fixture.ts";
import { corpusTexts, textModel } from "./helpers/text-fixture.ts";

let root: { dir: string; cleanup(): Promise<void> };
let descriptor: string;

before(async () => {
  root = await tempDir("bi-watch-");
  descriptor = await textModel(path.join(root.dir, "model"));
});
after(() => root?.cleanup());

describe("a watched corpus folder", () => {
  it("refreshes at start and after each burst of changes, embedding only what changed", async () => {
    const corpus = path.join(root.dir, "docs");
    await mkdir(corpus, { recursive: true });
    for (const [id, text] of corpusTexts(30, 4))
      await writeFile(path.join(corpus, `${id}.txt`), text);
    const controller = new AbortController();
    const results: LocalRefreshResult[] = [];
    // Resolves once `n` refreshes have reported (checked at each report, never by time).
    const waiters: { n: number; resolve: () => void }[] = [];
    const refreshes = (n: number) =>
      new Promise<void>((resolve) => {
        if (results.length >= n) resolve();
        else waiters.push({ n, resolve });
      });
    const watching = watchLocalCorpus(
      {
        corpus,
        descriptor,
        dataDir: path.join(root.dir, "state"),
        workers: 1,
        log: silentLogger,
        signal: controller.signal,
        debounceMs: 200,
      },
      (r) => {
        results.push(r);
        for (const w of waiters.filter((x) => results.length >= x.n)) w.resolve();
      },
    );
    await refreshes(1);
    assert.deepEqual(results[0]?.head?.current?.counts, {
      new: 30,
      changed: 0,
      unchanged: 0,
      deleted: 0,
      failed: 0,
    });
    // A burst: a change, an addition, a removal.
    await writeFile(path.join(corpus, "doc-000001.txt"), "Edited while watched: goal.");
    await writeFile(path.join(corpus, "extra.txt"), "Added while watched: garlic soup.");
    await rm(path.join(corpus, "doc-000002.txt"));
    // A refresh may start mid-burst (the rest then makes one more): sum what the
    // generations after the first did until all three changes are in.
    const byGeneration = new Map<number, { new: number; changed: number; deleted: number }>();
    const seen = () => {
      for (const r of results) {
        const c = r.head?.current;
        if (c && c.generation >= 2) byGeneration.set(c.generation, c.counts);
      }
      const sum = { new: 0, changed: 0, deleted: 0 };
      for (const c of byGeneration.values()) {
        sum.new += c.new;
        sum.changed += c.changed;
        sum.deleted += c.deleted;
      }
      return sum;
    };
    for (let n = 2; ; n++) {
      await refreshes(n);
      const sum = seen();
      if (sum.new >= 1 && sum.changed >= 1 && sum.deleted >= 1) break;
    }
    controller.abort();
    await watching;
    assert.deepEqual(seen(), { new: 1, changed: 1, deleted: 1 }, "each change embedded once");
    assert.equal(results.at(-1)?.head?.current?.documents, 30);
    assert.equal(results.at(-1)?.head?.current?.counts.failed, 0);
  });
});
