import { test } from "node:test";
import assert from "node:assert/strict";
import { formatAddress, parsePublish, publishedUrl } from "./publish.js";
import { StasisError } from "../errors.js";

test("--publish: HOST:PORT, [IPV6]:PORT, HOST alone (port 0: picked), PORT alone (loopback)", () => {
  assert.deepEqual(parsePublish("0.0.0.0:9000"), { host: "0.0.0.0", port: 9000 });
  assert.deepEqual(parsePublish("[::1]:8001"), { host: "::1", port: 8001 });
  assert.deepEqual(parsePublish("::1"), { host: "::1", port: 0 });
  assert.deepEqual(parsePublish("10.1.2.3"), { host: "10.1.2.3", port: 0 });
  assert.deepEqual(parsePublish("10.1.2.3:"), { host: "10.1.2.3", port: 0 });
  assert.deepEqual(parsePublish("8001"), { host: "127.0.0.1", port: 8001 });
});

test("--publish refuses a name or a port out of range, saying what it takes", () => {
  for (const bad of ["localhost:80", "1.2.3.4:65536", "1.2.3.4:http", ""]) {
    const usage = (e: unknown) => e instanceof StasisError && e.code === "E_USAGE" && /HOST:PORT/.test(e.hint ?? "");
    assert.throws(() => parsePublish(bad), usage, bad);
  }
});

test("the published URL keeps the captured scheme and path; a wildcard host is reached on loopback", () => {
  assert.equal(publishedUrl("http://127.0.0.1:8000", { host: "0.0.0.0", port: 9000 }), "http://127.0.0.1:9000");
  assert.equal(publishedUrl("http://127.0.0.1:8000/v1", { host: "::", port: 9000 }), "http://[::1]:9000/v1");
  assert.equal(formatAddress({ host: "::1", port: 1 }), "[::1]:1");
});

test("--fallback warm is refused with --publish: a warm start would run on the host's network", async () => {
  const { resolvePlacement } = await import("./placement.js");
  await assert.rejects(resolvePlacement({ publish: "127.0.0.1", fallback: "warm" }), /--fallback warm cannot go with/);
  assert.equal(await resolvePlacement({}), undefined);
  assert.deepEqual(await resolvePlacement({ publish: "8001" }), {
    netnsId: "own",
    publish: { host: "127.0.0.1", port: 8001 },
  });
});
