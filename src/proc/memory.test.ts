import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRollup, treeMemory } from "./memory.js";

test("parseRollup reads Rss and Pss (kB) of a smaps_rollup", () => {
  const text = "55d0c-7ffd [rollup]\nRss:               13728 kB\nPss:                9012 kB\nPss_Dirty:  100 kB\n";
  assert.deepEqual(parseRollup(text), { rssBytes: 13728 * 1024, pssBytes: 9012 * 1024 });
  assert.deepEqual(parseRollup(""), { rssBytes: 0, pssBytes: 0 });
});

test("treeMemory of this process is some memory; of a pid that is not there, none", async () => {
  const mine = await treeMemory(process.pid);
  assert.ok(mine.rssBytes > 1024 * 1024 && mine.pssBytes > 0 && mine.pssBytes <= mine.rssBytes, JSON.stringify(mine));
  assert.deepEqual(await treeMemory(2 ** 22 + 1), { rssBytes: 0, pssBytes: 0 });
});
