import { test } from "node:test";
import assert from "node:assert/strict";
import { editDistance, suggest } from "./suggest.js";

test("did you mean: a typo of a command or an option finds it, an unrelated word finds nothing", () => {
  assert.equal(suggest("restre", ["restore", "residency", "rm"]), "restore");
  assert.equal(suggest("verfy", ["verify", "prefetch"]), "verify");
  assert.equal(suggest("jsno", ["json", "quiet"]), "json", "two letters swapped count one");
  assert.equal(
    suggest("ready", ["ready-url", "ready-timeout", "canary-url"]),
    undefined,
    "a prefix of two is no suggestion",
  );
  assert.equal(suggest("canary", ["ready-url", "canary-url", "canary-body"]), undefined);
  assert.equal(suggest("leave", ["leave-running", "env"]), "leave-running", "a unique prefix");
  assert.equal(suggest("xyz", ["ls", "rm", "ps"]), undefined);
  assert.equal(editDistance("kitten", "sitting"), 3);
});
